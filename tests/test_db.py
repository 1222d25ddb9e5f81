"""The index file: driver choice, migrations, WAL, and refusing what it cannot use."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest
from conftest import downgrade

from mediafind.db import Store
from mediafind.errors import DatabaseError, IndexNotFoundError
from mediafind.migrations import MIGRATIONS


def test_migrations_build_the_schema_from_an_empty_file(db_path: Path):
    with Store.open(db_path, create=True) as store:
        version = store.conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {
            row[0]
            for row in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    assert version == len(MIGRATIONS)
    assert {"files", "segments", "spaces", "file_spaces", "roots"} <= tables


def test_reopening_does_not_migrate_again(db_path: Path):
    Store.open(db_path, create=True).close()
    with Store.open(db_path, create=False) as store:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_driver_that_can_load_sqlite_vec_is_chosen(db_path: Path):
    with Store.open(db_path, create=True) as store:
        assert store.conn.execute("SELECT vec_version()").fetchone()[0].startswith("v")
        expected = "sqlite3" if hasattr(sqlite3.Connection, "enable_load_extension") else "sqlean"
        assert store.driver == expected


def test_without_extension_loading_the_bundled_sqlite_is_used(db_path: Path, monkeypatch):
    import mediafind.db as db_module

    monkeypatch.setattr(db_module, "_stdlib_loads_extensions", lambda: False)
    with Store.open(db_path, create=True) as store:
        assert store.driver == "sqlean"
        assert store.conn.execute("SELECT vec_version()").fetchone()[0].startswith("v")


def test_forcing_a_stdlib_sqlite3_without_extensions_says_what_to_do(db_path: Path, monkeypatch):
    import mediafind.db as db_module

    monkeypatch.setattr(db_module, "_stdlib_loads_extensions", lambda: False)
    monkeypatch.setenv("MEDIAFIND_SQLITE_DRIVER", "sqlite3")
    with pytest.raises(DatabaseError, match="cannot load extensions"):
        Store.open(db_path, create=True)


def test_unknown_driver_name_is_refused(db_path: Path, monkeypatch):
    monkeypatch.setenv("MEDIAFIND_SQLITE_DRIVER", "postgres")
    with pytest.raises(DatabaseError, match="not a SQLite driver"):
        Store.open(db_path, create=True)


def test_wal_mode_and_busy_timeout(db_path: Path):
    with Store.open(db_path, create=True) as store:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000


def test_reader_is_not_blocked_by_a_writer(db_path: Path):
    writer = Store.open(db_path, create=True)
    reader = Store.open(db_path, create=False)
    try:
        with writer.transaction():
            writer.conn.execute(
                "INSERT INTO roots (path, added_at, last_indexed_at) VALUES ('/x', 0, 0)"
            )
            # The write is not committed: the reader sees the old state, at once.
            assert reader.conn.execute("SELECT count(*) FROM roots").fetchone()[0] == 0
        assert reader.conn.execute("SELECT count(*) FROM roots").fetchone()[0] == 1
    finally:
        writer.close()
        reader.close()


def test_missing_index_is_not_created_by_readers(tmp_path: Path):
    with pytest.raises(IndexNotFoundError):
        Store.open(tmp_path / "absent.db", create=False)
    assert not (tmp_path / "absent.db").exists()


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path):
    path = tmp_path / "notes.db"
    path.write_text("shopping list: milk, eggs\n" * 100)
    with pytest.raises(DatabaseError, match="not a usable mediafind index"):
        Store.open(path, create=False)
    assert path.read_text().startswith("shopping list")


def test_a_folder_is_refused(tmp_path: Path):
    with pytest.raises(DatabaseError, match="is a folder"):
        Store.open(tmp_path, create=True)


def test_an_index_from_a_newer_version_is_refused(db_path: Path):
    with Store.open(db_path, create=True) as store:
        store.conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(DatabaseError, match="newer mediafind"):
        Store.open(db_path, create=False)


def test_failed_migration_leaves_the_file_as_it_was(db_path: Path, monkeypatch):
    import mediafind.db as db_module

    def broken(conn):  # type: ignore[no-untyped-def]
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(db_module, "MIGRATIONS", [*MIGRATIONS, broken])
    with pytest.raises(DatabaseError):
        Store.open(db_path, create=True)
    monkeypatch.setattr(db_module, "MIGRATIONS", MIGRATIONS)
    with Store.open(db_path, create=False) as store:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert not store.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'half_done'"
        ).fetchone()


def _store_with_vectors(db_path: Path, count: int, dim: int = 8):
    import numpy as np

    from mediafind.db import FileFacts, NewSegment, Part

    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((count, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = Store.open(db_path, create=True)
    space = store.create_space("visual", "m", "key", dim, active=True)
    for index, vector in enumerate(vectors):
        kind = "video" if index % 3 == 0 else "image"
        facts = FileFacts(f"/p/{index:03d}.jpg", kind, 1, index, f"h{index}", "ok")
        store.write_file(facts, [Part(space, [NewSegment("visual", None, None)], [vector])])
    return store, space, vectors


@pytest.mark.parametrize("parallel_from", [0, 10**9])
def test_sharded_search_returns_exactly_the_nearest(db_path: Path, monkeypatch, parallel_from):
    import numpy as np

    import mediafind.db

    # Shards scanned side by side on several connections, or one after another.
    monkeypatch.setattr(mediafind.db, "PARALLEL_FROM", parallel_from)
    monkeypatch.setattr(mediafind.db, "usable_cores", lambda: 2)
    store, space, vectors = _store_with_vectors(db_path, 200)
    store.update_stats(space)
    with store:
        assert space.shards > 1
        shards = {row[0] for row in store.conn.execute(f"SELECT shard FROM {space.table}")}
        assert len(shards) == space.shards  # every shard holds vectors
        query = vectors[5] + 0.3 * vectors[17]
        query /= np.linalg.norm(query)
        order = np.argsort(-(vectors @ query))
        hits = store.nearest(space, query, 25)
        assert [hit.path for hit in hits] == [f"/p/{i:03d}.jpg" for i in order[:25]]
        assert all(a.distance <= b.distance for a, b in itertools.pairwise(hits))
        videos = store.nearest(space, query, 10, kinds=["video"])
        expected = [i for i in order if i % 3 == 0][:10]
        assert [hit.path for hit in videos] == [f"/p/{i:03d}.jpg" for i in expected]
        assert len(store._extra_readers) == (1 if parallel_from == 0 else 0)


def test_an_index_from_before_shards_keeps_working(db_path: Path):
    import numpy as np

    from mediafind.db import FileFacts, NewSegment, Part

    store, space, vectors = _store_with_vectors(db_path, 30)
    with store:
        # Rebuild the older shape: one unsharded vector table, schema 3.
        rows = store.conn.execute(
            f"SELECT segment_id, embedding, kind FROM {space.table}"
        ).fetchall()
        store.conn.execute(f"DROP TABLE {space.table}")
        store.conn.execute(
            f"CREATE VIRTUAL TABLE {space.table} USING vec0(segment_id INTEGER PRIMARY KEY, "
            "embedding float[8] distance_metric=cosine, kind TEXT)"
        )
        store.conn.executemany(f"INSERT INTO {space.table} VALUES (?, ?, ?)", rows)
        downgrade(store.conn, 3)
    with Store.open(db_path, create=False) as store:
        old = store.active_space("visual")
        assert old is not None and old.shards == 1
        hits = store.nearest(old, vectors[4], 3)
        assert hits[0].path == "/p/004.jpg"
        extra = np.ones(8, dtype=np.float32) / np.sqrt(8)
        facts = FileFacts("/p/new.jpg", "image", 1, 1, "hnew", "ok")
        store.write_file(facts, [Part(old, [NewSegment("visual", None, None)], [extra])])
        assert store.nearest(old, extra, 1)[0].path == "/p/new.jpg"
