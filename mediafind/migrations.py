"""Numbered schema steps, applied in order, each in its own transaction.

A step that changes a table in a way ALTER TABLE cannot (a constraint) uses
`rebuild_table`; the runner (`db._migrate_step`) turns foreign keys off
around each step and checks them before it commits.

The index is the user's data: never edit a step that has shipped, append a new
one. `PRAGMA user_version` records how many steps a file has had.

Vectors live outside these steps, in one sqlite-vec table per embedding space
(`vec_space_<id>`), created when a model first writes to the index, because
their dimension depends on the model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Migration = Callable[[Any], None]


def _execute_all(conn: Any, script: str) -> None:
    # Statement by statement: executescript() would COMMIT first and break the
    # step's transaction. Comments are dropped first (the scripts here hold no
    # "--" inside string literals); pieces between semicolons are joined until
    # SQLite deems them a whole statement, as a trigger's body holds several.
    import sqlite3

    code = "\n".join(line.split("--", 1)[0] for line in script.splitlines())
    statement = ""
    for piece in code.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip(" \n;"):
                conn.execute(statement)
            statement = ""


def m001_initial(conn: Any) -> None:
    _execute_all(
        conn,
        """
        CREATE TABLE roots (
            path TEXT PRIMARY KEY,
            added_at REAL NOT NULL,
            last_indexed_at REAL
        );

        -- One row per media file seen under a root, failed ones included so
        -- that they are not retried until they change.
        CREATE TABLE files (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL CHECK (kind IN ('image', 'video', 'audio')),
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            content_hash TEXT,
            status TEXT NOT NULL CHECK (status IN ('ok', 'partial', 'failed')),
            error TEXT,
            width INTEGER,
            height INTEGER,
            duration REAL,
            indexed_at REAL NOT NULL
        );
        CREATE INDEX files_content_hash ON files (content_hash);

        -- An embedding space: the vectors one model made for one modality.
        -- Exactly one space per modality is active; vectors of two spaces are
        -- never compared with each other.
        CREATE TABLE spaces (
            id INTEGER PRIMARY KEY,
            modality TEXT NOT NULL CHECK (modality IN ('visual', 'audio')),
            model TEXT NOT NULL,
            model_key TEXT NOT NULL,
            dim INTEGER NOT NULL,
            active INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            UNIQUE (modality, model_key)
        );

        -- A moment of a file: a whole photo (start and end NULL), a video
        -- frame's span, or an audio window. Each has one vector per space of
        -- its modality, keyed by the segment id.
        CREATE TABLE segments (
            id INTEGER PRIMARY KEY,
            file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
            modality TEXT NOT NULL CHECK (modality IN ('visual', 'audio')),
            start REAL,
            end REAL
        );
        CREATE INDEX segments_file ON segments (file_id);

        -- Which spaces hold a file's vectors: what a re-embed with a new model
        -- still has to do, and which content hashes can be reused.
        CREATE TABLE file_spaces (
            file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
            space_id INTEGER NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
            PRIMARY KEY (file_id, space_id)
        ) WITHOUT ROWID;
        CREATE INDEX file_spaces_space ON file_spaces (space_id);
        """,
    )


def m002_space_stats(conn: Any) -> None:
    _execute_all(
        conn,
        """
        -- The mean and covariance of a space's vectors, from a sample: with
        -- them any query's score distribution over the whole space is known
        -- without a scan, and scores of two spaces can be put on one scale.
        CREATE TABLE space_stats (
            space_id INTEGER PRIMARY KEY REFERENCES spaces (id) ON DELETE CASCADE,
            vectors INTEGER NOT NULL,
            mean BLOB NOT NULL,
            covariance BLOB NOT NULL,
            computed_at REAL NOT NULL
        );
        """,
    )


def m003_capture_time(conn: Any) -> None:
    # When the photo was taken or the recording made (EXIF DateTimeOriginal,
    # the container's creation_time), else NULL: queries fall back to mtime.
    conn.execute("ALTER TABLE files ADD COLUMN captured_at REAL")
    conn.execute("CREATE INDEX files_captured_at ON files (captured_at)")


def m004_space_shards(conn: Any) -> None:
    # A space's vectors can be split into shards (a sqlite-vec partition key,
    # segment_id % shards) that a search scans side by side, one core each.
    # Spaces made before this have one shard and are scanned whole.
    conn.execute("ALTER TABLE spaces ADD COLUMN shards INTEGER NOT NULL DEFAULT 1")


def m005_forgotten_and_root_excludes(conn: Any) -> None:
    _execute_all(
        conn,
        """
        -- The --exclude globs given with a root, as a JSON list: later runs of
        -- that root (cron's bare `mediafind index`) apply them again.
        ALTER TABLE roots ADD COLUMN excludes TEXT NOT NULL DEFAULT '[]';

        -- Files and folders the user removed with `forget`: later runs leave
        -- them out until the user indexes one of them by name.
        CREATE TABLE forgotten (
            path TEXT PRIMARY KEY,
            forgotten_at REAL NOT NULL
        );
        """,
    )


def rebuild_table(conn: Any, name: str, definition: str) -> None:
    """Give table `name` a new definition (`CREATE TABLE {name} (...)`), keeping
    its rows and indexes: SQLite's way to change a table, for what ALTER TABLE
    cannot do. The new definition keeps the columns' names; the runner turns
    foreign keys off around the step, so that dropping the old table
    cascades nothing, and checks them before committing."""
    columns = [row[1] for row in conn.execute(f"PRAGMA table_info({name})").fetchall()]
    indexes = [
        row[0]
        for row in conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL",
            (name,),
        ).fetchall()
    ]
    staging = f"{name}_rebuilt"
    conn.execute(definition.format(name=staging))
    listed = ", ".join(columns)
    conn.execute(f"INSERT INTO {staging} ({listed}) SELECT {listed} FROM {name}")
    conn.execute(f"DROP TABLE {name}")
    conn.execute(f"ALTER TABLE {staging} RENAME TO {name}")
    for index in indexes:
        conn.execute(index)


def m006_modalities_are_not_a_fixed_list(conn: Any) -> None:
    # The modalities come from a registry (mediafind.modalities); the schema
    # no longer lists them, so a new one needs no migration.
    rebuild_table(
        conn,
        "spaces",
        """
        CREATE TABLE {name} (
            id INTEGER PRIMARY KEY,
            modality TEXT NOT NULL,
            model TEXT NOT NULL,
            model_key TEXT NOT NULL,
            dim INTEGER NOT NULL,
            active INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            shards INTEGER NOT NULL DEFAULT 1,
            UNIQUE (modality, model_key)
        )
        """,
    )
    rebuild_table(
        conn,
        "segments",
        """
        CREATE TABLE {name} (
            id INTEGER PRIMARY KEY,
            file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
            modality TEXT NOT NULL,
            start REAL,
            end REAL
        )
        """,
    )


def m007_words(conn: Any) -> None:
    _execute_all(
        conn,
        """
        -- The language spoken in a file, as detected (or given) when its
        -- speech was transcribed; NULL when it has none.
        ALTER TABLE files ADD COLUMN language TEXT;

        -- The words of a segment: what is said in it (speech) or written in
        -- it (text). A words modality's space has no vectors (dim 0); its
        -- segments have words instead, from the model the space records.
        -- `folded` is the text casefolded with diacritics removed, for the
        -- substring index (FTS5's trigram tokenizer folds no diacritics in
        -- SQLite before 3.45, which some Pythons still ship).
        CREATE TABLE segment_words (
            segment_id INTEGER PRIMARY KEY REFERENCES segments (id) ON DELETE CASCADE,
            space_id INTEGER NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
            text TEXT NOT NULL,
            folded TEXT NOT NULL
        );
        CREATE INDEX segment_words_space ON segment_words (space_id);

        -- Words as words: Unicode-aware, diacritics folded (cafe finds cafe
        -- with an accent), English stems (candles finds candle).
        CREATE VIRTUAL TABLE words_fts USING fts5(
            text, content='segment_words', content_rowid='segment_id',
            tokenize='porter unicode61 remove_diacritics 2'
        );
        -- Words as substrings: trigrams, for scripts written without spaces and
        -- for text whose spaces OCR lost (GATEB12DEPARTURES holds b12).
        CREATE VIRTUAL TABLE words_trigram USING fts5(
            folded, content='segment_words', content_rowid='segment_id', tokenize='trigram'
        );
        CREATE TRIGGER segment_words_added AFTER INSERT ON segment_words BEGIN
            INSERT INTO words_fts (rowid, text) VALUES (new.segment_id, new.text);
            INSERT INTO words_trigram (rowid, folded) VALUES (new.segment_id, new.folded);
        END;
        CREATE TRIGGER segment_words_removed AFTER DELETE ON segment_words BEGIN
            INSERT INTO words_fts (words_fts, rowid, text)
                VALUES ('delete', old.segment_id, old.text);
            INSERT INTO words_trigram (words_trigram, rowid, folded)
                VALUES ('delete', old.segment_id, old.folded);
        END;
        """,
    )


def m008_text_boxes(conn: Any) -> None:
    """Where a text segment's words are in the picture (JSON fractions), for
    the results page; NULL for speech."""
    _execute_all(conn, "ALTER TABLE segment_words ADD COLUMN box TEXT;")


MIGRATIONS: list[Migration] = [
    m001_initial,
    m002_space_stats,
    m003_capture_time,
    m004_space_shards,
    m005_forgotten_and_root_excludes,
    m006_modalities_are_not_a_fixed_list,
    m007_words,
    m008_text_boxes,
]
