"""Re-indexing touches only what changed: unchanged, changed, moved, copied, deleted."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import COLORS, draw_photo
from fake_modality import FakePictures

from mediafind.db import Store
from mediafind.events import IndexSummary
from mediafind.index import index_paths

# Runs with the fake models: what is decoded and embedded is the subject here.
pytestmark = pytest.mark.usefixtures("fake_models")


class Spy:
    """Counts decodes and embedded pictures through the (fake) modality."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fakes: dict) -> None:  # type: ignore[type-arg]
        self.decoded: list[str] = []
        self.embedded = 0
        visual = fakes["visual"]
        real_decode = visual.decode
        real_embed = FakePictures.embed_batch

        def decode(path, kind, embedder, options, progress):  # type: ignore[no-untyped-def]
            self.decoded.append(path)
            return real_decode(path, kind, embedder, options, progress)

        def embed(embedder, inputs):  # type: ignore[no-untyped-def]
            self.embedded += len(inputs)
            return real_embed(embedder, inputs)

        monkeypatch.setattr(visual, "decode", decode)
        monkeypatch.setattr(FakePictures, "embed_batch", embed)

    def reset(self) -> None:
        self.decoded.clear()
        self.embedded = 0


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch, fake_models: dict) -> Spy:  # type: ignore[type-arg]
    return Spy(monkeypatch, fake_models)


def run(db_path: Path, root: Path) -> IndexSummary:
    with Store.open(db_path, create=True) as store:
        return index_paths(store, [root])


def indexed_paths(db_path: Path) -> dict[str, int]:
    with Store.open(db_path, create=False) as store:
        rows = store.conn.execute("SELECT path, id FROM files WHERE status = 'ok'").fetchall()
    return {row[0]: row[1] for row in rows}


def vector_of(db_path: Path, path: Path) -> bytes:
    with Store.open(db_path, create=False) as store:
        space = store.active_space("visual")
        assert space is not None
        row = store.conn.execute(
            f"SELECT v.embedding FROM {space.table} v JOIN segments s ON s.id = v.segment_id "
            "JOIN files f ON f.id = s.file_id WHERE f.path = ?",
            (str(path),),
        ).fetchone()
    return bytes(row[0])


def test_first_run_indexes_every_photo(db_path: Path, library: Path, spy: Spy):
    summary = run(db_path, library)
    assert summary.new == len(COLORS)
    assert (summary.changed, summary.moved, summary.removed, summary.failed) == (0, 0, 0, 0)
    assert spy.embedded == len(COLORS)
    assert len(indexed_paths(db_path)) == len(COLORS)


def test_unchanged_files_are_not_decoded_again(db_path: Path, library: Path, spy: Spy):
    run(db_path, library)
    spy.reset()
    summary = run(db_path, library)
    assert summary.unchanged == len(COLORS)
    assert summary.new == summary.changed == 0
    assert spy.decoded == [] and spy.embedded == 0


def test_changed_file_is_embedded_again(db_path: Path, library: Path, spy: Spy):
    run(db_path, library)
    target = next(library.rglob("red.jpg"))
    before = vector_of(db_path, target)
    draw_photo(target, COLORS["blue"], size=(200, 100), stripe=COLORS["white"])
    spy.reset()
    summary = run(db_path, library)
    assert summary.changed == 1 and summary.unchanged == len(COLORS) - 1
    assert spy.decoded == [str(target)]
    assert vector_of(db_path, target) != before


def test_touched_file_keeps_its_vectors_without_decoding(db_path: Path, library: Path, spy: Spy):
    run(db_path, library)
    target = next(library.rglob("green.jpg"))
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    spy.reset()
    summary = run(db_path, library)
    assert summary.unchanged == len(COLORS) and summary.changed == 0
    assert spy.decoded == []
    spy.reset()
    assert run(db_path, library).unchanged == len(COLORS)
    assert spy.decoded == []  # the new mtime was recorded


def test_moved_file_reuses_vectors_and_keeps_its_row(db_path: Path, library: Path, spy: Spy):
    run(db_path, library)
    source = next(library.rglob("blue.jpg"))
    old_id = indexed_paths(db_path)[str(source)]
    vector = vector_of(db_path, source)
    destination = library / "renamed" / "holiday.jpg"
    destination.parent.mkdir()
    source.rename(destination)
    spy.reset()
    summary = run(db_path, library)
    assert summary.moved == 1
    assert summary.new == summary.removed == 0
    assert spy.decoded == [] and spy.embedded == 0
    paths = indexed_paths(db_path)
    assert str(source) not in paths
    assert paths[str(destination)] == old_id
    assert vector_of(db_path, destination) == vector


def test_copied_file_reuses_vectors(db_path: Path, library: Path, spy: Spy):
    run(db_path, library)
    source = next(library.rglob("yellow.jpg"))
    copy = library / "copy of yellow.jpg"
    shutil.copy2(source, copy)
    spy.reset()
    summary = run(db_path, library)
    assert (summary.copied, summary.new, summary.reused) == (1, 0, 0)
    assert spy.embedded == 0
    paths = indexed_paths(db_path)
    assert str(source) in paths and str(copy) in paths
    assert vector_of(db_path, copy) == vector_of(db_path, source)


@pytest.fixture
def album(tmp_path: Path) -> Path:
    """Seven photos, two of them identical copies of two others."""
    root = tmp_path / "Pictures" / "Summer"
    for name in ("red", "green", "blue", "yellow", "white"):
        draw_photo(root / f"{name}.jpg", COLORS[name])
    shutil.copy2(root / "red.jpg", root / "red (1).jpg")
    shutil.copy2(root / "blue.jpg", root / "blue copy.jpg")
    return root


def test_a_renamed_folder_with_identical_files_is_all_moved(db_path: Path, album: Path, spy: Spy):
    run(db_path, album.parent)
    before = indexed_paths(db_path)
    renamed = album.with_name("Summer 2025")
    album.rename(renamed)
    spy.reset()
    summary = run(db_path, album.parent)
    assert (summary.new, summary.moved, summary.copied, summary.removed) == (0, 7, 0, 0)
    assert summary.reused == 0 and spy.embedded == 0
    after = indexed_paths(db_path)
    # Each row moved with its file: the same rows, under the new folder's paths.
    assert sorted(after.values()) == sorted(before.values())
    assert {Path(p).relative_to(renamed) for p in after} == {
        Path(p).relative_to(album) for p in before
    }


def test_a_copied_folder_is_counted_as_copied(db_path: Path, album: Path, spy: Spy, cli):
    run(db_path, album.parent)
    shutil.copytree(album, album.with_name("Summer backup"))
    spy.reset()
    summary = run(db_path, album.parent)
    assert (summary.new, summary.moved, summary.copied, summary.removed) == (0, 0, 7, 0)
    assert spy.embedded == 0
    assert len(indexed_paths(db_path)) == 14
    shutil.copy2(album / "green.jpg", album / "green again.jpg")
    line = cli("index", album.parent).stderr
    assert "0 new, 0 changed, 0 moved, 1 copied, 0 removed, 0 failed, 14 unchanged" in line


def test_deleted_file_disappears(db_path: Path, library: Path, cli):
    run(db_path, library)
    gone = next(library.rglob("black.jpg"))
    gone.unlink()
    summary = run(db_path, library)
    assert summary.removed == 1
    assert str(gone) not in indexed_paths(db_path)
    result = cli("search", "anything", "--paths", "--limit", "100")
    assert str(gone) not in result.stdout.splitlines()
    assert len(result.stdout.splitlines()) == len(COLORS) - 1


def test_removal_is_limited_to_the_roots_indexed(db_path: Path, tmp_path: Path):
    first = tmp_path / "first"
    second = tmp_path / "second"
    draw_photo(first / "a.jpg", COLORS["red"])
    draw_photo(second / "b.jpg", COLORS["blue"])
    run(db_path, first)
    run(db_path, second)
    summary = run(db_path, first)
    assert summary.removed == 0
    assert set(indexed_paths(db_path)) == {str(first / "a.jpg"), str(second / "b.jpg")}


def test_duplicates_within_one_run_are_all_indexed(db_path: Path, tmp_path: Path):
    root = tmp_path / "dupes"
    original = draw_photo(root / "a.jpg", COLORS["green"])
    for name in ("b.jpg", "c.jpg"):
        shutil.copy(original, root / name)
    summary = run(db_path, root)
    assert summary.new == 3
    assert len(indexed_paths(db_path)) == 3
