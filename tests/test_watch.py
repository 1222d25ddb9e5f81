"""`mediafind watch`: real file-system events in temporary folders, the fake
models (the model is not the subject), short settle times so the file stays
fast. Each test waits for what it expects with a deadline, never a fixed sleep."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import COLORS, draw_photo, fake_cli
from fake_modality import SidecarWords
from media_factory import make_audio

from mediafind import modalities
from mediafind.db import Store, running_watcher
from mediafind.events import FileDone, IndexEvent
from mediafind.index import IndexOptions, index_files, index_paths
from mediafind.watch import Watcher, WatchNote, WatchOptions

pytestmark = pytest.mark.usefixtures("fake_models")

FAST = {"settle": 0.3, "tick": 0.05}


@dataclass
class Heard:
    events: list[IndexEvent] = field(default_factory=list)
    notes: list[WatchNote] = field(default_factory=list)

    def outcomes(self, path: Path) -> list[str]:
        return [e.outcome for e in self.events if isinstance(e, FileDone) and e.path == str(path)]


@contextmanager
def watching(db_path: Path, roots: list[Path], **options: Any) -> Iterator[Heard]:
    """A watcher on its own thread (with its own connection), stopped on exit."""
    heard = Heard()
    stop = threading.Event()
    started = threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            with Store.open(db_path, create=True) as store:
                watcher = Watcher(
                    store,
                    [str(root) for root in roots],
                    modalities.models_for_index(store),
                    WatchOptions(**{**FAST, **options}),
                    heard.events.append,
                    heard.notes.append,
                )
                started.set()
                watcher.run(stop)
        except BaseException as error:
            failed.append(error)
            started.set()

    thread = threading.Thread(target=run)
    thread.start()
    started.wait(10)
    try:
        # Once the catch-up rescan is done, every change is the events' to tell.
        wait_for(lambda: failed or ((state := running_watcher(db_path)) and state.caught_up))
        yield heard
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    if failed:
        raise failed[0]


def wait_for(condition: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def indexed(db_path: Path) -> dict[str, Any]:
    with Store.open(db_path, create=False, readonly=True) as store:
        return store.files_under(["/"])


def test_new_file_is_indexed_and_a_deleted_one_dropped(tmp_path: Path, db_path: Path):
    root = tmp_path / "Pictures"
    root.mkdir()
    with watching(db_path, [root]) as heard:
        photo = draw_photo(root / "red.jpg", COLORS["red"])
        wait_for(lambda: str(photo) in indexed(db_path))
        photo.unlink()
        wait_for(lambda: str(photo) not in indexed(db_path))
    assert heard.outcomes(photo) == ["embedded", "removed"]


def test_a_file_still_being_written_is_indexed_once_complete(tmp_path: Path, db_path: Path):
    root = tmp_path / "Pictures"
    root.mkdir()
    whole = draw_photo(tmp_path / "whole.jpg", COLORS["blue"]).read_bytes()
    target = root / "copying.jpg"
    with watching(db_path, [root], settle=0.6) as heard:
        with open(target, "wb") as out:
            # A slow copy: half, a pause shorter than the settle time, the rest.
            out.write(whole[: len(whole) // 2])
            out.flush()
            time.sleep(0.3)
            out.write(whole[len(whole) // 2 :])
        wait_for(lambda: str(target) in indexed(db_path))
        time.sleep(1.0)  # any second, wrong indexing would have come by now
    record = indexed(db_path)[str(target)]
    assert (record.size, record.status) == (len(whole), "ok")
    assert heard.outcomes(target) == ["embedded"]


def test_rename_and_move_between_roots_are_path_updates(tmp_path: Path, db_path: Path):
    first, second = tmp_path / "Pictures", tmp_path / "Camera"
    first.mkdir()
    second.mkdir()
    photo = draw_photo(first / "red.jpg", COLORS["red"])
    with watching(db_path, [first, second]) as heard:
        wait_for(lambda: str(photo) in indexed(db_path))
        file_id = indexed(db_path)[str(photo)].id
        renamed = first / "renamed.jpg"
        photo.rename(renamed)
        wait_for(lambda: set(indexed(db_path)) == {str(renamed)})
        moved = second / "moved.jpg"
        shutil.move(renamed, moved)
        wait_for(lambda: set(indexed(db_path)) == {str(moved)})
    # The same row, its path changed: nothing embedded again.
    assert indexed(db_path)[str(moved)].id == file_id
    assert heard.outcomes(renamed) == ["moved"]
    assert heard.outcomes(moved) == ["moved"]
    embedded = [e for e in heard.events if isinstance(e, FileDone) and e.outcome == "embedded"]
    assert [e.path for e in embedded] == [str(photo)]


def test_a_folder_made_later_is_watched_and_a_folder_deleted_is_dropped(
    tmp_path: Path, db_path: Path
):
    root = tmp_path / "Pictures"
    root.mkdir()
    with watching(db_path, [root]):
        trip = root / "trip"
        trip.mkdir()
        draw_photo(trip / "a.jpg", COLORS["green"])
        wait_for(lambda: str(trip / "a.jpg") in indexed(db_path))
        # A file in a folder made after the watcher started.
        (trip / "day2").mkdir()
        draw_photo(trip / "day2" / "b.jpg", COLORS["yellow"])
        wait_for(lambda: str(trip / "day2" / "b.jpg") in indexed(db_path))
        shutil.rmtree(trip)
        wait_for(lambda: not indexed(db_path))


def test_a_folder_moved_in_brings_its_files(tmp_path: Path, db_path: Path):
    root = tmp_path / "Pictures"
    root.mkdir()
    outside = tmp_path / "download"
    for name in ("red", "green", "blue"):
        draw_photo(outside / f"{name}.jpg", COLORS[name])
    with watching(db_path, [root]):
        outside.rename(root / "download")
        expected = {str(root / "download" / f"{name}.jpg") for name in ("red", "green", "blue")}
        wait_for(lambda: set(indexed(db_path)) == expected)


def test_a_burst_of_1000_files_is_indexed_each_once(tmp_path: Path, db_path: Path):
    root = tmp_path / "Pictures"
    root.mkdir()
    source = draw_photo(tmp_path / "one.jpg", COLORS["purple"], size=(8, 8)).read_bytes()
    with watching(db_path, [root]) as heard:
        for number in range(1000):
            # Each its own content (a trailing byte), so none is a copy of another.
            (root / f"{number:04d}.jpg").write_bytes(source + number.to_bytes(2, "big"))
        wait_for(lambda: len(indexed(db_path)) == 1000, timeout=120)
        time.sleep(0.5)
    done = [e.path for e in heard.events if isinstance(e, FileDone)]
    assert sorted(done) == sorted(str(root / f"{n:04d}.jpg") for n in range(1000))


def test_hidden_and_other_files_are_left_alone(tmp_path: Path, db_path: Path):
    root = tmp_path / "Pictures"
    root.mkdir()
    with watching(db_path, [root]):
        draw_photo(root / ".partial.jpg", COLORS["red"])
        (root / "notes.txt").write_text("not media")
        draw_photo(root / "seen.jpg", COLORS["blue"])
        wait_for(lambda: str(root / "seen.jpg") in indexed(db_path))
        time.sleep(0.5)
    assert set(indexed(db_path)) == {str(root / "seen.jpg")}


def test_the_remembered_excludes_leave_files_out_as_a_walk_would(tmp_path: Path, db_path: Path):
    root = tmp_path / "Pictures"
    draw_photo(root / "kept.jpg", COLORS["red"])
    with Store.open(db_path, create=True) as store:
        options = IndexOptions(excludes=["Trash", "*.part.jpg"])
        index_paths(store, [root], modalities.models_for_index(store), options)
    with watching(db_path, [root]):
        draw_photo(root / "Trash" / "old.jpg", COLORS["green"])
        draw_photo(root / "copying.part.jpg", COLORS["yellow"])
        draw_photo(root / "new.jpg", COLORS["blue"])
        wait_for(lambda: str(root / "new.jpg") in indexed(db_path))
        time.sleep(0.5)
    assert set(indexed(db_path)) == {str(root / "kept.jpg"), str(root / "new.jpg")}


def test_changes_made_while_no_watcher_ran_are_caught_up(tmp_path: Path, db_path: Path):
    root = tmp_path / "Pictures"
    kept = draw_photo(root / "kept.jpg", COLORS["red"])
    gone = draw_photo(root / "gone.jpg", COLORS["green"])
    with watching(db_path, [root]):
        wait_for(lambda: set(indexed(db_path)) == {str(kept), str(gone)})
    gone.unlink()
    added = draw_photo(root / "added.jpg", COLORS["blue"])
    with watching(db_path, [root]):
        wait_for(lambda: set(indexed(db_path)) == {str(kept), str(added)})


def test_polling_rescans_on_a_schedule_and_says_so_once(tmp_path: Path, db_path: Path):
    root = tmp_path / "share"
    root.mkdir()
    with watching(db_path, [root], polling=True, rescan_every=0.3) as heard:
        photo = draw_photo(root / "red.jpg", COLORS["red"])
        wait_for(lambda: str(photo) in indexed(db_path))
        photo.unlink()
        wait_for(lambda: not indexed(db_path))
    assert [note.path for note in heard.notes] == [str(root)]
    assert "rescanning it every 0.3 s" in heard.notes[0].message


def test_past_the_inotify_limit_a_root_is_rescanned(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from watchdog.observers import Observer

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Observer, "schedule", full)
    root = tmp_path / "Pictures"
    root.mkdir()
    with watching(db_path, [root], rescan_every=0.3) as heard:
        photo = draw_photo(root / "red.jpg", COLORS["red"])
        wait_for(lambda: str(photo) in indexed(db_path))
    assert len(heard.notes) == 1
    assert "fs.inotify.max_user_watches" in heard.notes[0].message


def test_a_running_watcher_is_seen_with_its_state(tmp_path: Path, db_path: Path):
    root = tmp_path / "Pictures"
    root.mkdir()
    before = time.time()
    with watching(db_path, [root]):
        photo = draw_photo(root / "red.jpg", COLORS["red"])
        wait_for(lambda: str(photo) in indexed(db_path))
        state = wait_for(lambda: (s := running_watcher(db_path)) and s.last_path and s)
        assert state.pid == os.getpid()
        assert state.roots == [str(root)]
        assert state.since >= before
        assert state.last_path == str(photo)
        assert state.waiting == 0
    assert running_watcher(db_path) is None


def test_index_beside_a_watcher_is_refused_naming_it(tmp_path: Path, db_path: Path):
    root = tmp_path / "Pictures"
    root.mkdir()
    with watching(db_path, [root]):
        done = subprocess.run(fake_cli("index", str(root)), capture_output=True, text=True)
    assert done.returncode == 2
    assert f"mediafind watch (pid {os.getpid()}) is keeping" in done.stderr
    assert "--reembed" in done.stderr


def test_forget_and_roots_remove_beside_a_watcher(tmp_path: Path, db_path: Path):
    first, second = tmp_path / "Pictures", tmp_path / "Camera"
    kept = draw_photo(first / "kept.jpg", COLORS["red"])
    dropped = draw_photo(first / "dropped.jpg", COLORS["green"])
    other = draw_photo(second / "other.jpg", COLORS["blue"])
    with watching(db_path, [first, second], rescan_every=0.2):
        wait_for(lambda: len(indexed(db_path)) == 3)
        forgot = subprocess.run(fake_cli("forget", str(dropped)), capture_output=True, text=True)
        assert forgot.returncode == 0, forgot.stderr
        removed = subprocess.run(
            fake_cli("roots", "remove", str(second)), capture_output=True, text=True
        )
        assert removed.returncode == 0, removed.stderr
        # Changes after: the forgotten stay out, the watched still come in.
        draw_photo(dropped, COLORS["yellow"])
        draw_photo(second / "later.jpg", COLORS["white"])
        new = draw_photo(first / "new.jpg", COLORS["black"])
        wait_for(lambda: str(new) in indexed(db_path))
        time.sleep(0.6)
    assert set(indexed(db_path)) == {str(kept), str(new)}
    assert str(other) not in indexed(db_path)


def test_sigterm_stops_the_watch_command_within_a_second(tmp_path: Path, db_path: Path):
    root = tmp_path / "Pictures"
    root.mkdir()
    command = subprocess.Popen(
        fake_cli("watch", str(root), "--settle", "0.2"),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert command.stderr is not None
        assert "watching" in command.stderr.readline()
        photo = draw_photo(root / "red.jpg", COLORS["red"])
        wait_for(lambda: str(photo) in indexed(db_path))
        started = time.monotonic()
        command.send_signal(signal.SIGTERM)
        command.wait(5)
        assert time.monotonic() - started < 1.0
    finally:
        command.kill()
        command.wait()
    assert running_watcher(db_path) is None
    assert set(indexed(db_path)) == {str(photo)}


def test_prune_and_reembed_run_beside_a_watcher(tmp_path: Path, db_path: Path):
    root = tmp_path / "Pictures"
    photo = draw_photo(root / "red.jpg", COLORS["red"])
    with watching(db_path, [root]):
        wait_for(lambda: str(photo) in indexed(db_path))
        pruned = subprocess.run(fake_cli("prune"), capture_output=True, text=True)
        assert pruned.returncode == 0, pruned.stderr
        reembedded = subprocess.run(
            fake_cli("index", "--reembed", str(root)), capture_output=True, text=True
        )
        assert reembedded.returncode == 0, reembedded.stderr
        # The watcher still writes after them.
        later = draw_photo(root / "later.jpg", COLORS["green"])
        wait_for(lambda: str(later) in indexed(db_path))
    assert set(indexed(db_path)) == {str(photo), str(later)}


def test_status_shows_a_running_watcher(tmp_path: Path, db_path: Path):
    root = tmp_path / "Pictures"
    root.mkdir()
    with watching(db_path, [root]):
        photo = draw_photo(root / "red.jpg", COLORS["red"])
        wait_for(lambda: (s := running_watcher(db_path)) and s.last_path == str(photo))
        shown = subprocess.run(fake_cli("status"), capture_output=True, text=True)
        as_json = subprocess.run(fake_cli("status", "--json"), capture_output=True, text=True)
    lines = shown.stdout.splitlines()
    watch_line = next(line for line in lines if line.startswith("watch "))
    assert f"(pid {os.getpid()})" in watch_line
    assert "running since" in watch_line
    assert any(line.strip() == "0 files waiting" for line in lines)
    assert any(f"last change indexed: {photo} at" in line for line in lines)
    watcher = json.loads(as_json.stdout)["watcher"]
    assert (watcher["pid"], watcher["last_path"], watcher["roots"]) == (
        os.getpid(),
        str(photo),
        [str(root)],
    )
    after = subprocess.run(fake_cli("status", "--json"), capture_output=True, text=True)
    assert json.loads(after.stdout)["watcher"] is None


@pytest.fixture
def sidecar(fake_models: Any) -> Iterator[None]:
    with modalities.registered(SidecarWords()):
        yield


def recording(path: Path, words: str) -> Path:
    make_audio(path, [("tone", 3.0)])
    Path(str(path) + ".words").write_text(words)
    return path


@pytest.mark.usefixtures("sidecar")
def test_index_files_runs_the_sound_pass_and_the_words_pass_apart(tmp_path: Path, db_path: Path):
    memo = recording(tmp_path / "memo.wav", "0 2 happy birthday\n")
    with Store.open(db_path, create=True) as store:
        models = modalities.models_for_index(store)
        first = index_files(store, [memo], models, later=False)
        assert first.new == 1
        assert not store.words_indexed(str(memo), "sidecar")
        later = index_files(store, [memo], models, first=False)
        assert later.words == 1
        assert store.words_of(str(memo), "sidecar") == [(0.0, 2.0, "happy birthday")]


@pytest.mark.usefixtures("sidecar")
def test_the_watcher_reads_words_after_the_sounds(tmp_path: Path, db_path: Path):
    root = tmp_path / "Memos"
    root.mkdir()
    with watching(db_path, [root]) as heard:
        memo = recording(root / "memo.wav", "0 2 happy birthday\n")

        def has_words() -> bool:
            with Store.open(db_path, create=False, readonly=True) as store:
                return store.words_indexed(str(memo), "sidecar")

        wait_for(has_words)
    # Two writes of the one file: its sound, then (later, apart) its words.
    assert heard.outcomes(memo) == ["embedded", "embedded"]
