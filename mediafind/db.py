"""The index file: SQLite driver choice, sqlite-vec loading, pragmas and queries.

Everything that touches SQL lives here. The rest of mediafind speaks in records
(`FileRecord`, `Space`, `SegmentHit`) and never sees a cursor. The driver's
errors never leave this module either: each becomes a `DatabaseError` that
says, in a line, what happened to the index and what to do.

File names are stored as text when they are valid UTF-8 (nearly always) and as
their raw bytes otherwise (names copied from old FAT shares or Windows zips are
often Latin-1): Python hands such names around as `str` with surrogate escapes,
which SQLite cannot store as text. `stored_path` and `path_from_row` convert,
and folder prefixes are compared as bytes, so both forms sort and match alike.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mediafind import config
from mediafind.config import usable_cores
from mediafind.errors import DatabaseError, IndexBusyError, IndexNotFoundError
from mediafind.migrations import MIGRATIONS

# Writers hold the lock for one file's rows at a time, so a reader or a second
# writer rarely waits long; 15 s covers a slow disk or a NAS.
BUSY_TIMEOUT_MS = 15_000
# Rows deleted per transaction: forgetting 100,000 files in one transaction
# held the write lock for 15 s, past a concurrent indexer's patience.
DELETE_BATCH = 500

# How long a command that only reads, finding an index of an older schema,
# waits for the run that holds the writer lock (a `mediafind index` upgrades
# the index as it opens it, before it takes the lock) before saying so.
UPGRADE_WAIT_S = 5.0

# sqlite-vec refuses k above this in a KNN query.
KNN_MAX_K = 4096
MMAP_BYTES = 1 << 40
# Shards of a new space: a search scans them side by side on up to this many
# cores (a million 512-d vectors: 0.39 s on 2 cores against 0.62-0.80 s whole).
SHARDS = 4
PARALLEL_FROM = 200_000
# Vectors sampled to describe a space's score distribution (query.py).
STATS_SAMPLE = 20_000


def fold(text: str) -> str:
    """Text as the substring index holds it and queries look in it: compatibility
    forms unified (full-width letters), diacritics removed, case folded."""
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return unicodedata.normalize("NFC", bare).casefold()


def stored_path(path: str) -> str | bytes:
    """A path as the index stores it: text, or raw bytes for a name that is not UTF-8."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return path


def path_from_row(value: str | bytes) -> str:
    """The path a row holds, as Python names files (surrogate escapes for raw bytes)."""
    return value if isinstance(value, str) else os.fsdecode(value)


def _prefix(folder: str) -> bytes:
    """What the path of everything inside `folder` starts with, as bytes."""
    return os.fsencode(folder.rstrip(os.sep) + os.sep)


# `path` is at or below a folder: exactly it, or its bytes start with the
# folder's (a name's two forms compare alike as blobs).
_AT_OR_BELOW = "({column} = ? OR substr(CAST({column} AS BLOB), 1, ?) = ?)"


def _at_or_below(column: str, folder: str) -> tuple[str, list[Any]]:
    prefix = _prefix(folder)
    return _AT_OR_BELOW.format(column=column), [stored_path(folder), len(prefix), prefix]


def _database_error(error: Exception, path: Path) -> DatabaseError:
    """A driver error about the index file, in words a person can act on."""
    text = " ".join(str(error).split()) or error.__class__.__name__
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        message = (
            f"the index {path} is busy: another mediafind process kept it locked for more "
            f"than {BUSY_TIMEOUT_MS // 1000} s; try again once it is done"
        )
    elif "full" in lowered:
        message = (
            f"no space left for the index {path} (the disk is full); everything written "
            "before is kept: free some space and run the same command again"
        )
    elif "readonly" in lowered or "read-only" in lowered:
        message = (
            f"cannot write to the index {path}: it or its folder is read-only; searching "
            "it still works, indexing needs write access (or another {db})"
        )
    elif "not a database" in lowered:
        message = f"{path} is not a usable mediafind index ({text}); choose another {{db}}"
    elif "malformed" in lowered or "corrupt" in lowered:
        message = (
            f"the index {path} is damaged ({text}); move it aside and index again, "
            "or restore it from a backup"
        )
    elif "disk i/o" in lowered:
        message = f"cannot read or write the index {path}: a disk I/O error (is the disk failing?)"
    elif "unable to open" in lowered:
        message = f"cannot open the index {path} ({text}); check its folder exists and is readable"
    else:
        message = f"the index {path}: {text}"
    return DatabaseError(message, arguments=("db",))


class _Cursor:
    """A driver cursor whose errors (rows are read as they are iterated) are ours."""

    def __init__(self, cursor: Any, conn: _Connection) -> None:
        self._cursor = cursor
        self._conn = conn

    @property
    def lastrowid(self) -> int:
        return int(self._cursor.lastrowid)

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    def fetchone(self) -> Any:
        with self._conn.translated():
            return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        with self._conn.translated():
            return list(self._cursor.fetchall())

    def __iter__(self) -> Iterator[Any]:
        with self._conn.translated():
            yield from self._cursor


class _Connection:
    """The driver's connection, raising `DatabaseError` instead of the driver's errors."""

    def __init__(self, raw: Any, path: Path, driver_error: type[Exception]) -> None:
        self.raw = raw
        self.path = path
        self._driver_error = driver_error

    @contextlib.contextmanager
    def translated(self) -> Iterator[None]:
        try:
            yield
        except self._driver_error as error:
            raise _database_error(error, self.path) from error

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Cursor:
        with self.translated():
            return _Cursor(self.raw.execute(sql, params), self)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> _Cursor:
        with self.translated():
            return _Cursor(self.raw.executemany(sql, rows), self)

    def rollback(self) -> None:
        """Undo the open transaction, if SQLite has not already (it rolls back
        by itself on a full disk or an I/O error); never hides the error that
        led here."""
        if self.raw.in_transaction:
            with contextlib.suppress(Exception):
                self.raw.execute("ROLLBACK")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.raw.close()


def _configure(conn: _Connection, *, write: bool) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if write:
        # WAL lets `search` read while `index` writes; NORMAL sync is safe
        # with WAL (a power cut may lose the last commits, never consistency).
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    # Read pages through a memory map: a KNN query reads every vector, and
    # mapping saves a system call and a copy per page (a million 512-d
    # vectors: 0.39 s instead of 0.58 s, bench/README.md). SQLite caps the
    # size at its compile-time limit.
    conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")


@dataclass(frozen=True)
class Space:
    """The vectors one model made for one modality, stored in `table`."""

    id: int
    modality: str
    model: str
    model_key: str
    dim: int
    active: bool
    shards: int = 1

    @property
    def table(self) -> str:
        return f"vec_space_{self.id}"

    @property
    def precision(self) -> str:
        """The precision its vectors were made in: int8 is part of the model key."""
        return "int8" if self.model_key.endswith("#int8") else "fp32"

    @property
    def words(self) -> bool:
        """Whether its segments hold words (speech, text) rather than vectors."""
        return self.dim == 0


@dataclass(frozen=True)
class Root:
    """A folder (or file) the user indexed, re-indexed by a bare `mediafind index`."""

    path: str
    last_indexed_at: float | None = None
    # The --exclude globs given with it, applied again on each run.
    excludes: tuple[str, ...] = ()
    # `forget` named it: later runs leave it out until it is indexed by name.
    forgotten: bool = False


@dataclass(frozen=True)
class FileRecord:
    id: int
    path: str
    kind: str
    size: int
    mtime_ns: int
    content_hash: str | None
    status: str


@dataclass(frozen=True)
class NewSegment:
    modality: str
    start: float | None
    end: float | None


@dataclass(frozen=True)
class Part:
    """One space's share of a file: its segments and their vectors (or, in a
    words space, their texts)."""

    space: Space
    segments: Sequence[NewSegment]
    vectors: Any = ()
    texts: Sequence[str] = ()
    # Where each text is in the picture (text): JSON (left, top, right, bottom)
    # as fractions of the width and height; empty when the part has none.
    boxes: Sequence[str | None] = ()
    # The language of a words part that hears one (speech), stored on the file;
    # a part that does not (text) leaves the file's language as it is.
    language: str | None = None
    detects_language: bool = False


@dataclass(frozen=True)
class SegmentHit:
    """A match joined back to its file: a nearest neighbour (its distance and
    vector), or a segment whose words match (its text)."""

    segment_id: int
    distance: float
    file_id: int
    path: str
    kind: str
    modality: str
    start: float | None
    end: float | None
    embedding: bytes = b""
    text: str | None = None


def _hit(row: Sequence[Any]) -> SegmentHit:
    return SegmentHit(row[0], row[1], row[2], path_from_row(row[3]), *row[4:])


@dataclass(frozen=True)
class FileFacts:
    """What indexing learned about a file, stored on its row."""

    path: str
    kind: str
    size: int
    mtime_ns: int
    content_hash: str | None
    status: str
    error: str | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    captured_at: float | None = None


@dataclass(frozen=True)
class Filters:
    """Conditions on files, applied inside the nearest-neighbour query."""

    kinds: Sequence[str] = ()
    folders: Sequence[str] = ()  # absolute; a file at or below any of them
    since: float | None = None  # capture time (else mtime), Unix seconds
    until: float | None = None
    min_duration: float | None = None
    max_duration: float | None = None

    def sql(self) -> tuple[str, list[Any]]:
        """A WHERE clause over `files f`, and its parameters ('' when none)."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.kinds:
            clauses.append(f"f.kind IN ({','.join('?' * len(self.kinds))})")
            params.extend(self.kinds)
        if self.folders:
            either = []
            for folder in self.folders:
                clause, values = _at_or_below("f.path", folder)
                either.append(clause)
                params.extend(values)
            clauses.append("(" + " OR ".join(either) + ")")
        when = "coalesce(f.captured_at, f.mtime_ns / 1e9)"
        if self.since is not None:
            clauses.append(f"{when} >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append(f"{when} < ?")
            params.append(self.until)
        if self.min_duration is not None:
            clauses.append("f.duration >= ?")
            params.append(self.min_duration)
        if self.max_duration is not None:
            clauses.append("f.duration <= ?")
            params.append(self.max_duration)
        return " AND ".join(clauses), params


def _load_sqlite_vec(conn: Any) -> None:
    import sqlite_vec

    conn.enable_load_extension(True)
    try:
        sqlite_vec.load(conn)
    finally:
        conn.enable_load_extension(False)


def _stdlib_loads_extensions() -> bool:
    import sqlite3

    return hasattr(sqlite3.Connection, "enable_load_extension")


def _uri(path: Path, mode: str) -> str:
    """A `file:` URI for any path, undecodable bytes included."""
    return f"file:{quote(os.fsencode(str(path)))}?{mode}"


def _connect_driver(path: Path, mode: str = "mode=rwc") -> tuple[Any, str, type[Exception]]:
    """Open `path` with a SQLite module that can load sqlite-vec: (connection,
    driver name, the driver's base error class).

    The standard library's sqlite3 is used where it can load extensions. Where
    it cannot (macOS system Pythons, some distributions' builds) sqlean.py, a
    drop-in sqlite3 with its own SQLite, takes over. `mode` is the URI's query
    ("mode=ro" to only read).
    """
    choice = config.sqlite_driver_choice()
    if choice not in ("auto", "sqlite3", "sqlean"):
        raise DatabaseError(
            f"{config.ENV_SQLITE_DRIVER}={choice!r} is not a SQLite driver; "
            "use 'sqlite3', 'sqlean' or leave it unset"
        )
    uri = _uri(path, mode)
    if choice in ("auto", "sqlite3"):
        import sqlite3

        if _stdlib_loads_extensions():
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            try:
                _load_sqlite_vec(conn)
                return conn, "sqlite3", sqlite3.Error
            except Exception as error:
                conn.close()
                if choice == "sqlite3":
                    raise DatabaseError(
                        f"the sqlite3 module could not load sqlite-vec ({error}); "
                        f"unset {config.ENV_SQLITE_DRIVER} to use the bundled SQLite"
                    ) from error
        elif choice == "sqlite3":
            raise DatabaseError(
                "this Python's sqlite3 module cannot load extensions; "
                f"unset {config.ENV_SQLITE_DRIVER} to use the bundled SQLite (sqlean.py)"
            )
    import sqlean

    conn = sqlean.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    _load_sqlite_vec(conn)
    return conn, "sqlean", sqlean.Error


class _OlderSchema(DatabaseError):
    """The index was made by an older mediafind and must be upgraded to be used."""


def _migrate(conn: _Connection, path: Path, *, readonly: bool) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise DatabaseError(
            f"{path} was written by a newer mediafind (schema {version}, this one knows "
            f"{len(MIGRATIONS)}); upgrade mediafind to use it"
        )
    if version < len(MIGRATIONS) and readonly:
        raise _OlderSchema(
            f"the index {path} was made by an older mediafind and must be upgraded once "
            "where it can be written: run mediafind index there, or copy it somewhere writable"
        )
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        _migrate_step(conn, number, step)


def _migrate_step(conn: _Connection, number: int, step: Any) -> None:
    """One numbered step, all or nothing, following SQLite's procedure for
    changing a table: foreign keys off outside the transaction (else rebuilding
    a table would cascade deletes through the rows that refer to it), the
    step, a foreign key check before the commit, foreign keys back on."""
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            if conn.execute("PRAGMA user_version").fetchone()[0] < number:
                step(conn)
                broken = conn.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise DatabaseError(
                        f"schema step {number} would leave {len(broken)} rows pointing at "
                        "rows that do not exist; the index is left as it was"
                    )
                conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.rollback()
            raise
    finally:
        conn.execute("PRAGMA foreign_keys = ON")


def _floats(vector: Any) -> bytes:
    import numpy as np

    return np.asarray(vector, dtype=np.float32).tobytes()


class WriterLock:
    """One indexing run per index at a time: an advisory lock on `INDEX.lock`.

    Two runs at once would embed every file twice and race to create the same
    model space. The lock is the operating system's (flock), so a run killed
    with -9 never leaves it behind; searches do not take it.
    """

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.path = db_path.with_name(db_path.name + ".lock")
        # The pid written by the run that holds the lock, once acquiring failed.
        self.holder = ""
        self._handle: Any = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; runs are not guarded
            return
        try:
            handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (held until release)
        except OSError as error:
            raise DatabaseError(
                f"cannot create {self.path} ({error.strerror}); indexing needs write access "
                "to the index's folder"
            ) from error
        # A watcher holds the lock only while it writes a batch of changes
        # (seconds): a command run beside it waits for that batch, then writes.
        deadline = time.monotonic() + WATCH_BATCH_WAIT
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if running_watcher(self.db_path) is not None and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                handle.seek(0)
                self.holder = handle.read().strip() or "unknown"
                handle.close()
                raise IndexBusyError(
                    f"another mediafind index run (pid {self.holder}) is writing to "
                    f"{self.db_path}; wait for it to finish (searching works meanwhile)"
                ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def remove(self) -> None:
        """Delete the lock file, then release it: whoever opens the name
        afterwards gets a new file, so no other run's lock is deleted."""
        if self._handle is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        self.release()

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# Seconds a writer waits for the batch a watcher is writing: a batch is a
# burst of changed files, written file by file.
WATCH_BATCH_WAIT = 60.0


@dataclass(frozen=True)
class WatchState:
    """What a running `mediafind watch` says about itself, for `status`."""

    pid: int
    since: float
    roots: list[str]
    # Changed files seen and not yet indexed (still being written, queued).
    waiting: int = 0
    last_path: str | None = None
    last_at: float | None = None
    # Whether the changes made while no watcher ran are indexed.
    caught_up: bool = False


def watch_paths(db_path: Path) -> tuple[Path, Path]:
    """The file a watcher holds locked while it runs, and its state beside it."""
    return db_path.with_name(db_path.name + ".watch"), db_path.with_name(
        db_path.name + ".watch.json"
    )


def running_watcher(db_path: Path) -> WatchState | None:
    """The watcher keeping this index current, or None. A watcher killed
    with -9 leaves its files, not its lock, so it is not taken for running."""
    try:
        import fcntl
    except ImportError:
        return None
    mark, state = watch_paths(db_path)
    try:
        handle = open(mark, "rb")  # noqa: SIM115 (closed below)
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            pass
        else:
            return None
    try:
        return WatchState(**json.loads(state.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return WatchState(pid=0, since=0.0, roots=[])


def check_not_watched(db_path: Path) -> None:
    """Refuse a whole indexing run while a watcher keeps the index current:
    it would do the watcher's work again."""
    watcher = running_watcher(db_path)
    if watcher is not None:
        raise IndexBusyError(
            f"mediafind watch (pid {watcher.pid or 'unknown'}) is keeping {db_path} current; "
            "new and changed files are indexed as they come. To add a folder, stop watch "
            "and start it again with the folder; to switch models, add {reembed}",
            arguments=("reembed",),
        )


class Store:
    """An open index file. Create with `Store.open`; close when done."""

    def __init__(self, conn: _Connection, path: Path, driver: str, mode: str) -> None:
        self.conn = conn
        self.path = path
        self.driver = driver
        self.readonly = mode != "mode=rwc"
        self._mode = mode
        self._extra_readers: list[_Connection] = []
        # Whether `open` made the file: a first run that fails before writing
        # anything removes it again (`discard`).
        self.created = False

    @classmethod
    def open(cls, path: Path, *, create: bool, readonly: bool = False) -> Store:
        """Open the index at `path`, creating it when `create` is set.

        `readonly` opens it only to read: searching works on an index on a
        read-only mount or in a folder the user cannot write. An index made
        by an older mediafind is upgraded first when it can be written (see
        `_upgraded`); one that cannot be written is refused. Raises
        IndexNotFoundError when it is missing and `create` is not set, and
        DatabaseError when the file is not an index this version can use.
        """
        if path.is_dir():
            raise DatabaseError(
                f"{path} is a folder; {{db}} takes the path of an index file", arguments=("db",)
            )
        existed = path.exists()
        if not existed:
            if not create:
                raise IndexNotFoundError(
                    f"no index at {path}; build one with: mediafind index FOLDER"
                )
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise DatabaseError(f"cannot create {path.parent}: {error.strerror}") from error
        if not readonly:
            try:
                store = cls._open(path, "mode=rwc")
            except DatabaseError as error:
                writable = os.access(path, os.W_OK) if path.exists() else True
                if writable and os.access(path.parent, os.W_OK):
                    raise
                raise _database_error(
                    PermissionError("attempt to write a readonly database"), path
                ) from error
            store.created = not existed
            return store
        try:
            return cls._open_to_read(path)
        except _OlderSchema:
            if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
                raise
        return cls._upgraded(path)

    @classmethod
    def _open_to_read(cls, path: Path) -> Store:
        try:
            return cls._open(path, "mode=ro")
        except _OlderSchema:
            raise
        except DatabaseError:
            # A write-ahead-logged file is read through a shared-memory file
            # beside it, which a read-only folder cannot hold; with nobody able
            # to write there, reading it as immutable is safe.
            return cls._open(path, "mode=ro&immutable=1")

    @classmethod
    def _upgraded(cls, path: Path) -> Store:
        """An older index that a command only reads, upgraded once and opened
        to read. The upgrade runs under the writer lock, so never beside an
        indexing run; a run that holds the lock has upgraded the index as it
        opened it, so this waits (briefly) only for that."""
        deadline = time.monotonic() + UPGRADE_WAIT_S
        while True:
            lock = WriterLock(path)
            try:
                with lock:
                    cls._open(path, "mode=rwc").close()
            except IndexBusyError:
                with contextlib.suppress(_OlderSchema):
                    return cls._open_to_read(path)
                if time.monotonic() >= deadline:
                    raise IndexBusyError(
                        f"the index {path} was made by an older mediafind and must be "
                        f"upgraded once, but another run (pid {lock.holder}) is writing to "
                        "it; try again once it is done"
                    ) from None
                time.sleep(0.2)
                continue
            return cls._open_to_read(path)

    @classmethod
    def _open(cls, path: Path, mode: str) -> Store:
        try:
            raw, driver, driver_error = _connect_driver(path, mode)
        except DatabaseError:
            raise
        except Exception as error:
            raise DatabaseError(f"cannot open {path}: {error}") from error
        conn = _Connection(raw, path, driver_error)
        try:
            _configure(conn, write=mode == "mode=rwc")
            _migrate(conn, path, readonly=mode != "mode=rwc")
        except DatabaseError:
            conn.close()
            raise
        except Exception as error:
            conn.close()
            raise DatabaseError(f"{path} is not a usable mediafind index ({error})") from error
        return cls(conn, path, driver, mode)

    def check_writable(self) -> None:
        """Raise DatabaseError now if the index cannot be written, before any
        work is done whose results could not be stored."""
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        with self.transaction():
            self.conn.execute(f"PRAGMA user_version = {int(version)}")

    def close(self) -> None:
        for reader in self._extra_readers:
            reader.close()
        self._extra_readers.clear()
        self.conn.close()

    def discard(self) -> None:
        """Close the index and delete its files (the caller holds its
        WriterLock and knows that it holds nothing of the user's)."""
        self.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                self.path.with_name(self.path.name + suffix).unlink()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: one file's rows, or one sweep, at a time."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.execute("COMMIT")

    # Spaces ---------------------------------------------------------------

    def _space(self, row: Sequence[Any]) -> Space:
        return Space(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6])

    _SPACE_COLUMNS = "id, modality, model, model_key, dim, active, shards"

    def active_space(self, modality: str) -> Space | None:
        row = self.conn.execute(
            f"SELECT {self._SPACE_COLUMNS} FROM spaces WHERE modality = ? AND active = 1",
            (modality,),
        ).fetchone()
        return self._space(row) if row else None

    def spaces(self) -> list[Space]:
        rows = self.conn.execute(f"SELECT {self._SPACE_COLUMNS} FROM spaces ORDER BY id")
        return [self._space(row) for row in rows]

    def find_space(self, modality: str, model_key: str) -> Space | None:
        row = self.conn.execute(
            f"SELECT {self._SPACE_COLUMNS} FROM spaces WHERE modality = ? AND model_key = ?",
            (modality, model_key),
        ).fetchone()
        return self._space(row) if row else None

    def create_space(
        self, modality: str, model: str, model_key: str, dim: int, *, active: bool
    ) -> Space:
        with self.transaction():
            cursor = self.conn.execute(
                "INSERT INTO spaces (modality, model, model_key, dim, active, created_at, shards) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (modality, model, model_key, dim, int(active), time.time(), SHARDS),
            )
            space = Space(cursor.lastrowid, modality, model, model_key, dim, active, SHARDS)
            if not space.words:
                # `kind` is a metadata column so that --type filters inside the
                # KNN scan instead of after it, and a filter never starves the
                # results. `shard` is a partition key: a search scans the
                # shards side by side.
                self.conn.execute(
                    f"CREATE VIRTUAL TABLE {space.table} USING vec0("
                    "segment_id INTEGER PRIMARY KEY, shard INTEGER PARTITION KEY, "
                    f"embedding float[{dim}] distance_metric=cosine, kind TEXT)"
                )
        return space

    def drop_space(self, space: Space) -> None:
        """Forget a space and its vectors (one that never received any)."""
        with self.transaction():
            self._drop(space)

    def _drop(self, space: Space) -> None:
        if space.words:
            self.conn.execute(
                "DELETE FROM segments WHERE id IN "
                "(SELECT segment_id FROM segment_words WHERE space_id = ?)",
                (space.id,),
            )
        else:
            self.conn.execute(f"DROP TABLE IF EXISTS {space.table}")
        self.conn.execute("DELETE FROM spaces WHERE id = ?", (space.id,))

    def activate_space(self, space: Space) -> None:
        """Make `space` the one searched for its modality and drop the others' vectors."""
        with self.transaction():
            for old in self.spaces():
                if old.modality == space.modality and old.id != space.id:
                    self._drop(old)
            self.conn.execute("UPDATE spaces SET active = 1 WHERE id = ?", (space.id,))

    # Files ----------------------------------------------------------------

    _FILE_COLUMNS = "id, path, kind, size, mtime_ns, content_hash, status"

    def files_under(self, roots: Iterable[str]) -> dict[str, FileRecord]:
        """Every file row at or below each root, by path."""
        found: dict[str, FileRecord] = {}
        for root in roots:
            where, params = _at_or_below("path", root)
            for row in self.conn.execute(
                f"SELECT {self._FILE_COLUMNS} FROM files WHERE {where}", params
            ):
                path = path_from_row(row[1])
                found[path] = FileRecord(row[0], path, *row[2:])
        return found

    def file_by_id(self, file_id: int) -> FileRecord | None:
        """The file row with this id (failed files included), or None."""
        row = self.conn.execute(
            f"SELECT {self._FILE_COLUMNS} FROM files WHERE id = ?", (file_id,)
        ).fetchone()
        return FileRecord(row[0], path_from_row(row[1]), *row[2:]) if row else None

    def files_at(self, paths: Sequence[str]) -> dict[str, FileRecord]:
        """The file rows of these exact paths, by path (the results of a search)."""
        found: dict[str, FileRecord] = {}
        for start in range(0, len(paths), 500):
            chunk = [stored_path(path) for path in paths[start : start + 500]]
            for row in self.conn.execute(
                f"SELECT {self._FILE_COLUMNS} FROM files "
                f"WHERE path IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                path = path_from_row(row[1])
                found[path] = FileRecord(row[0], path, *row[2:])
        return found

    def content_hashes(self) -> set[str]:
        """The content hash of every indexed file (what thumbnails are named by)."""
        rows = self.conn.execute(
            "SELECT DISTINCT content_hash FROM files WHERE content_hash IS NOT NULL"
        )
        return {row[0] for row in rows}

    def files_missing_from(self, space: Space, kinds: Sequence[str]) -> int:
        """How many indexed files of `kinds` have no vectors in `space` yet."""
        marks = ",".join("?" * len(kinds))
        row = self.conn.execute(
            f"SELECT count(*) FROM files f WHERE f.status != 'failed' AND f.kind IN ({marks}) "
            "AND NOT EXISTS (SELECT 1 FROM file_spaces fs "
            "WHERE fs.file_id = f.id AND fs.space_id = ?)",
            (*kinds, space.id),
        ).fetchone()
        return int(row[0])

    def spaces_by_file(self) -> dict[int, set[int]]:
        """file id -> ids of the spaces holding its vectors."""
        found: dict[int, set[int]] = {}
        for file_id, space_id in self.conn.execute("SELECT file_id, space_id FROM file_spaces"):
            found.setdefault(file_id, set()).add(space_id)
        return found

    def reusable_by_hash(self) -> dict[str, int]:
        """content hash -> id of a fully indexed file whose vectors can be copied."""
        rows = self.conn.execute(
            "SELECT f.content_hash, f.id FROM files f WHERE f.status = 'ok' "
            "AND f.content_hash IS NOT NULL "
            "AND EXISTS (SELECT 1 FROM file_spaces fs WHERE fs.file_id = f.id)"
        )
        return {row[0]: row[1] for row in rows}

    def reusable_with_hash(self, content_hash: str) -> list[tuple[int, str]]:
        """(id, path) of every fully indexed file with this content, by id."""
        rows = self.conn.execute(
            "SELECT f.id, f.path FROM files f WHERE f.content_hash = ? AND f.status = 'ok' "
            "AND EXISTS (SELECT 1 FROM file_spaces fs WHERE fs.file_id = f.id) ORDER BY f.id",
            (content_hash,),
        )
        return [(row[0], path_from_row(row[1])) for row in rows]

    def _file_row_values(self, facts: FileFacts) -> tuple[Any, ...]:
        return (
            stored_path(facts.path),
            facts.kind,
            facts.size,
            facts.mtime_ns,
            facts.content_hash,
            facts.status,
            facts.error,
            facts.width,
            facts.height,
            facts.duration,
            time.time(),
            facts.captured_at,
        )

    def _upsert_file(self, facts: FileFacts) -> int:
        """Insert or replace the row for `facts.path`, dropping its old segments."""
        existing = self.conn.execute(
            "SELECT id FROM files WHERE path = ?", (stored_path(facts.path),)
        ).fetchone()
        if existing is None:
            cursor = self.conn.execute(
                "INSERT INTO files (path, kind, size, mtime_ns, content_hash, status, error, "
                "width, height, duration, indexed_at, captured_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self._file_row_values(facts),
            )
            return int(cursor.lastrowid)
        file_id = int(existing[0])
        self._delete_segments(file_id)
        self.conn.execute(
            "UPDATE files SET path = ?, kind = ?, size = ?, mtime_ns = ?, content_hash = ?, "
            "status = ?, error = ?, width = ?, height = ?, duration = ?, indexed_at = ?, "
            "captured_at = ? WHERE id = ?",
            (*self._file_row_values(facts), file_id),
        )
        self.conn.execute("DELETE FROM file_spaces WHERE file_id = ?", (file_id,))
        return file_id

    def _delete_segments(self, file_id: int, modality: str | None = None) -> None:
        """Delete a file's segments (of one modality, or all) and their vectors."""
        where = "file_id = ?"
        params: list[Any] = [file_id]
        if modality is not None:
            where, params = "file_id = ? AND modality = ?", [file_id, modality]
        segment_ids = [
            (row[0],) for row in self.conn.execute(f"SELECT id FROM segments WHERE {where}", params)
        ]
        if segment_ids:
            # vec0 tables are virtual: no foreign key reaches them (words are
            # deleted with their segments by the foreign key).
            for space in self.spaces():
                if not space.words and (modality is None or space.modality == modality):
                    self.conn.executemany(
                        f"DELETE FROM {space.table} WHERE segment_id = ?", segment_ids
                    )
            self.conn.execute(f"DELETE FROM segments WHERE {where}", params)
        if modality is not None:
            self.conn.execute(
                "DELETE FROM file_spaces WHERE file_id = ? AND space_id IN "
                "(SELECT id FROM spaces WHERE modality = ?)",
                (file_id, modality),
            )

    def _update_facts(self, file_id: int, facts: FileFacts) -> None:
        self.conn.execute(
            "UPDATE files SET path = ?, kind = ?, size = ?, mtime_ns = ?, content_hash = ?, "
            "status = ?, error = ?, width = coalesce(?, width), height = coalesce(?, height), "
            "duration = coalesce(?, duration), indexed_at = ?, "
            "captured_at = coalesce(?, captured_at) WHERE id = ?",
            (*self._file_row_values(facts), file_id),
        )

    def _insert_part(self, file_id: int, kind: str, part: Part) -> None:
        space = part.space
        values = part.texts if space.words else part.vectors
        rows = []
        for segment, value in zip(part.segments, values, strict=True):
            cursor = self.conn.execute(
                "INSERT INTO segments (file_id, modality, start, end) VALUES (?, ?, ?, ?)",
                (file_id, segment.modality, segment.start, segment.end),
            )
            rows.append((cursor.lastrowid, value))
        if space.words:
            boxes = list(part.boxes) or [None] * len(rows)
            self.conn.executemany(
                "INSERT INTO segment_words (segment_id, space_id, text, folded, box) "
                "VALUES (?, ?, ?, ?, ?)",
                [
                    (segment_id, space.id, text, fold(text), box)
                    for (segment_id, text), box in zip(rows, boxes, strict=True)
                ],
            )
            if part.detects_language:
                self.conn.execute(
                    "UPDATE files SET language = ? WHERE id = ?", (part.language, file_id)
                )
        else:
            self._insert_vectors(space, [(sid, _floats(v), kind) for sid, v in rows])
        # Recorded even with no segments (a silent recording, a video without
        # sound): the file is done for this space.
        self.conn.execute(
            "INSERT OR IGNORE INTO file_spaces (file_id, space_id) VALUES (?, ?)",
            (file_id, space.id),
        )

    def _insert_vectors(self, space: Space, rows: Sequence[tuple[int, bytes, str]]) -> None:
        """(segment_id, vector, kind) rows into `space`, each in its shard."""
        if space.shards > 1:
            self.conn.executemany(
                f"INSERT INTO {space.table} (segment_id, shard, embedding, kind) "
                "VALUES (?, ?, ?, ?)",
                [(sid, sid % space.shards, vector, kind) for sid, vector, kind in rows],
            )
        else:
            self.conn.executemany(
                f"INSERT INTO {space.table} (segment_id, embedding, kind) VALUES (?, ?, ?)", rows
            )

    def write_file(self, facts: FileFacts, parts: Sequence[Part]) -> int:
        """Store a file with its segments and vectors, one part per space, atomically."""
        with self.transaction():
            file_id = self._upsert_file(facts)
            for part in parts:
                self._insert_part(file_id, facts.kind, part)
        return file_id

    def replace_part(self, file_id: int, facts: FileFacts, part: Part) -> None:
        """Replace one modality's segments of a file (its other segments stay)."""
        with self.transaction():
            self._update_facts(file_id, facts)
            self._delete_segments(file_id, part.space.modality)
            self._insert_part(file_id, facts.kind, part)

    def replace_words(self, file_id: int, part: Part, problem: str | None = None) -> None:
        """Give an indexed file the words of one words space (its speech, its
        text), replacing any it had; a problem reading them makes the file
        partial, its other parts untouched."""
        with self.transaction():
            self._delete_segments(file_id, part.space.modality)
            self._insert_part(file_id, self._kind_of(file_id), part)
            if problem:
                self.conn.execute(
                    "UPDATE files SET status = CASE status WHEN 'ok' THEN 'partial' "
                    "ELSE status END, error = coalesce(error || '; ', '') || ? WHERE id = ?",
                    (problem, file_id),
                )

    def _kind_of(self, file_id: int) -> str:
        return str(
            self.conn.execute("SELECT kind FROM files WHERE id = ?", (file_id,)).fetchone()[0]
        )

    def write_failed(self, facts: FileFacts) -> None:
        """Remember a file that could not be indexed, so it is not retried until it changes."""
        with self.transaction():
            self._upsert_file(facts)

    def add_vectors(self, file_id: int, kind: str, vectors: Any, space: Space) -> None:
        """Add `space` vectors for a file's existing segments (re-embedding, same file)."""
        with self.transaction():
            segment_ids = [
                row[0]
                for row in self.conn.execute(
                    "SELECT id FROM segments WHERE file_id = ? AND modality = ? ORDER BY id",
                    (file_id, space.modality),
                )
            ]
            self.conn.executemany(
                f"DELETE FROM {space.table} WHERE segment_id = ?", [(i,) for i in segment_ids]
            )
            self._insert_vectors(
                space,
                [
                    (segment_id, _floats(vector), kind)
                    for segment_id, vector in zip(segment_ids, vectors, strict=True)
                ],
            )
            self.conn.execute(
                "INSERT OR IGNORE INTO file_spaces (file_id, space_id) VALUES (?, ?)",
                (file_id, space.id),
            )

    def segment_spans(self, file_id: int, modality: str) -> list[tuple[float | None, float | None]]:
        rows = self.conn.execute(
            "SELECT start, end FROM segments WHERE file_id = ? AND modality = ? ORDER BY id",
            (file_id, modality),
        )
        return [(row[0], row[1]) for row in rows]

    def copy_file(self, source_id: int, facts: FileFacts) -> None:
        """Store `facts.path` with copies of another file's segments and vectors."""
        with self.transaction():
            source = self.conn.execute(
                "SELECT width, height, duration, captured_at, language FROM files WHERE id = ?",
                (source_id,),
            ).fetchone()
            file_id = self._upsert_file(
                FileFacts(
                    facts.path,
                    facts.kind,
                    facts.size,
                    facts.mtime_ns,
                    facts.content_hash,
                    "ok",
                    None,
                    source[0],
                    source[1],
                    source[2],
                    source[3],
                )
            )
            self.conn.execute("UPDATE files SET language = ? WHERE id = ?", (source[4], file_id))
            spaces = [
                space
                for space in self.spaces()
                if self.conn.execute(
                    "SELECT 1 FROM file_spaces WHERE file_id = ? AND space_id = ?",
                    (source_id, space.id),
                ).fetchone()
            ]
            old_segments = self.conn.execute(
                "SELECT id, modality, start, end FROM segments WHERE file_id = ? ORDER BY id",
                (source_id,),
            ).fetchall()
            for old_id, modality, start, end in old_segments:
                cursor = self.conn.execute(
                    "INSERT INTO segments (file_id, modality, start, end) VALUES (?, ?, ?, ?)",
                    (file_id, modality, start, end),
                )
                self.conn.execute(
                    "INSERT INTO segment_words (segment_id, space_id, text, folded, box) "
                    "SELECT ?, space_id, text, folded, box FROM segment_words "
                    "WHERE segment_id = ?",
                    (cursor.lastrowid, old_id),
                )
                for space in spaces:
                    if space.words:
                        continue
                    vector = self.conn.execute(
                        f"SELECT embedding FROM {space.table} WHERE segment_id = ?", (old_id,)
                    ).fetchone()
                    if vector is not None:
                        self._insert_vectors(space, [(cursor.lastrowid, vector[0], facts.kind)])
            self.conn.executemany(
                "INSERT INTO file_spaces (file_id, space_id) VALUES (?, ?)",
                [(file_id, space.id) for space in spaces],
            )

    def move_file(self, file_id: int, facts: FileFacts) -> None:
        """Give an indexed file its new path and stat, keeping its vectors."""
        with self.transaction():
            # A failed or stale row may already sit at the destination path.
            path = stored_path(facts.path)
            self.conn.execute("DELETE FROM files WHERE path = ? AND id != ?", (path, file_id))
            self.conn.execute(
                "UPDATE files SET path = ?, size = ?, mtime_ns = ?, indexed_at = ? WHERE id = ?",
                (path, facts.size, facts.mtime_ns, time.time(), file_id),
            )

    def touch_file(self, file_id: int, size: int, mtime_ns: int) -> None:
        """Record a new stat for a file whose content did not change."""
        with self.transaction():
            self.conn.execute(
                "UPDATE files SET size = ?, mtime_ns = ? WHERE id = ?", (size, mtime_ns, file_id)
            )

    def delete_files(self, paths: Iterable[str]) -> int:
        """Remove these paths and everything stored for them, a batch of files
        per transaction, so that a concurrent run never waits long for the lock."""
        removed = 0
        pending = list(paths)
        for start in range(0, len(pending), DELETE_BATCH):
            with self.transaction():
                for path in pending[start : start + DELETE_BATCH]:
                    row = self.conn.execute(
                        "SELECT id FROM files WHERE path = ?", (stored_path(path),)
                    ).fetchone()
                    if row is None:
                        continue
                    self._delete_segments(row[0])
                    self.conn.execute("DELETE FROM files WHERE id = ?", (row[0],))
                    removed += 1
        return removed

    def all_paths(self) -> list[str]:
        return [path_from_row(row[0]) for row in self.conn.execute("SELECT path FROM files")]

    def forget_roots(self, roots: Iterable[str]) -> None:
        with self.transaction():
            self.conn.executemany(
                "DELETE FROM roots WHERE path = ?", [(stored_path(r),) for r in roots]
            )

    def free_share(self) -> float:
        """The share of the file's pages that are free (what VACUUM would give back)."""
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        free = self.conn.execute("PRAGMA freelist_count").fetchone()[0]
        return free / pages if pages else 0.0

    def vacuum(self) -> None:
        self.conn.execute("VACUUM")

    def record_roots(self, roots: Iterable[Root]) -> None:
        """Remember folders as indexed (at `last_indexed_at`) with their excludes."""
        with self.transaction():
            for root in roots:
                self.conn.execute(
                    "INSERT INTO roots (path, added_at, last_indexed_at, excludes) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET "
                    "last_indexed_at = excluded.last_indexed_at, excludes = excluded.excludes",
                    (
                        stored_path(root.path),
                        root.last_indexed_at or time.time(),
                        root.last_indexed_at,
                        json.dumps(list(root.excludes)),
                    ),
                )

    def forgotten(self) -> list[str]:
        """Files and folders `forget` removed, which later runs leave out."""
        rows = self.conn.execute("SELECT path FROM forgotten ORDER BY path")
        return [path_from_row(row[0]) for row in rows]

    def remember_forgotten(self, paths: Iterable[str]) -> None:
        with self.transaction():
            self.conn.executemany(
                "INSERT OR REPLACE INTO forgotten (path, forgotten_at) VALUES (?, ?)",
                [(stored_path(path), time.time()) for path in paths],
            )

    def unforget(self, path: str) -> bool:
        """Index `path` again in later runs (it was named on the command line).
        Only the path itself: naming a folder above a forgotten one keeps that
        one forgotten. Returns whether it had been forgotten."""
        with self.transaction():
            cursor = self.conn.execute("DELETE FROM forgotten WHERE path = ?", (stored_path(path),))
        return cursor.rowcount > 0

    def rename_folder(self, old: str, new: str) -> int:
        """Give the files stored under `old` the paths they have under `new`
        (another spelling of the same folder, reached through a link), dropping
        any that are already stored under `new` too. Returns how many moved."""
        where, params = _at_or_below("path", old)
        rows = self.conn.execute(f"SELECT id, path FROM files WHERE {where}", params).fetchall()
        moved = 0
        for start in range(0, len(rows), DELETE_BATCH):
            with self.transaction():
                for file_id, raw in rows[start : start + DELETE_BATCH]:
                    path = new + path_from_row(raw)[len(old) :]
                    twin = self.conn.execute(
                        "SELECT 1 FROM files WHERE path = ?", (stored_path(path),)
                    ).fetchone()
                    if twin is not None:
                        self._delete_segments(file_id)
                        self.conn.execute("DELETE FROM files WHERE id = ?", (file_id,))
                    else:
                        self.conn.execute(
                            "UPDATE files SET path = ? WHERE id = ?", (stored_path(path), file_id)
                        )
                        moved += 1
        return moved

    # Search ---------------------------------------------------------------

    def nearest(
        self,
        space: Space,
        vector: Any,
        k: int,
        kinds: Sequence[str] | None = None,
        filters: Filters | None = None,
    ) -> list[SegmentHit]:
        """The `k` segments nearest to `vector` in `space` that pass `filters`, nearest
        first. Filters narrow the candidates inside the KNN query itself, so a
        selective filter still returns its `k` best, never an empty page."""
        k = max(1, min(k, KNN_MAX_K))
        sharded = space.shards > 1
        sql = (
            f"WITH knn AS (SELECT segment_id, distance, embedding FROM {space.table} "
            "WHERE embedding MATCH ? AND k = ?"
        )
        if sharded:
            sql += " AND shard = ?"
        params: list[Any] = [_floats(vector), k]
        if kinds:
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            params.extend(kinds)
        where, where_params = (filters or Filters()).sql()
        if where:
            sql += (
                " AND segment_id IN (SELECT s.id FROM segments s JOIN files f "
                f"ON f.id = s.file_id WHERE s.modality = ? AND {where})"
            )
            params.extend([space.modality, *where_params])
        sql += (
            ") SELECT knn.segment_id, knn.distance, f.id, f.path, f.kind, s.modality, "
            "s.start, s.end, knn.embedding FROM knn JOIN segments s ON s.id = knn.segment_id "
            "JOIN files f ON f.id = s.file_id ORDER BY knn.distance"
        )
        if not sharded:
            return [_hit(row) for row in self.conn.execute(sql, params)]
        # Each shard's k best, scanned side by side on their own connections
        # (SQLite lets other threads run while a statement steps), then merged.
        # Below PARALLEL_FROM vectors opening the connections costs more than
        # it saves (measured: 100,000 vectors scan in 0.06 s on one core).
        stats = self.conn.execute(
            "SELECT vectors FROM space_stats WHERE space_id = ?", (space.id,)
        ).fetchone()
        large = stats is not None and stats[0] >= PARALLEL_FROM
        readers = self._readers(min(space.shards, usable_cores()) if large else 1)

        def scan(index: int) -> list[SegmentHit]:
            hits: list[SegmentHit] = []
            for shard in range(index, space.shards, len(readers)):
                rows = readers[index].execute(sql, [*params[:2], shard, *params[2:]])
                hits.extend(_hit(row) for row in rows)
            return hits

        if len(readers) == 1:
            found = scan(0)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(len(readers)) as pool:
                found = [hit for hits in pool.map(scan, range(len(readers))) for hit in hits]
        found.sort(key=lambda hit: hit.distance)
        return found[:k]

    def _readers(self, count: int) -> list[_Connection]:
        """`count` connections to read with in parallel: this one, and more
        opened on first use (each loads sqlite-vec, a few milliseconds)."""
        while len(self._extra_readers) < count - 1:
            raw, _, driver_error = _connect_driver(self.path, self._mode)
            conn = _Connection(raw, self.path, driver_error)
            _configure(conn, write=False)
            self._extra_readers.append(conn)
        return [self.conn, *self._extra_readers[: count - 1]]

    def visual_vectors(self, space: Space) -> Iterator[tuple[str, str, Any, Any, bytes]]:
        """(path, kind, start, end, vector) for every segment stored in `space`."""
        rows = self.conn.execute(
            f"SELECT f.path, f.kind, s.start, s.end, v.embedding FROM segments s "
            f"JOIN files f ON f.id = s.file_id JOIN {space.table} v ON v.segment_id = s.id "
            "WHERE s.modality = ? ORDER BY f.path, s.start",
            (space.modality,),
        )
        for path, *rest in rows:
            yield (path_from_row(path), *rest)

    def stored_vectors(
        self, space: Space, path: str, size: int, mtime_ns: int, at: float | None = None
    ) -> list[bytes] | None:
        """The vectors `space` holds for the file at `path`, if it is indexed
        with this size and modification time (so unchanged since): every
        segment's, or the one segment spanning `at` seconds. None otherwise."""
        row = self.conn.execute(
            "SELECT f.id FROM files f JOIN file_spaces fs ON fs.file_id = f.id "
            "WHERE f.path = ? AND f.size = ? AND f.mtime_ns = ? AND f.status != 'failed' "
            "AND fs.space_id = ?",
            (stored_path(path), size, mtime_ns, space.id),
        ).fetchone()
        if row is None:
            return None
        sql = (
            f"SELECT v.embedding FROM segments s JOIN {space.table} v ON v.segment_id = s.id "
            "WHERE s.file_id = ? AND s.modality = ?"
        )
        params: list[Any] = [row[0], space.modality]
        if at is not None:
            # The first segment spanning the moment (sound windows overlap).
            sql += " AND s.start <= ? AND s.end > ? ORDER BY s.start LIMIT 1"
            params += [at, at]
        return [found[0] for found in self.conn.execute(sql, params)] or None

    # Words ------------------------------------------------------------------

    def with_words(self, space: Space, match: str) -> dict[int, float]:
        """Segments of a words space whose words match an FTS5 query over words
        (stemmed, diacritics folded): segment id -> relevance (bm25, higher is
        better)."""
        rows = self.conn.execute(
            "SELECT w.segment_id, -bm25(words_fts) FROM words_fts "
            "JOIN segment_words w ON w.segment_id = words_fts.rowid "
            "WHERE words_fts MATCH ? AND w.space_id = ?",
            (match, space.id),
        )
        return {int(row[0]): float(row[1]) for row in rows}

    def with_substring(self, space: Space, folded: str) -> set[int]:
        """Segments of a words space whose folded text contains `folded` (see
        `fold`): through the trigram index from three characters, by a scan of
        the space's texts below that (two Chinese characters make a word)."""
        if len(folded) >= 3:
            rows = self.conn.execute(
                "SELECT w.segment_id FROM words_trigram "
                "JOIN segment_words w ON w.segment_id = words_trigram.rowid "
                "WHERE words_trigram MATCH ? AND w.space_id = ?",
                ('"' + folded.replace('"', '""') + '"', space.id),
            )
        else:
            pattern = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = self.conn.execute(
                "SELECT segment_id FROM segment_words WHERE space_id = ? "
                "AND folded LIKE ? ESCAPE '\\'",
                (space.id, f"%{pattern}%"),
            )
        return {int(row[0]) for row in rows}

    def with_near_spelling(
        self, space: Space, pieces: Sequence[str], patterns: Sequence[str]
    ) -> set[int]:
        """Segments of a words space whose folded text holds one of `pieces`
        (three characters or more, through the trigram index) and is LIKE
        one of `patterns` (checked on those only)."""
        match = " OR ".join('"' + piece.replace('"', '""') + '"' for piece in pieces)
        like = " OR ".join("w.folded LIKE ?" for _ in patterns)
        rows = self.conn.execute(
            "SELECT w.segment_id FROM words_trigram "
            "JOIN segment_words w ON w.segment_id = words_trigram.rowid "
            f"WHERE words_trigram MATCH ? AND w.space_id = ? AND ({like})",
            (match, space.id, *patterns),
        )
        return {int(row[0]) for row in rows}

    def word_hits(
        self, segment_ids: Iterable[int], filters: Filters | None = None
    ) -> list[SegmentHit]:
        """The segments among `segment_ids` (of words spaces) that pass
        `filters` (kinds included), joined to their files and texts."""
        wanted = list(segment_ids)
        where, params = (filters or Filters()).sql()
        hits: list[SegmentHit] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self.conn.execute(
                "SELECT s.id, 0.0, f.id, f.path, f.kind, s.modality, s.start, s.end, w.text "
                "FROM segments s JOIN files f ON f.id = s.file_id "
                "JOIN segment_words w ON w.segment_id = s.id "
                f"WHERE s.id IN ({','.join('?' * len(chunk))})"
                + (f" AND {where}" if where else ""),
                [*chunk, *params],
            )
            hits += [
                SegmentHit(
                    segment_id=r[0],
                    distance=r[1],
                    file_id=r[2],
                    path=path_from_row(r[3]),
                    kind=r[4],
                    modality=r[5],
                    start=r[6],
                    end=r[7],
                    text=r[8],
                )
                for r in rows
            ]
        return hits

    def words_count(self, space: Space) -> int:
        """How many segments hold words in `space`."""
        row = self.conn.execute(
            "SELECT count(*) FROM segment_words WHERE space_id = ?", (space.id,)
        ).fetchone()
        return int(row[0])

    def words_of(self, path: str, modality: str) -> list[tuple[float | None, float | None, str]]:
        """(start, end, text) of a file's segments of a words modality, in time order."""
        rows = self.conn.execute(
            "SELECT s.start, s.end, w.text FROM segments s JOIN files f ON f.id = s.file_id "
            "JOIN segment_words w ON w.segment_id = s.id "
            "WHERE f.path = ? AND s.modality = ? ORDER BY s.start, s.id",
            (stored_path(path), modality),
        )
        return [(row[0], row[1], row[2]) for row in rows]

    def stored_words(
        self, space: Space, path: str, size: int, mtime_ns: int, at: float | None = None
    ) -> str | None:
        """The words `space` holds for the file at `path`, if it is indexed with
        this size and modification time: all of them, or those at `at`."""
        row = self.conn.execute(
            "SELECT f.id FROM files f JOIN file_spaces fs ON fs.file_id = f.id "
            "WHERE f.path = ? AND f.size = ? AND f.mtime_ns = ? AND f.status != 'failed' "
            "AND fs.space_id = ?",
            (stored_path(path), size, mtime_ns, space.id),
        ).fetchone()
        if row is None:
            return None
        sql = (
            "SELECT w.text FROM segments s JOIN segment_words w ON w.segment_id = s.id "
            "WHERE s.file_id = ? AND w.space_id = ?"
        )
        params: list[Any] = [row[0], space.id]
        if at is not None:
            sql += " AND s.start <= ? AND s.end + 1.0 > ?"
            params += [at, at]
        return " ".join(found[0] for found in self.conn.execute(sql + " ORDER BY s.start", params))

    def words_indexed(self, path: str, modality: str) -> bool:
        """Whether the file's words of `modality` were read (even if it has none)."""
        row = self.conn.execute(
            "SELECT 1 FROM files f JOIN file_spaces fs ON fs.file_id = f.id "
            "JOIN spaces sp ON sp.id = fs.space_id WHERE f.path = ? AND sp.modality = ?",
            (stored_path(path), modality),
        ).fetchone()
        return row is not None

    def languages(self) -> dict[str, int]:
        """How many files speak each detected language."""
        rows = self.conn.execute(
            "SELECT language, count(*) FROM files WHERE language IS NOT NULL "
            "GROUP BY language ORDER BY count(*) DESC, language"
        )
        return {row[0]: row[1] for row in rows}

    def has_vectors(self, space: Space) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM file_spaces WHERE space_id = ? LIMIT 1", (space.id,)
        ).fetchone()
        return row is not None

    def vector_count(self, space: Space) -> int:
        row = self.conn.execute(
            "SELECT count(*) FROM segments s JOIN file_spaces fs ON fs.file_id = s.file_id "
            "WHERE fs.space_id = ? AND s.modality = ?",
            (space.id, space.modality),
        ).fetchone()
        return int(row[0])

    def sample_vectors(self, space: Space, limit: int) -> Any:
        """Up to `limit` of the space's vectors, spread over the whole index."""
        import numpy as np

        total = self.vector_count(space)
        if total == 0:
            return np.zeros((0, space.dim), dtype=np.float32)
        # Every n-th segment id of the space: deterministic, and spread evenly.
        step = max(1, total // limit)
        ids = [
            (row[0],)
            for row in self.conn.execute(
                "SELECT s.id FROM segments s JOIN file_spaces fs ON fs.file_id = s.file_id "
                "WHERE fs.space_id = ? AND s.modality = ? ORDER BY s.id",
                (space.id, space.modality),
            )
        ][::step][:limit]
        rows = [
            self.conn.execute(
                f"SELECT embedding FROM {space.table} WHERE segment_id = ?", segment
            ).fetchone()
            for segment in ids
        ]
        blobs = [row[0] for row in rows if row is not None]
        if not blobs:
            return np.zeros((0, space.dim), dtype=np.float32)
        return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), space.dim)

    def compute_stats(self, space: Space) -> tuple[int, Any, Any] | None:
        """(vectors, mean, covariance) of the space, from an even sample; None when empty."""
        sample = self.sample_vectors(space, STATS_SAMPLE)
        if len(sample) == 0:
            return None
        mean = sample.mean(axis=0)
        centered = sample - mean
        covariance = centered.T @ centered / max(1, len(sample) - 1)
        return self.vector_count(space), mean, covariance

    def update_stats(self, space: Space) -> None:
        """Store the space's statistics (for calibrated search scores)."""
        stats = self.compute_stats(space)
        if stats is not None:
            self.save_stats(space, *stats)

    def save_stats(self, space: Space, vectors: int, mean: Any, covariance: Any) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO space_stats (space_id, vectors, mean, covariance, "
                "computed_at) VALUES (?, ?, ?, ?, ?)",
                (space.id, vectors, _floats(mean), _floats(covariance), time.time()),
            )

    def load_stats(self, space: Space) -> tuple[int, Any, Any] | None:
        import numpy as np

        row = self.conn.execute(
            "SELECT vectors, mean, covariance FROM space_stats WHERE space_id = ?", (space.id,)
        ).fetchone()
        if row is None:
            return None
        mean = np.frombuffer(row[1], dtype=np.float32)
        covariance = np.frombuffer(row[2], dtype=np.float32).reshape(space.dim, space.dim)
        return int(row[0]), mean, covariance

    # Status ---------------------------------------------------------------

    def count_files(self, filters: Filters | None = None) -> int:
        """How many indexed files (not failed) pass `filters`."""
        where, params = (filters or Filters()).sql()
        row = self.conn.execute(
            "SELECT count(*) FROM files f WHERE f.status != 'failed'"
            + (f" AND {where}" if where else ""),
            params,
        ).fetchone()
        return int(row[0])

    def counts_by_kind(self) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT kind, count(*) FROM files WHERE status != 'failed' GROUP BY kind"
        )
        return {row[0]: row[1] for row in rows}

    def segment_total(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM segments").fetchone()[0])

    def files_with_status(self, status: str) -> list[tuple[str, str]]:
        """(path, reason) of the files that 'failed' or were indexed in 'partial'."""
        rows = self.conn.execute(
            "SELECT path, coalesce(error, '') FROM files WHERE status = ? ORDER BY path", (status,)
        )
        return [(path_from_row(row[0]), row[1]) for row in rows]

    def roots(self) -> list[Root]:
        rows = self.conn.execute(
            "SELECT r.path, r.last_indexed_at, r.excludes, f.path IS NOT NULL FROM roots r "
            "LEFT JOIN forgotten f ON f.path = r.path ORDER BY r.path"
        )
        return [
            Root(path_from_row(row[0]), row[1], tuple(json.loads(row[2])), bool(row[3]))
            for row in rows
        ]

    def last_indexed_at(self) -> float | None:
        row = self.conn.execute("SELECT max(last_indexed_at) FROM roots").fetchone()
        return row[0]

    def size_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                total += os.stat(f"{self.path}{suffix}").st_size
        return total
