"""SQLite plumbing of the project store: connections, transactions, creation and checks.

Every call opens a short-lived connection (``check_same_thread=False``, closed at
the end), so callers on several threads or in several processes never share one.
Low-level :class:`sqlite3.Error` is turned into :class:`ProjectError` naming the file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..atomic import fsync_dir
from ..errors import ProjectError
from . import schema

__all__ = ["connect", "transaction", "build_database", "check_database", "integrity_check"]

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 30.0


@contextlib.contextmanager
def connect(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A configured autocommit connection, closed on exit; SQLite errors become ProjectError."""
    try:
        conn = sqlite3.connect(db_path, isolation_level=None, timeout=BUSY_TIMEOUT_S,
                               check_same_thread=False)
    except sqlite3.Error as exc:
        raise ProjectError(db_path, f"cannot open the project database ({exc})") from exc
    try:
        schema.configure_connection(conn, timeout_ms=int(BUSY_TIMEOUT_S * 1000))
        yield conn
    except sqlite3.Error as exc:
        raise ProjectError(db_path, f"database error ({exc})") from exc
    finally:
        conn.close()


@contextlib.contextmanager
def transaction(db_path: Path) -> Iterator[sqlite3.Connection]:
    """One write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``), rolled back on any error."""
    with connect(db_path) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def build_database(db_path: Path, tmp_path: Path, rows: Sequence[tuple[Any, ...]],
                   meta: Mapping[str, Any]) -> None:
    """Create a complete database under ``tmp_path``, then rename it to ``db_path``.

    Parameters
    ----------
    db_path : Path
        Final database file.
    tmp_path : Path
        Temporary name in the same folder (removed first if a crash left it).
    rows : sequence of tuple
        ``(name, filename, status, queue_position, added_at, updated_at)`` per image.
    meta : mapping
        Initial meta values (JSON-serialisable).
    """
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{tmp_path}{suffix}")
    try:
        conn = sqlite3.connect(tmp_path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")  # persistent in the file
            schema.configure_connection(conn)
            schema.migrate(conn)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO images (name, filename, status, queue_position, "
                             "added_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)", rows)
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                             [(k, json.dumps(v)) for k, v in meta.items()])
            conn.execute("COMMIT")
        finally:
            conn.close()  # checkpoints the WAL into the main file and deletes it
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, db_path)
        fsync_dir(db_path.parent)
    except (sqlite3.Error, OSError) as exc:
        raise ProjectError(db_path, f"cannot create the project database ({exc})") from exc


def check_database(db_path: Path) -> None:
    """Check an existing database and migrate it to the current schema.

    Raises
    ------
    ProjectError
        Not an SQLite file, empty, damaged (``quick_check``), or written by a newer version.
    """
    try:
        conn = sqlite3.connect(db_path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error as exc:
        raise ProjectError(db_path, f"cannot open the project database ({exc})") from exc
    try:
        schema.configure_connection(conn)
        version = schema.schema_version(conn)
        if version == 0:
            raise ProjectError(db_path,
                               "database is empty (not a napari-crack-al project database)")
        if version > schema.SCHEMA_VERSION:
            raise schema.UnsupportedSchemaError(version)
        problems = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise ProjectError(db_path, "database is damaged: " + "; ".join(problems[:5]))
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode=WAL")
        if version < schema.SCHEMA_VERSION:
            logger.info("migrating %s from schema %d to %d", db_path, version,
                        schema.SCHEMA_VERSION)
            schema.migrate(conn)
    except schema.UnsupportedSchemaError as exc:
        raise ProjectError(db_path, str(exc)) from exc
    except sqlite3.DatabaseError as exc:
        raise ProjectError(db_path, f"not a valid project database ({exc})") from exc
    finally:
        conn.close()


def integrity_check(db_path: Path) -> list[str]:
    """Run SQLite's full ``PRAGMA integrity_check``; return the problems (empty when intact)."""
    with connect(db_path) as conn:
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
    return [] if rows == ["ok"] else rows
