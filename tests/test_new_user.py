"""What a new user met: progress that tells the truth, all missing models at
once, errors about what they did, quick `similar`, and quiet failures made
audible."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import COLORS, draw_photo, fake_cli
from media_factory import Shot, make_audio, make_video

from mediafind.db import Store
from mediafind.events import FileDone, FileProgress, ModelPreparing, ModelReady, ScanDone
from mediafind.output import IndexReporter

README = Path(__file__).resolve().parent.parent / "README.md"


# Progress -----------------------------------------------------------------


def terminal_reporter() -> IndexReporter:
    reporter = IndexReporter(io.StringIO())
    reporter.console = reporter.console.__class__(
        file=reporter.stream, force_terminal=True, width=120
    )
    return reporter


def test_progress_counts_bytes_and_shows_how_far_into_a_long_file():
    with terminal_reporter() as reporter:
        reporter(ScanDone(found=3, to_process=2, work_bytes=1000))
        assert reporter.progress is not None
        task = reporter.progress.tasks[0]
        reporter(FileProgress("/v/lecture.mkv", 800, 80.0, 180.0))
        assert task.fields["current"] == "lecture.mkv 1:20/3:00"
        # 80 s of 180 s of an 800-byte file: 355 bytes of the 1000 to do.
        assert task.completed == pytest.approx(800 * 80 / 180)
        reporter(FileDone("/v/lecture.mkv", "embedded", 800))
        reporter(FileDone("/v/photo.jpg", "embedded", 200))
        assert task.completed == 1000 and task.fields["files"] == "2/2"


def test_a_model_being_prepared_shows_a_live_indicator_then_how_long_it_took():
    with terminal_reporter() as reporter:
        reporter(ModelPreparing("ViT-B-32", "converting it (fp32) for this CPU, once"))
        assert reporter.status is not None  # a spinner, refreshed while the work goes on
        reporter(ModelReady("ViT-B-32", 49.4))
        assert reporter.status is None
    assert "ViT-B-32 is ready for this CPU (49 s, once)" in reporter.stream.getvalue()


@pytest.mark.usefixtures("fake_models")
def test_warnings_come_as_problems_are_found_not_at_the_end(tmp_path: Path, fake_models):
    from mediafind.index import index_paths

    root = tmp_path / "media"
    make_video(root / "a-long.mp4", [Shot(3, (200, 30, 30)), Shot(3, (30, 30, 200))])
    (root / "b-broken.jpg").write_text("not a picture")
    draw_photo(root / "c.jpg", COLORS["green"])
    visual = fake_models["visual"]
    real_decode = visual.decode

    def slow(path, kind, embedder, options, progress):  # type: ignore[no-untyped-def]
        if kind == "video":
            time.sleep(1.5)  # a long video, still being read
        return real_decode(path, kind, embedder, options, progress)

    visual.decode = slow
    events: list[object] = []
    with Store.open(tmp_path / "index.db", create=True) as store:
        index_paths(store, [root], on_event=events.append)
    order = [(type(e).__name__, Path(e.path).name) for e in events if hasattr(e, "path")]
    broken = order.index(("Problem", "b-broken.jpg"))
    assert broken < order.index(("FileDone", "a-long.mp4"))
    progress = [e for e in events if isinstance(e, FileProgress)]
    assert progress and all(Path(e.path).name == "a-long.mp4" for e in progress)
    positions = [e.position for e in progress]
    assert positions == sorted(positions) and positions[-1] >= 3.0
    assert progress[0].duration == pytest.approx(6.0, abs=0.2)


# Models -------------------------------------------------------------------


def test_every_missing_model_is_named_in_one_message_before_any_work(
    cli, tmp_path: Path, model_cache: Path, db_path: Path
):
    root = tmp_path / "media"
    draw_photo(root / "a.jpg", COLORS["red"])
    make_audio(root / "memo.wav", [("tone", 2.0)])
    before = sorted(model_cache.iterdir())
    result = cli(
        "index",
        root,
        "--model",
        "ViT-B-32:laion2b_s34b_b79k",
        "--audio-model",
        "laion/clap-htsat-unfused",
    )
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    line = result.stderr
    assert line.startswith("mediafind: error: 2 models this run needs cannot be had: ")
    assert "--model ViT-B-32:laion2b_s34b_b79k: it is not in the cache" in line
    assert "--audio-model laion/clap-htsat-unfused: it is not in the cache" in line
    for fix in ("--model local-dir:FOLDER", "--audio-model FOLDER", "--no-audio", "Offline use"):
        assert fix in line
    assert sorted(model_cache.iterdir()) == before  # nothing converted
    assert not db_path.exists()  # and no index was left to remember a model


def test_a_moved_model_folder_of_the_index_is_named_as_such(
    cli, tmp_path: Path, tiny_clap: str, monkeypatch
):
    folder = tmp_path / "models" / "clap"
    shutil.copytree(tiny_clap, folder)
    monkeypatch.delenv("MEDIAFIND_AUDIO_MODEL")
    root = tmp_path / "sounds"
    make_audio(root / "memo.wav", [("tone", 3.0)])
    assert cli("index", root, "--audio-model", folder).exit_code == 0
    moved = tmp_path / "elsewhere"
    folder.rename(moved)
    result = cli("search", "beach")
    assert result.exit_code == 2
    assert result.stderr == (
        f"mediafind: error: the index's sound model folder {folder} no longer exists; if it "
        "moved, point at its new place with --audio-model NEW-FOLDER (the index checks that "
        "it holds the same weights)\n"
    )
    assert cli("search", "beach", "--audio-model", moved).exit_code == 0


def test_similar_of_a_file_that_is_not_media_does_not_mention_like(cli, library: Path, tmp_path):
    cli("index", library)
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list")
    result = cli("similar", notes)
    assert result.exit_code == 2
    assert "--like" not in result.stderr and str(notes) in result.stderr
    missing = cli("similar", tmp_path / "gone.jpg")
    assert missing.stderr == f"mediafind: error: {tmp_path / 'gone.jpg'}: no such file\n"


@pytest.mark.usefixtures("fake_models")
def test_similar_looks_up_an_indexed_example(cli, tmp_path: Path, fake_models, monkeypatch):
    root = tmp_path / "media"
    for name in ("red", "green", "blue"):
        draw_photo(root / f"{name}.jpg", COLORS[name])
    make_audio(root / "memo.wav", [("tone", 5.0), ("noise", 5.0)])
    make_audio(root / "rain.wav", [("noise", 6.0)])
    make_video(root / "clip.mp4", [Shot(2, (200, 30, 30)), Shot(2, (30, 30, 200))])
    cli("index", root)
    expected = {
        name: json.loads(cli("similar", root / name, "--json").stdout)
        for name in ("red.jpg", "memo.wav", "clip.mp4")
    }
    embedded: list[str] = []
    for modality in fake_models.values():
        real = modality.embed_example

        def counting(example, embedder, real=real):  # type: ignore[no-untyped-def]
            embedded.append(example.path)
            return real(example, embedder)

        monkeypatch.setattr(modality, "embed_example", counting)
    for name, before in expected.items():
        again = cli("similar", root / name, "--json")
        assert json.loads(again.stdout) == before
    assert cli("similar", f"{root / 'memo.wav'}@0:06", "--json").exit_code == 0
    assert embedded == []  # looked up, not decoded and embedded again
    draw_photo(root / "red.jpg", COLORS["yellow"])  # changed since it was indexed
    cli("similar", root / "red.jpg", "--json")
    assert embedded == [str(root / "red.jpg")]


# Quiet failures -----------------------------------------------------------


def run_on_a_terminal(*args: str) -> tuple[int, str]:
    """`mediafind ARGS` with stderr on a pseudo-terminal, as a person runs it."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        fake_cli(*args), stdout=subprocess.PIPE, stderr=follower, env=dict(os.environ)
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    code = process.wait(timeout=60)
    os.close(leader)
    return code, b"".join(chunks).decode().replace("\r\n", "\n")


@pytest.mark.usefixtures("fake_models")
def test_no_results_is_said_on_a_terminal(cli, library: Path, tmp_path: Path):
    cli("index", library)
    code, stderr = run_on_a_terminal("search", "x", "--min-duration", "10", "--type", "image")
    assert code == 1
    assert "mediafind: no results (0 indexed files pass the filters)" in stderr
    piped = cli("search", "x", "--min-duration", "10")
    assert piped.exit_code == 1 and piped.stderr == ""  # scripts read the exit code


@pytest.mark.usefixtures("fake_models")
def test_in_a_folder_that_is_not_indexed_warns(cli, library: Path, tmp_path: Path):
    cli("index", library)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = cli("search", "x", "--in", elsewhere)
    assert f"mediafind: warning: --in {elsewhere}: no indexed files there" in result.stderr


@pytest.mark.usefixtures("fake_models")
def test_times_with_minutes_or_seconds_past_59_are_refused(cli, tmp_path: Path):
    root = tmp_path / "v"
    make_video(root / "clip.mp4", [Shot(2, (200, 30, 30))])
    cli("index", root)
    result = cli("similar", f"{root / 'clip.mp4'}@9:99")
    assert result.exit_code == 2 and "'9:99' is not a time" in result.stderr
    assert cli("search", "x", "--max-duration", "1:60").exit_code == 2


@pytest.mark.usefixtures("fake_models")
def test_unquoted_words_are_one_query(cli, library: Path):
    cli("index", library)
    quoted = cli("search", "red bicycle", "--json").stdout
    assert cli("search", "red", "bicycle", "--json").stdout == quoted


def test_duplicates_offers_only_kinds_with_pictures(cli):
    text = cli("duplicates", "--help").stdout
    assert re.search(r"image\|video", text) and "audio" not in text


def test_verbose_says_which_runtime_ran(cli, library: Path):
    cli("index", library, "--no-audio")
    searched = cli("search", "a red photo", "-v")
    assert searched.exit_code == 0
    assert "ran on ONNX Runtime (CPU) for queries" in searched.stderr
    red = next(library.rglob("red.jpg"))
    similar = cli("similar", red, "-v")
    assert similar.exit_code == 0
    assert f"{red}: its picture vectors were looked up in the index" in similar.stderr


@pytest.mark.usefixtures("fake_models")
def test_status_lists_partly_indexed_files(cli, tmp_path: Path):
    root = tmp_path / "v"
    full = make_video(root / "full.mkv", [Shot(4, (200, 30, 30)), Shot(4, (30, 200, 30))])
    data = full.read_bytes()
    (root / "cut.mkv").write_bytes(data[: len(data) // 2])
    full.unlink()
    cli("index", root)
    shown = cli("status").stdout
    assert "partly indexed  1" in shown and f"{root / 'cut.mkv'}: " in shown
    listed = cli("status", "--failed").stdout
    assert listed.startswith(f"{root / 'cut.mkv'}: partly indexed: ")
    data = json.loads(cli("status", "--json").stdout)
    assert [Path(item["path"]).name for item in data["partial"]] == ["cut.mkv"]


@pytest.mark.usefixtures("fake_models")
def test_windows_of_one_steady_sound_are_one_moment(cli, tmp_path: Path):
    root = tmp_path / "hum"
    make_audio(root / "fridge.wav", [("tone", 12.0, 200.0)], rate=8000)
    cli("index", root)
    found = json.loads(cli("search", "a hum", "--json", "--modality", "audio").stdout)
    assert len(found) == 1
    # Windows of 2 s every 1.5 s, all alike: one moment from the first
    # window's start to the last's end (the last one that fits in 12 s).
    last_start = max(start * 1.5 for start in range(10) if start * 1.5 + 2.0 <= 12.0)
    assert [(m["start"], m["end"]) for m in found[0]["moments"]] == [(0.0, last_start + 2.0)]


def test_readme_completion_lines_work_in_a_fresh_home(tmp_path: Path):
    text = README.read_text(encoding="utf-8")
    section = text.split("## Shell completion", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None
    home = tmp_path / "home"
    home.mkdir()
    result = subprocess.run(
        ["bash", "-e", "-c", block.group(1)],
        cwd=README.parent,
        env={**os.environ, "HOME": str(home)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    for installed in (
        ".local/share/bash-completion/completions/mediafind",
        ".zfunc/_mediafind",
        ".config/fish/completions/mediafind.fish",
    ):
        assert (home / installed).is_file()
