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

from ..io.atomic import fsync_dir, probe_writable
from ..errors import ProjectError
from . import schema

__all__ = ["connect", "transaction", "build_database", "check_database", "integrity_check",
           "explain", "medium_is_read_only"]

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 30.0


#: What SQLite's messages mean for a user, checked in order (lower-case substrings).
_EXPLANATIONS = (
    ("readonly database", "the project is on a read-only medium (or its files are read-only); "
                          "nothing can be changed"),
    ("disk is full", "the disk is full; free some space and try again"),
    ("disk i/o error", "the medium failed to read or write (disk I/O error)"),
    ("database is locked", "the database is locked by another process that is writing; try "
                           "again when it is done"),
    ("unable to open database file", "cannot open the database file (missing, or its folder "
                                     "is not accessible)"),
)


def explain(exc: sqlite3.Error) -> str | None:
    """A user's words for an SQLite error that is not about a damaged file, else None."""
    text = str(exc).lower()
    for needle, words in _EXPLANATIONS:
        if needle in text:
            return words
    return None


def _open(db_path: Path, read_only: bool) -> sqlite3.Connection:
    if not read_only:
        return sqlite3.connect(db_path, isolation_level=None, timeout=BUSY_TIMEOUT_S,
                               check_same_thread=False)
    # immutable: no lock, no -wal/-shm files (a read-only medium cannot hold them)
    uri = f"{db_path.resolve().as_uri()}?mode=ro&immutable=1"
    return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)


@contextlib.contextmanager
def connect(db_path: Path, *, read_only: bool = False) -> Iterator[sqlite3.Connection]:
    """A configured autocommit connection, closed on exit; SQLite errors become ProjectError.

    With ``read_only`` the file is opened immutable (``mode=ro&immutable=1``): nothing is
    written, not even a journal, so a project on a read-only medium can be read and exported.
    """
    try:
        conn = _open(db_path, read_only)
    except sqlite3.Error as exc:
        why = explain(exc) or f"cannot open the project database ({exc})"
        raise ProjectError(db_path, why) from exc
    try:
        schema.configure_connection(conn, timeout_ms=int(BUSY_TIMEOUT_S * 1000))
        yield conn
    except sqlite3.Error as exc:
        raise ProjectError(db_path, explain(exc) or f"database error ({exc})") from exc
    finally:
        conn.close()


@contextlib.contextmanager
def transaction(db_path: Path, *, read_only: bool = False) -> Iterator[sqlite3.Connection]:
    """One write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``), rolled back on any error."""
    if read_only:
        raise ProjectError(db_path, "the project is open read-only (its medium is read-only); "
                                    "nothing can be changed")
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


def check_database(db_path: Path, *, read_only: bool = False) -> None:
    """Check an existing database and migrate it to the current schema (unless ``read_only``).

    Raises
    ------
    ProjectError
        Not an SQLite file, empty, damaged (``quick_check``), written by a newer version,
        or (``read_only``) by an older one that needs migrating on a writable medium; or the
        medium is full, failing or locked (said in those words).
    """
    try:
        conn = _open(db_path, read_only)
    except sqlite3.Error as exc:
        why = explain(exc) or f"cannot open the project database ({exc})"
        raise ProjectError(db_path, why) from exc
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
        if read_only:
            if version < schema.SCHEMA_VERSION:
                raise ProjectError(db_path, f"was made by an older version (schema {version}); "
                                            "open it once on a writable medium to update it")
            return
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode=WAL")
        if version < schema.SCHEMA_VERSION:
            logger.info("migrating %s from schema %d to %d", db_path, version,
                        schema.SCHEMA_VERSION)
            schema.migrate(conn)
    except schema.UnsupportedSchemaError as exc:
        raise ProjectError(db_path, str(exc)) from exc
    except sqlite3.DatabaseError as exc:
        why = explain(exc) or f"not a valid project database ({exc})"
        raise ProjectError(db_path, why) from exc
    finally:
        conn.close()


def medium_is_read_only(folder: Path) -> bool:
    """Whether no file can be created in ``folder`` because it (or its medium) is read-only."""
    import errno

    try:
        probe_writable(folder)
    except OSError as exc:
        return exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
    return False


def integrity_check(db_path: Path) -> list[str]:
    """Run SQLite's full ``PRAGMA integrity_check``; return the problems (empty when intact)."""
    with connect(db_path) as conn:
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
    return [] if rows == ["ok"] else rows
