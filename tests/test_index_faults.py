"""Faults around the index file: two runs at once, a busy or full disk, a
read-only index, a damaged page. Each ends as one clear line and exit 2, and
loses nothing that was committed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import COLORS, draw_photo

import mediafind.db as db_module
from mediafind.db import Store, WriterLock

# The model is not the subject here: deterministic stand-ins, no torch.
pytestmark = pytest.mark.usefixtures("fake_models")


def file_count(db_path: Path) -> int:
    with Store.open(db_path, create=False) as store:
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return int(store.conn.execute("SELECT count(*) FROM files").fetchone()[0])


def test_a_second_index_run_is_refused_while_one_runs(cli, library: Path, db_path: Path):
    cli("index", library)
    with WriterLock(db_path):
        second = cli("index", library)
        search = cli("search", "x", "--paths")
    assert second.exit_code == 2
    assert f"another mediafind index run (pid {os.getpid()}) is writing to {db_path}" in (
        second.stderr
    )
    assert len(search.stdout.splitlines()) == len(COLORS)  # searching is never blocked
    assert cli("index", library).exit_code == 0  # and the lock goes with its holder


def test_two_first_runs_at_once_never_crash(tmp_path: Path, library: Path, db_path: Path):
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "mediafind", "index", str(library)],
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        for _ in range(2)
    ]
    outcomes = [(run.wait(timeout=300), run.stderr.read()) for run in runs]  # type: ignore[union-attr]
    assert all(code in (0, 2) for code, _ in outcomes), outcomes
    assert any(code == 0 for code, _ in outcomes)
    for code, stderr in outcomes:
        assert "Traceback" not in stderr
        if code == 2:
            assert "another mediafind index run" in stderr
    assert file_count(db_path) == len(COLORS)


def test_a_lock_held_too_long_is_one_clear_line(cli, library: Path, db_path: Path, monkeypatch):
    cli("index", library)
    monkeypatch.setattr(db_module, "BUSY_TIMEOUT_MS", 200)
    with Store.open(db_path, create=False) as other, other.transaction():
        other.conn.execute("DELETE FROM roots")
        result = cli("forget", library / "2023")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"mediafind: error: the index {db_path} is busy")
    assert len(result.stderr.splitlines()) == 1


def test_forget_writes_in_batches(cli, library: Path, db_path: Path, monkeypatch):
    cli("index", library)
    monkeypatch.setattr(db_module, "DELETE_BATCH", 3)
    transactions = []
    real = Store.transaction

    def counted(self):  # type: ignore[no-untyped-def]
        transactions.append(1)
        return real(self)

    monkeypatch.setattr(Store, "transaction", counted)
    assert cli("forget", library).exit_code == 0
    # 8 files in batches of 3, then the forgotten path: one lock at a time, briefly.
    assert len(transactions) == 3 + 1


def test_a_full_disk_stops_the_run_and_the_next_one_resumes(
    cli, tmp_path: Path, db_path: Path, monkeypatch
):
    root = tmp_path / "photos"
    for number in range(10):
        draw_photo(root / f"{number}.png", (number * 20, 40, 200), size=(64, 48))
    assert cli("index", root).exit_code == 0
    with Store.open(db_path, create=False) as store:
        pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    long_names = root / ("deep-" * 30)
    for number in range(60):
        draw_photo(long_names / f"{'x' * 120}-{number}.png", (number * 4, 200, 40), size=(64, 48))
    configure = db_module._configure

    def cramped(conn, *, write):  # type: ignore[no-untyped-def]
        configure(conn, write=write)
        conn.execute(f"PRAGMA max_page_count = {pages + 3}")  # SQLite's own "disk is full"

    monkeypatch.setattr(db_module, "_configure", cramped)
    full = cli("index", root)
    assert full.exit_code == 2
    assert full.stderr.splitlines()[-1].startswith(
        f"mediafind: error: no space left for the index {db_path}"
    )
    stored = file_count(db_path)
    assert 10 < stored < 70  # what was committed before the disk filled is kept
    monkeypatch.setattr(db_module, "_configure", configure)
    again = cli("index", root)
    assert again.exit_code == 0, again.stderr
    assert f"{70 - stored} new" in again.stderr
    assert file_count(db_path) == 70


def test_a_failed_compaction_is_retried_by_the_next_prune(cli, library: Path, monkeypatch):
    import mediafind.upkeep as upkeep
    from mediafind.errors import DatabaseError

    cli("index", library)
    monkeypatch.setattr(upkeep, "VACUUM_FREE_SHARE", 0.0)
    shutil.rmtree(library / "2023")
    with monkeypatch.context() as patched:
        patched.setattr(Store, "vacuum", lambda self: (_ for _ in ()).throw(DatabaseError("full")))
        failed = cli("prune")
    assert failed.exit_code == 0
    assert "pruned 4 files" in failed.stderr
    assert "could not compact the index (full); the next prune tries again" in failed.stderr
    again = cli("prune")  # nothing left to remove, but the free pages are still there
    assert "pruned 0 files, index compacted" in again.stderr


def test_a_damaged_page_during_search_is_one_clear_line(cli, library: Path, db_path: Path):
    cli("index", library)
    with Store.open(db_path, create=False) as store:
        page_size = store.conn.execute("PRAGMA page_size").fetchone()[0]
        root_page = store.conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'segments'"
        ).fetchone()[0]
    data = bytearray(db_path.read_bytes())
    at = (root_page - 1) * page_size
    data[at : at + page_size] = os.urandom(page_size)
    db_path.write_bytes(bytes(data))
    result = cli("search", "x")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"mediafind: error: the index {db_path} is damaged")
    assert len(result.stderr.splitlines()) == 1


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder every user can read: where a test hands an index to another user."""
    folder = Path(tempfile.mkdtemp(prefix="mediafind-shared-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def run_without_write_access(
    folder: Path, *args: str, read_only: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`mediafind ARGS` with `folder` (or only the file `read_only` in it)
    mounted read-only (a read-only share or disk, another user's file), in a
    mount namespace of its own so nothing outside changes. Root writes through
    file permissions, so a mount is the faithful way."""
    env = dict(os.environ, MEDIAFIND_CACHE=str(folder / "cache"))
    target = read_only or folder
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    return subprocess.run(
        [
            "unshare",
            "-rm",
            "sh",
            "-c",
            script,
            "sh",
            str(target),
            sys.executable,
            "-m",
            "mediafind",
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def index_in_own_process(photos: Path) -> None:
    """`mediafind index PHOTOS` in a process of its own, so with the real (tiny)
    picture model, as the runs without write access that follow use."""
    built = subprocess.run(
        [sys.executable, "-m", "mediafind", "index", str(photos), "--no-audio"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    assert built.returncode == 0, built.stderr


def test_an_index_that_can_only_be_read_can_be_searched(
    shared_folder: Path, tiny_clip: str, monkeypatch
):
    model = shared_folder / "model"
    shutil.copytree(tiny_clip.removeprefix("local-dir:"), model)
    photos = shared_folder / "photos"
    for name in ("red", "green", "blue"):
        draw_photo(photos / f"{name}.jpg", COLORS[name])
    index = shared_folder / "index.db"
    monkeypatch.setenv("MEDIAFIND_MODEL", f"local-dir:{model}")
    monkeypatch.setenv("MEDIAFIND_DB", str(index))
    monkeypatch.setenv("MEDIAFIND_CACHE", str(shared_folder / "cache"))
    index_in_own_process(photos)
    assert not Path(f"{index}-wal").exists()  # closed cleanly: nothing beside it to share

    found = run_without_write_access(shared_folder, "search", "a photo", "--paths")
    assert found.returncode == 0, found.stderr
    assert sorted(Path(p).name for p in found.stdout.split()) == [
        "blue.jpg",
        "green.jpg",
        "red.jpg",
    ]
    status = run_without_write_access(shared_folder, "status", "--json")
    assert status.returncode == 0, status.stderr
    similar = run_without_write_access(shared_folder, "similar", str(photos / "red.jpg"), "--paths")
    assert similar.returncode == 0, similar.stderr
    written = run_without_write_access(shared_folder, "index", str(photos), "--no-audio")
    assert written.returncode == 2
    assert written.stderr.startswith("mediafind: error: ") and "Traceback" not in written.stderr
    assert "read-only" in written.stderr


def test_an_index_file_that_cannot_be_written_is_refused_before_any_work(
    shared_folder: Path, monkeypatch
):
    """Its folder writable (the lock file beside it can be made), the file
    itself not: one line, before any file is read or any model loaded."""
    photos = shared_folder / "photos"
    draw_photo(photos / "red.jpg", COLORS["red"])
    index = shared_folder / "index.db"
    monkeypatch.setenv("MEDIAFIND_DB", str(index))
    index_in_own_process(photos)
    # Work to do, a file of it broken: had any file been read, it would be said.
    draw_photo(photos / "yellow.jpg", COLORS["yellow"])
    (photos / "broken.jpg").write_bytes(b"not a photo")

    refused = run_without_write_access(
        shared_folder, "index", str(photos), "--no-audio", read_only=index
    )

    assert refused.returncode == 2
    assert refused.stderr.startswith("mediafind: error: ") and "read-only" in refused.stderr
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert file_count(index) == 1
