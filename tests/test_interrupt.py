"""An interrupted run (Ctrl-C, kill, kill -9) leaves a consistent index that the
next run completes, with nothing lost and nothing duplicated."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import fake_cli

from mediafind.db import Store

TOTAL = 400


@pytest.fixture
def many_photos(tmp_path: Path) -> Path:
    from PIL import Image

    root = tmp_path / "many"
    root.mkdir()
    for number in range(TOTAL):
        color = (number % 256, (number * 7) % 256, number // 256 * 60)
        Image.new("RGB", (320, 240), color).save(root / f"{number:04d}.png")
    return root


def committed_files(db_path: Path) -> int:
    if not db_path.exists():
        return 0
    try:
        with Store.open(db_path, create=False) as store:
            return int(store.conn.execute("SELECT count(*) FROM files").fetchone()[0])
    except Exception:
        return 0  # the first run may still be creating the schema


def start_index(root: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        fake_cli("index", str(root)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )


def stop_after_first_commit(process: subprocess.Popen[bytes], db_path: Path, sig: int) -> int:
    deadline = time.monotonic() + 120
    while committed_files(db_path) == 0:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(sig)
    process.wait(timeout=60)
    return committed_files(db_path)


def assert_consistent(db_path: Path, expected_files: int) -> None:
    with Store.open(db_path, create=False) as store:
        conn = store.conn
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        space = store.active_space("visual")
        assert space is not None
        files = conn.execute("SELECT count(*) FROM files WHERE status = 'ok'").fetchone()[0]
        segments = conn.execute("SELECT count(*) FROM segments").fetchone()[0]
        vectors = conn.execute(f"SELECT count(*) FROM {space.table}").fetchone()[0]
        paths = conn.execute("SELECT count(DISTINCT path) FROM files").fetchone()[0]
        orphans = conn.execute(
            f"SELECT count(*) FROM {space.table} v "
            "WHERE NOT EXISTS (SELECT 1 FROM segments s WHERE s.id = v.segment_id)"
        ).fetchone()[0]
    assert files == segments == vectors == paths == expected_files
    assert orphans == 0


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_is_completed_by_the_next(many_photos: Path, db_path: Path, sig: int):
    process = start_index(many_photos)
    done = stop_after_first_commit(process, db_path, sig)
    assert 0 < done < TOTAL, "the run should have been stopped part-way"
    if sig != signal.SIGKILL:
        assert process.returncode == 130
        assert b"interrupted after" in process.stderr.read()  # type: ignore[union-attr]
    assert_consistent(db_path, done)

    second = subprocess.run(
        fake_cli("index", str(many_photos)),
        capture_output=True,
        env=dict(os.environ),
        timeout=300,
    )
    assert second.returncode == 0, second.stderr
    assert f"{TOTAL - done} new".encode() in second.stderr
    assert_consistent(db_path, TOTAL)
