"""Library upkeep: remembered roots, re-indexing them, prune, forget."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import COLORS, draw_photo

from mediafind.db import Store
from mediafind.upkeep import prune

# The model is not the subject here: deterministic stand-ins, no torch.
pytestmark = pytest.mark.usefixtures("fake_models")


def paths(cli) -> set[str]:  # type: ignore[no-untyped-def]
    return {
        Path(p).name
        for p in cli("search", "x", "--paths", "--limit", "100").stdout.split("\n")
        if p
    }


@pytest.fixture
def two_roots(tmp_path: Path) -> tuple[Path, Path]:
    first, second = tmp_path / "Pictures", tmp_path / "Phone"
    draw_photo(first / "a.jpg", COLORS["red"])
    draw_photo(first / "sub" / "b.jpg", COLORS["green"])
    draw_photo(second / "c.jpg", COLORS["blue"])
    return first, second


def test_roots_are_remembered_and_reindexed_without_arguments(cli, two_roots):
    first, second = two_roots
    cli("index", first, second)
    listed = cli("roots").stdout.splitlines()
    assert [line.split("\t")[0] for line in listed] == sorted([str(first), str(second)])
    draw_photo(second / "d.jpg", COLORS["white"])
    (first / "a.jpg").unlink()
    again = cli("index", "--verbose")
    assert again.exit_code == 0
    assert "1 new" in again.stderr and "1 removed" in again.stderr
    assert paths(cli) == {"b.jpg", "c.jpg", "d.jpg"}


def test_reindexing_without_a_terminal_is_quiet(cli, two_roots):
    cli("index", *two_roots)
    quiet = cli("index")
    assert quiet.exit_code == 0
    assert quiet.stderr == "" and quiet.stdout == ""


def test_a_missing_root_is_skipped_and_its_files_kept(cli, two_roots, tmp_path: Path):
    first, second = two_roots
    cli("index", first, second)
    shutil.move(second, tmp_path / "unmounted")
    result = cli("index")
    assert result.exit_code == 0
    assert f"{second}: not found" in result.stderr
    assert paths(cli) == {"a.jpg", "b.jpg", "c.jpg"}


def test_no_roots_remembered_is_a_usage_error(cli, db_path: Path):
    Store.open(db_path, create=True).close()
    result = cli("index")
    assert result.exit_code == 2
    assert "none remembered" in result.stderr


def test_roots_remove_forgets_the_folder_and_its_files(cli, two_roots):
    first, second = two_roots
    cli("index", first, second)
    result = cli("roots", "remove", second)
    assert result.exit_code == 0 and "and 1 file\n" in result.stderr
    assert paths(cli) == {"a.jpg", "b.jpg"}
    assert [line.split("\t")[0] for line in cli("roots").stdout.splitlines()] == [str(first)]
    assert cli("roots", "remove", second).exit_code == 2


def test_forget_files_and_folders(cli, two_roots):
    first, second = two_roots
    cli("index", first, second)
    result = cli("forget", first / "sub", second / "c.jpg")
    assert result.exit_code == 0
    assert f"forgot 1 file at {first / 'sub'}" in result.stderr
    assert f"forgot 1 file at {second / 'c.jpg'}" in result.stderr
    assert paths(cli) == {"a.jpg"}
    assert (first / "sub" / "b.jpg").exists()


def test_prune_drops_gone_files_anywhere_but_keeps_missing_roots(
    cli, two_roots, tmp_path: Path, db_path: Path
):
    first, second = two_roots
    # Enough photos that every shard of the vectors holds several.
    for number, color in enumerate(list(COLORS.values()) * 2):
        draw_photo(first / "more" / f"{number}.jpg", color)
    cli("index", first, second)
    (first / "sub" / "b.jpg").unlink()
    shutil.move(second, tmp_path / "unmounted")
    result = cli("prune")
    assert result.exit_code == 0
    assert "pruned 1 file\n" in result.stderr and "its files kept" in result.stderr
    assert "compacted" not in result.stderr  # one small row freed: not worth a VACUUM
    assert {"a.jpg", "c.jpg"} <= paths(cli) and "b.jpg" not in paths(cli)


def test_prune_compacts_the_file_when_much_was_freed(
    cli, tmp_path: Path, db_path: Path, monkeypatch
):
    import mediafind.upkeep as upkeep

    root = tmp_path / "many"
    for number in range(120):
        draw_photo(root / f"{number}.png", (number, 255 - number, 90), size=(64, 48))
    cli("index", root)
    before = db_path.stat().st_size
    for photo in list(root.iterdir())[:110]:
        photo.unlink()
    with Store.open(db_path, create=False) as store:
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        # sqlite-vec keeps its vector chunks allocated, so deleting rows frees
        # pages only in the ordinary tables: a small share in a tiny index.
        monkeypatch.setattr(upkeep, "VACUUM_FREE_SHARE", 0.01)
        summary = prune(store)
        assert store.free_share() == 0.0
    assert summary.removed == 110 and summary.vacuumed
    assert db_path.stat().st_size < before
    status = json.loads(cli("status", "--json").stdout)
    assert status["files"]["image"] == 10


def test_forget_of_a_path_neither_indexed_nor_on_disk_is_a_typo(cli, two_roots, db_path: Path):
    first, second = two_roots
    cli("index", first, second)
    result = cli("forget", second / "c.jpg", first / "sbu")
    assert result.exit_code == 2
    assert result.stderr == (
        f"mediafind: error: {first / 'sbu'}: nothing is indexed there and there is no such "
        "file or folder; check the spelling (mediafind roots lists the indexed folders)\n"
    )
    # Nothing removed, nothing remembered: not even the good path given with it.
    assert paths(cli) == {"a.jpg", "b.jpg", "c.jpg"}
    with Store.open(db_path, create=False) as store:
        assert store.forgotten() == []


def test_roots_marks_a_forgotten_root_in_the_date_column(cli, two_roots):
    first, second = two_roots
    cli("index", first)
    cli("index", second, "--exclude", "Trash", "--exclude", "*.tmp")
    assert cli("forget", second).exit_code == 0
    lines = dict(line.split("\t", 1) for line in cli("roots").stdout.splitlines())
    assert lines[str(second)] == "forgotten\tTrash\t*.tmp"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", lines[str(first)])
    cli("index", second)  # named again: no longer forgotten
    again = dict(line.split("\t", 1) for line in cli("roots").stdout.splitlines())
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\tTrash\t\*\.tmp", again[str(second)])
