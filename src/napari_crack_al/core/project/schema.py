"""SQL schema of ``.crack-al/project.sqlite`` and its migrations.

The schema version lives in ``PRAGMA user_version``. :func:`migrate` brings a
database from any older version up to :data:`SCHEMA_VERSION`, one step per
version, each step in the caller's transaction. A database written by a newer
version of the code is refused (:class:`UnsupportedSchemaError`) rather than
guessed at.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

__all__ = ["SCHEMA_VERSION", "MIGRATIONS", "UnsupportedSchemaError", "schema_version", "migrate",
           "configure_connection"]

#: Version of the schema this code writes.
SCHEMA_VERSION = 3

_V1 = """
CREATE TABLE images (
    name                     TEXT PRIMARY KEY,
    filename                 TEXT NOT NULL,
    status                   TEXT NOT NULL DEFAULT 'new'
                             CHECK (status IN ('new', 'suggested', 'annotated', 'skipped')),
    queue_position           INTEGER NOT NULL,
    score                    REAL,
    score_model_version      TEXT,
    suggestion_model_version TEXT,
    suggestion_file_version  TEXT,
    annotation_seconds       REAL NOT NULL DEFAULT 0,
    edit_fraction            REAL,
    added_at                 REAL NOT NULL,
    updated_at               REAL NOT NULL
);
CREATE INDEX images_queue ON images (queue_position);

CREATE TABLE scores (
    name          TEXT NOT NULL REFERENCES images (name) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    value         REAL NOT NULL,
    model_version TEXT NOT NULL,
    updated_at    REAL NOT NULL,
    PRIMARY KEY (name, kind)
);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL            -- JSON
);

CREATE TABLE models (
    version    TEXT PRIMARY KEY,
    path       TEXT NOT NULL,      -- relative to the project root when inside it
    round      INTEGER NOT NULL,
    metrics    TEXT NOT NULL,      -- JSON object
    created_at REAL NOT NULL
);
"""


def _to_v1(conn: sqlite3.Connection) -> None:
    for statement in _V1.split(";"):
        if statement.strip():
            conn.execute(statement)


def _to_v2(conn: sqlite3.Connection) -> None:
    """The annotator's work in crack length (missed and false skeleton pixels) per accept."""
    conn.execute("ALTER TABLE images ADD COLUMN missed_length REAL")
    conn.execute("ALTER TABLE images ADD COLUMN false_length REAL")


def _to_v3(conn: sqlite3.Connection) -> None:
    """The suggestion a draft was edited from: its version ('' = none; NULL = not recorded)."""
    conn.execute("ALTER TABLE images ADD COLUMN draft_base_version TEXT")


#: ``MIGRATIONS[i]`` migrates a database from version ``i`` to ``i + 1``.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_to_v1, _to_v2, _to_v3]
assert len(MIGRATIONS) == SCHEMA_VERSION


class UnsupportedSchemaError(Exception):
    """The database was written by a newer version of napari-crack-al."""

    def __init__(self, found: int) -> None:
        self.found = found
        super().__init__(
            f"project schema version {found} is newer than this napari-crack-al supports "
            f"({SCHEMA_VERSION}); upgrade napari-crack-al to open it"
        )


def configure_connection(conn: sqlite3.Connection, *, timeout_ms: int = 30_000) -> None:
    """Per-connection settings: full fsync on commit, foreign keys, busy wait.

    ``journal_mode=WAL`` is persistent in the database file and set once at creation.
    """
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={int(timeout_ms)}")


def schema_version(conn: sqlite3.Connection) -> int:
    """Return the ``user_version`` of the database."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database up to :data:`SCHEMA_VERSION`.

    Runs every missing step inside one ``BEGIN IMMEDIATE`` transaction (the
    connection must be in autocommit mode, ``isolation_level=None``), so a crash
    leaves the database at its old version or at the new one.

    Parameters
    ----------
    conn : sqlite3.Connection
        An open connection with ``isolation_level=None``.

    Returns
    -------
    int
        The version the database had before.

    Raises
    ------
    UnsupportedSchemaError
        The database is newer than this code.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = schema_version(conn)
        if found > SCHEMA_VERSION:
            raise UnsupportedSchemaError(found)
        for step in MIGRATIONS[found:]:
            step(conn)
        if found != SCHEMA_VERSION:
            # PRAGMA takes no bound parameters; SCHEMA_VERSION is an int constant.
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION:d}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found
