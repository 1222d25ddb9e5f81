"""An index made by an earlier release opens, keeps every row, and searches alike.

`data/index-v4.db.gz` was written by mediafind at commit b1c6ec4 (schema 4,
the release before the modality registry), indexing four photos, a broken
file, a video with sound and a recording with the tests' tiny models; see
data/README.md.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mediafind.db import Store
from mediafind.migrations import MIGRATIONS

FIXTURE = Path(__file__).parent / "data" / "index-v4.db.gz"
V4_TABLES = {
    "roots": "path, added_at, last_indexed_at",
    "files": "id, path, kind, size, mtime_ns, content_hash, status, error, width, height, "
    "duration, indexed_at, captured_at",
    "spaces": "id, modality, model, model_key, dim, active, created_at, shards",
    "segments": "id, file_id, modality, start, end",
    "file_spaces": "file_id, space_id",
    "space_stats": "space_id, vectors, mean, covariance, computed_at",
}


def raw_connection(path: Path):  # type: ignore[no-untyped-def]
    """The file as SQLite sees it, without mediafind (which would migrate it)."""
    import sqlean
    import sqlite_vec

    conn = sqlean.connect(str(path))
    conn.enable_load_extension(True)
    sqlite_vec.load(conn)
    return conn


@pytest.fixture
def old_index(tmp_path: Path) -> Path:
    path = tmp_path / "index.db"
    with gzip.open(FIXTURE) as packed, path.open("wb") as out:
        shutil.copyfileobj(packed, out)
    return path


def snapshot(path: Path) -> dict[str, list[tuple]]:  # type: ignore[type-arg]
    conn = raw_connection(path)
    try:
        rows = {
            table: sorted(conn.execute(f"SELECT {columns} FROM {table}").fetchall(), key=repr)
            for table, columns in V4_TABLES.items()
        }
        for (space_id,) in conn.execute("SELECT id FROM spaces").fetchall():
            rows[f"vec_space_{space_id}"] = sorted(
                conn.execute(f"SELECT segment_id, embedding FROM vec_space_{space_id}").fetchall()
            )
    finally:
        conn.close()
    return rows


def test_every_row_of_a_schema_4_index_survives_the_migrations(old_index: Path):
    before = snapshot(old_index)
    assert raw_connection(old_index).execute("PRAGMA user_version").fetchone()[0] == 4
    assert all(before[table] for table in V4_TABLES)  # real rows in every table
    with Store.open(old_index, create=False) as store:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert store.conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert snapshot(old_index) == before


def test_the_schema_no_longer_lists_the_modalities(old_index: Path):
    with Store.open(old_index, create=False) as store:
        file_id = store.conn.execute("SELECT min(id) FROM files").fetchone()[0]
        store.conn.execute(
            "INSERT INTO segments (file_id, modality, start, end) VALUES (?, 'speech', 1, 2)",
            (file_id,),
        )
        store.conn.execute(
            "INSERT INTO spaces (modality, model, model_key, dim, created_at) "
            "VALUES ('speech', 'm', 'k', 0, 0)"
        )
        # Foreign keys still hold after the rebuild.
        with pytest.raises(Exception, match="FOREIGN KEY"):
            store.conn.execute("INSERT INTO segments (file_id, modality) VALUES (999999, 'visual')")


class StandIn:
    """A query model that embeds every query as one given vector, under the
    key of the model that made the stored vectors."""

    def __init__(self, key: str, name: str, vector: np.ndarray) -> None:
        self.key, self.name, self.vector = key, name, vector
        self.precision = "fp32"
        self.notes: list[str] = []

    def embed_texts(self, texts):  # type: ignore[no-untyped-def]
        return np.stack([self.vector for _ in texts])


def order_before(old_index: Path) -> tuple[str, str, np.ndarray, list[str]]:
    """The visual space's model key and name, a query vector, and the order of
    the files for it (the best segment of each, by cosine), from the old file."""
    conn = raw_connection(old_index)
    key, name, table = conn.execute(
        "SELECT model_key, model, 'vec_space_' || id FROM spaces WHERE modality = 'visual'"
    ).fetchone()
    rows = conn.execute(
        f"SELECT f.path, v.embedding FROM {table} v JOIN segments s ON s.id = v.segment_id "
        "JOIN files f ON f.id = s.file_id"
    ).fetchall()
    conn.close()
    vectors = np.stack([np.frombuffer(blob, dtype=np.float32) for _, blob in rows])
    query = vectors[0] + 0.5 * vectors[-1]
    query /= np.linalg.norm(query)
    # The best segment of each file, by cosine, computed from the old file.
    best: dict[str, float] = {}
    for (path, _), cosine in zip(rows, vectors @ query, strict=True):
        best[path] = max(best.get(path, -1.0), float(cosine))
    return key, name, query, sorted(best, key=best.get, reverse=True)  # type: ignore[arg-type]


def test_search_returns_the_same_order_as_before(old_index: Path):
    from mediafind.query import search

    key, name, query, expected = order_before(old_index)
    with Store.open(old_index, create=False) as store:
        found = search(
            store, "anything", {"visual": StandIn(key, name, query)}, modalities=["visual"]
        )
    assert [result.path for result in found] == expected


def schema_version(path: Path) -> int:
    conn = raw_connection(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def searchable_as_before(old_index: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The registry's visual modality answering queries with the old index's
    model key and `order_before`'s query vector; returns the order expected."""
    from mediafind import modalities
    from mediafind.modalities.visual import Visual

    key, name, query, expected = order_before(old_index)

    class AsBefore(Visual):
        def embedder(self, choice, device, precision):  # type: ignore[no-untyped-def]
            return StandIn(key, name, query)

    monkeypatch.setattr(modalities, "_REGISTRY", {"visual": AsBefore()})
    monkeypatch.setenv("MEDIAFIND_DB", str(old_index))
    return expected


def test_the_first_search_upgrades_a_writable_old_index_and_answers_as_before(
    cli, old_index: Path, searchable_as_before: list[str]
):
    result = cli("search", "anything", "--paths")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == searchable_as_before
    assert schema_version(old_index) == len(MIGRATIONS)
    again = cli("search", "anything", "--paths")  # upgraded once: the same answer
    assert again.stdout == result.stdout


def test_an_old_index_is_not_upgraded_beside_a_run_that_writes_it(
    cli, old_index: Path, searchable_as_before: list[str], monkeypatch: pytest.MonkeyPatch
):
    import threading

    import mediafind.db as db_module
    from mediafind.db import WriterLock

    monkeypatch.setattr(db_module, "UPGRADE_WAIT_S", 0.5)
    with WriterLock(old_index):  # as a running `mediafind index` holds it
        refused = cli("search", "anything", "--paths")
    assert refused.exit_code == 2
    assert refused.stderr == (
        f"mediafind: error: the index {old_index} was made by an older mediafind and must be "
        f"upgraded once, but another run (pid {os.getpid()}) is writing to it; try again once "
        "it is done\n"
    )
    assert schema_version(old_index) == 4  # left as it was

    # A run that ends within the wait: the search waits for it, then upgrades.
    monkeypatch.setattr(db_module, "UPGRADE_WAIT_S", 10.0)
    held = WriterLock(old_index)
    held.acquire()
    releasing = threading.Timer(0.6, held.release)
    releasing.start()
    try:
        waited = cli("search", "anything", "--paths")
    finally:
        releasing.join()
    assert waited.exit_code == 0, waited.stderr
    assert waited.stdout.splitlines() == searchable_as_before
    assert schema_version(old_index) == len(MIGRATIONS)


def test_only_an_old_index_that_cannot_be_written_must_be_upgraded_elsewhere(
    old_index: Path, tmp_path: Path
):
    from test_index_faults import run_without_write_access

    shared = tmp_path / "shared"
    shared.mkdir()
    copied = shared / "index.db"
    shutil.copy(old_index, copied)
    refused = run_without_write_access(shared, "status", "--db", str(copied))
    assert refused.returncode == 2
    assert refused.stderr == (
        f"mediafind: error: the index {copied} was made by an older mediafind and must be "
        "upgraded once where it can be written: run mediafind index there, or copy it "
        "somewhere writable\n"
    )
    assert schema_version(copied) == 4
    upgraded = subprocess.run(
        [sys.executable, "-m", "mediafind", "status", "--json", "--db", str(copied)],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=300,
    )
    assert upgraded.returncode == 0, upgraded.stderr
    # Four photos, a video, a recording (the broken file is not counted).
    assert json.loads(upgraded.stdout)["files"] == {"image": 4, "video": 1, "audio": 1}
    assert schema_version(copied) == len(MIGRATIONS)
