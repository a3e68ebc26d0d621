"""The project store: a folder of range images plus crash-safe annotation state.

Layout (see ``docs/storage.md``)::

    ROOT/images/                   the range images (any supported format)
    ROOT/annotations/NAME.png      accepted masks, plain 0/255 PNG files
    ROOT/.crack-al/project.sqlite  SQLite, WAL mode, synchronous=FULL
    ROOT/.crack-al/suggestions/NAME.png, drafts/NAME.png, models/

Every operation opens a short-lived SQLite connection, so a :class:`Project`
may be used from the UI thread and from worker threads at once, and by several
processes (napari and the command line) at once. Mask files are written
atomically *before* the record that refers to them is committed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import fsync_dir
from ..errors import ConfigError, ImageReadError, InputError, MaskError, ProjectError
from ..mask_io import read_mask, write_mask
from . import _database
from ._files import ProjectLock, image_shape, is_temp_file, remove_temp_files
from .records import ImageRecord, ImageStatus, UnknownImageError, as_bool_mask, edit_fraction

__all__ = ["Project", "STATE_DIRNAME", "DB_FILENAME", "MASK_SUFFIX", "is_temp_file"]

logger = logging.getLogger(__name__)

STATE_DIRNAME = ".crack-al"
DB_FILENAME = "project.sqlite"
LOCK_FILENAME = "project.lock"
MASK_SUFFIX = ".png"
_CREATE_TMP = ".project.sqlite.tmp-create"
_COLUMNS = ("name, filename, status, queue_position, score, score_model_version, "
            "suggestion_model_version, annotation_seconds, edit_fraction, updated_at, "
            "suggestion_file_version")
_QUEUE = "ORDER BY queue_position, name"


def _row_to_record(row: Sequence[Any]) -> ImageRecord:
    return ImageRecord(name=row[0], filename=row[1], status=ImageStatus(row[2]),
                       queue_position=int(row[3]), score=row[4], score_model_version=row[5],
                       suggestion_model_version=row[6], annotation_seconds=float(row[7]),
                       edit_fraction=row[8], updated_at=float(row[9]),
                       suggestion_file_version=row[10])


class Project:
    """A crack-annotation project folder.

    Use :meth:`create` or :meth:`open`; the constructor does not touch the disk.

    Attributes
    ----------
    root, images_dir, annotations_dir, state_dir : Path
        The project folder, its images, accepted masks and state folder.
    models_dir, suggestions_dir, drafts_dir, db_path : Path
        Inside the state folder.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.images_dir = self.root / "images"
        self.annotations_dir = self.root / "annotations"
        self.state_dir = self.root / STATE_DIRNAME
        self.models_dir = self.state_dir / "models"
        self.suggestions_dir = self.state_dir / "suggestions"
        self.drafts_dir = self.state_dir / "drafts"
        self.db_path = self.state_dir / DB_FILENAME
        self._lock = threading.RLock()
        self._file_lock: ProjectLock | None = None

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r})"

    # ------------------------------------------------------------------ life cycle
    @staticmethod
    def is_project(root: str | Path) -> bool:
        """Whether ``root`` holds a project database (``.crack-al/project.sqlite``)."""
        return (Path(root) / STATE_DIRNAME / DB_FILENAME).is_file()

    @classmethod
    def create(cls, root: str | Path, *, pixel_size_mm: float | None = None) -> Project:
        """Create a project in ``root``, whose ``images/`` folder must hold images.

        Images that already have ``annotations/NAME.png`` start as annotated.
        The database is built under a temporary name and renamed into place, so
        an interrupted creation leaves no half-made project.

        Parameters
        ----------
        root : str or Path
            The project folder.
        pixel_size_mm : float, optional
            Size of one pixel in millimetres (stored in the meta table).

        Raises
        ------
        ProjectError
            ``images/`` is missing or holds no image, the folder is not writable,
            or it is already a project.
        """
        project = cls(root)
        _check_pixel_size(pixel_size_mm)
        if cls.is_project(project.root):
            raise ProjectError(project.root,
                               "is already a napari-crack-al project; open it instead")
        if not project.images_dir.is_dir():
            raise ProjectError(project.images_dir,
                               "folder does not exist; put the range images in it")
        paths = project._list_images()
        if not paths:
            raise ProjectError(project.images_dir,
                               "holds no supported images (.png .tif .tiff .npy)")
        if not os.access(project.root, os.W_OK):
            raise ProjectError(project.root, "folder is not writable (permission denied)")
        for folder in (project.annotations_dir, project.state_dir, project.suggestions_dir,
                       project.drafts_dir, project.models_dir):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ProjectError(folder, f"cannot create the folder ({exc.strerror or exc})") \
                    from exc
        project._build_database(paths, pixel_size_mm)
        project._acquire_file_lock()
        logger.info("created project %s with %d images", project.root, len(paths))
        return project

    @classmethod
    def open(cls, root: str | Path) -> Project:
        """Open an existing project (and remove temp files a crash may have left).

        Raises
        ------
        ProjectError
            Not a project, the database is not a valid or intact SQLite file, or
            its schema is newer than this code.
        """
        project = cls(root)
        if not project.root.is_dir():
            raise ProjectError(project.root, "folder does not exist")
        if not cls.is_project(project.root):
            raise ProjectError(project.root, "is not a napari-crack-al project "
                                             f"(no {STATE_DIRNAME}/{DB_FILENAME})")
        _database.check_database(project.db_path)
        project._acquire_file_lock()
        return project

    @classmethod
    def open_or_create(cls, root: str | Path, *, pixel_size_mm: float | None = None) -> Project:
        """Open ``root`` if it is a project, else create it (``pixel_size_mm`` applies then)."""
        if cls.is_project(root):
            return cls.open(root)
        return cls.create(root, pixel_size_mm=pixel_size_mm)

    def close(self) -> None:
        """Release the folder lock (the object stays usable for reads and writes)."""
        if self._file_lock is not None:
            self._file_lock.close()
            self._file_lock = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def _acquire_file_lock(self) -> None:
        lock = ProjectLock(self.state_dir / LOCK_FILENAME)
        if lock.try_exclusive():
            removed = self.remove_temp_files()
            if removed:
                logger.warning("removed %d temporary file(s) left by an interrupted write",
                               len(removed))
        lock.share()
        self._file_lock = lock

    def remove_temp_files(self) -> list[Path]:
        """Remove temporary files of interrupted atomic writes from the project's mask folders.

        :meth:`open` calls this only when no other process has the project open.

        Returns
        -------
        list of Path
            The files removed.
        """
        return remove_temp_files((self.annotations_dir, self.suggestions_dir, self.drafts_dir,
                                  self.state_dir))

    def _list_images(self) -> list[Path]:
        from ..range_io import list_images

        try:
            return list_images(self.images_dir)
        except ImageReadError as exc:
            raise ProjectError(exc.path, exc.problem) from exc

    def _build_database(self, paths: Sequence[Path], pixel_size_mm: float | None) -> None:
        now = time.time()
        rows = []
        for i, p in enumerate(paths):
            annotated = (self.annotations_dir / f"{p.stem}{MASK_SUFFIX}").is_file()
            status = ImageStatus.ANNOTATED if annotated else ImageStatus.NEW
            rows.append((p.stem, p.name, status.value, i, now, now))
        _database.build_database(self.db_path, self.state_dir / _CREATE_TMP, rows,
                                 {"pixel_size_mm": pixel_size_mm, "created_at": now})

    # ------------------------------------------------------------------ database access
    def _connect(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return _database.connect(self.db_path)

    def _transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """One write transaction, rolled back on any error."""
        return _database.transaction(self.db_path)

    def _require(self, conn: sqlite3.Connection, name: str) -> ImageRecord:
        row = conn.execute(f"SELECT {_COLUMNS} FROM images WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise UnknownImageError(self.images_dir, name)
        return _row_to_record(row)

    def _require_names(self, conn: sqlite3.Connection, names: Sequence[str]) -> None:
        known = {r[0] for r in conn.execute("SELECT name FROM images")}
        for name in names:
            if name not in known:
                raise UnknownImageError(self.images_dir, name)

    def integrity_check(self) -> list[str]:
        """Run SQLite's full ``PRAGMA integrity_check``; return the problems (empty when intact)."""
        return _database.integrity_check(self.db_path)

    # ------------------------------------------------------------------ images and records
    def refresh(self) -> list[str]:
        """Register images added to ``images/`` since the last refresh, at the end of the queue.

        An image whose file was replaced by one of another format (same name)
        gets its file name updated. Images whose file disappeared are kept.

        Returns
        -------
        list of str
            Names of the newly registered images.
        """
        paths = self._list_images()
        now = time.time()
        with self._transaction() as conn:
            known = dict(conn.execute("SELECT name, filename FROM images").fetchall())
            start = conn.execute("SELECT COALESCE(MAX(queue_position), -1) + 1 "
                                 "FROM images").fetchone()[0]
            new = []
            for p in paths:
                if p.stem not in known:
                    new.append(p)
                elif known[p.stem] != p.name and not (self.images_dir / known[p.stem]).exists():
                    conn.execute("UPDATE images SET filename = ?, updated_at = ? WHERE name = ?",
                                 (p.name, now, p.stem))
            conn.executemany(
                "INSERT INTO images (name, filename, status, queue_position, added_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(p.stem, p.name,
                  ImageStatus.ANNOTATED.value if self.annotation_path(p.stem, check=False).is_file()
                  else ImageStatus.NEW.value, start + i, now, now) for i, p in enumerate(new)])
        if new:
            logger.info("registered %d new image(s) in %s", len(new), self.root)
        return [p.stem for p in new]

    def names(self) -> list[str]:
        """Image names in queue order."""
        with self._connect() as conn:
            return [r[0] for r in conn.execute(f"SELECT name FROM images {_QUEUE}")]

    def records(self) -> list[ImageRecord]:
        """All image records in queue order."""
        with self._connect() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM images {_QUEUE}").fetchall()
        return [_row_to_record(r) for r in rows]

    def record(self, name: str) -> ImageRecord:
        """The record of one image.

        Raises
        ------
        UnknownImageError
            No such image (both a ProjectError and a KeyError).
        """
        with self._connect() as conn:
            return self._require(conn, name)

    def counts(self) -> dict[str, int]:
        """Number of images per status (every status present, zeros included)."""
        out = {s.value: 0 for s in ImageStatus}
        with self._connect() as conn:
            for status, n in conn.execute("SELECT status, COUNT(*) FROM images GROUP BY status"):
                out[status] = int(n)
        return out

    def image_path(self, name: str) -> Path:
        """Path of the image file of ``name``."""
        return self.images_dir / self.record(name).filename

    def image_shape(self, name: str) -> tuple[int, int]:
        """(H, W) of the image, read from the file header where possible.

        Raises
        ------
        ImageReadError
            The image file is missing or unreadable.
        """
        return image_shape(self.image_path(name))

    def annotation_path(self, name: str, *, check: bool = True) -> Path:
        """``annotations/NAME.png`` (``check``: raise for an unknown name)."""
        if check:
            self.record(name)
        return self.annotations_dir / f"{name}{MASK_SUFFIX}"

    def suggestion_path(self, name: str, *, check: bool = True) -> Path:
        """``.crack-al/suggestions/NAME.png``."""
        if check:
            self.record(name)
        return self.suggestions_dir / f"{name}{MASK_SUFFIX}"

    def draft_path(self, name: str, *, check: bool = True) -> Path:
        """``.crack-al/drafts/NAME.png``."""
        if check:
            self.record(name)
        return self.drafts_dir / f"{name}{MASK_SUFFIX}"

    # ------------------------------------------------------------------ masks
    @staticmethod
    def _read_if_exists(path: Path) -> np.ndarray | None:
        return read_mask(path) if path.is_file() else None

    def read_annotation(self, name: str) -> np.ndarray | None:
        """The accepted mask of ``name`` (bool), or None when there is none."""
        return self._read_if_exists(self.annotation_path(name))

    def read_suggestion(self, name: str) -> np.ndarray | None:
        """The model's suggested mask of ``name`` (bool), or None."""
        return self._read_if_exists(self.suggestion_path(name))

    def read_draft(self, name: str) -> np.ndarray | None:
        """The unaccepted draft of ``name`` (bool), or None."""
        return self._read_if_exists(self.draft_path(name))

    def has_draft(self, name: str) -> bool:
        """Whether ``name`` has a saved draft."""
        return self.draft_path(name).is_file()

    def mask_for_editing(self, name: str) -> tuple[np.ndarray | None, str]:
        """The mask to put in front of the annotator, and where it came from.

        Returns
        -------
        (mask or None, source)
            ``source`` is the first of ``"draft"``, ``"annotation"``, ``"suggestion"``
            that exists, else ``(None, "empty")``.
        """
        self.record(name)
        for source, folder in (("draft", self.drafts_dir), ("annotation", self.annotations_dir),
                               ("suggestion", self.suggestions_dir)):
            mask = self._read_if_exists(folder / f"{name}{MASK_SUFFIX}")
            if mask is not None:
                return mask, source
        return None, "empty"

    def _checked_mask(self, name: str, mask: object, path: Path) -> np.ndarray:
        """``mask`` as bool, checked against the image's shape (when the image is readable)."""
        arr = as_bool_mask(mask, path=path)
        try:
            shape = self.image_shape(name)
        except InputError as exc:  # never lose the annotator's work over an unreadable image
            logger.warning("cannot check the mask shape of %s: %s", name, exc)
            return arr
        if arr.shape != shape:
            raise MaskError(path, f"mask size differs from its image {self.record(name).filename}: "
                                  f"mask is {arr.shape[0]} x {arr.shape[1]} pixels, "
                                  f"image is {shape[0]} x {shape[1]}")
        return arr

    def save_draft(self, name: str, mask: np.ndarray) -> None:
        """Save an unaccepted mask (autosave); it takes priority in :meth:`mask_for_editing`."""
        path = self.draft_path(name)
        arr = self._checked_mask(name, mask, path)
        with self._lock:
            write_mask(path, arr)

    def discard_draft(self, name: str) -> None:
        """Delete the draft of ``name`` if there is one."""
        path = self.draft_path(name)
        with self._lock:
            self._unlink(path)

    @staticmethod
    def _unlink(path: Path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ProjectError(path, f"cannot delete the file ({exc.strerror or exc})") from exc
        fsync_dir(path.parent)

    def accept(self, name: str, mask: np.ndarray, *, seconds: float = 0.0) -> ImageRecord:
        """Accept ``mask`` as the annotation of ``name``.

        Order: the mask file is written atomically first, then the record is
        committed in one transaction (status annotated, time accumulated, edit
        fraction against the current suggestion), then the draft is removed. A
        crash between steps leaves the previous record with the new file, never
        a record pointing at a missing or partial file.

        Parameters
        ----------
        name : str
            Image name.
        mask : ndarray of bool or int, shape (H, W)
            The accepted mask (> 0 is crack).
        seconds : float
            Annotation time to add to the record.

        Returns
        -------
        ImageRecord
            The updated record.

        Raises
        ------
        MaskError
            The mask is not 2-D, not bool/int, or its shape differs from the image.
        """
        seconds = _check_seconds(seconds)
        path = self.annotation_path(name)
        arr = self._checked_mask(name, mask, path)
        with self._lock:
            suggestion, suggestion_version = self._suggestion_for_edit_fraction(name, arr.shape)
            fraction = edit_fraction(arr, suggestion)
            write_mask(path, arr)
            with self._transaction() as conn:
                conn.execute(
                    "UPDATE images SET status = ?, annotation_seconds = annotation_seconds + ?, "
                    "edit_fraction = ?, suggestion_model_version = ?, updated_at = ? "
                    "WHERE name = ?",
                    (ImageStatus.ANNOTATED.value, seconds, fraction, suggestion_version,
                     time.time(), name))
                record = self._require(conn, name)
            self._unlink(self.draft_path(name, check=False))
        logger.info("accepted %s (edit fraction %.3f, %.1f s)", name, fraction, seconds)
        return record

    def _suggestion_for_edit_fraction(self, name: str, shape: tuple[int, ...]
                                      ) -> tuple[np.ndarray | None, str | None]:
        try:
            suggestion = self.read_suggestion(name)
        except MaskError as exc:
            logger.warning("ignoring unreadable suggestion for %s: %s", name, exc)
            return None, None
        if suggestion is None:
            return None, None
        if suggestion.shape != tuple(shape):
            logger.warning("ignoring suggestion for %s of shape %s (mask %s)", name,
                           suggestion.shape, shape)
            return None, None
        return suggestion, self.record(name).suggestion_file_version

    def skip(self, name: str, *, seconds: float = 0.0) -> ImageRecord:
        """Mark ``name`` skipped (:meth:`next_name` passes it by); ``seconds`` are accumulated."""
        seconds = _check_seconds(seconds)
        with self._transaction() as conn:
            self._require(conn, name)
            conn.execute("UPDATE images SET status = ?, "
                         "annotation_seconds = annotation_seconds + ?, updated_at = ? "
                         "WHERE name = ?",
                         (ImageStatus.SKIPPED.value, seconds, time.time(), name))
            return self._require(conn, name)

    def unskip(self, name: str) -> ImageRecord:
        """Put a skipped image back in the queue (suggested if it has a suggestion, else new)."""
        status = ImageStatus.SUGGESTED if self.suggestion_path(name).is_file() else ImageStatus.NEW
        with self._transaction() as conn:
            conn.execute("UPDATE images SET status = ?, updated_at = ? "
                         "WHERE name = ? AND status = ?",
                         (status.value, time.time(), name, ImageStatus.SKIPPED.value))
            return self._require(conn, name)

    def set_suggestion(self, name: str, mask: np.ndarray, model_version: str) -> None:
        """Store the model's suggested mask for ``name`` (file first, then the record).

        A new image becomes suggested; for new and suggested images the record's
        ``suggestion_model_version`` becomes ``model_version``. Annotated and
        skipped images keep their status and the version they were annotated from.
        """
        _check_version(model_version)
        path = self.suggestion_path(name)
        arr = self._checked_mask(name, mask, path)
        with self._lock:
            write_mask(path, arr)
            with self._transaction() as conn:
                conn.execute(
                    "UPDATE images SET suggestion_file_version = ?, "
                    "suggestion_model_version = CASE WHEN status IN ('new', 'suggested') THEN ? "
                    "ELSE suggestion_model_version END, "
                    "status = CASE WHEN status = 'new' THEN 'suggested' ELSE status END, "
                    "updated_at = ? "
                    "WHERE name = ?", (model_version, model_version, time.time(), name))

    # ------------------------------------------------------------------ scores and queue
    def set_scores(self, scores: Mapping[str, float], model_version: str,
                   kind: str = "score") -> None:
        """Store one score per image for ``kind`` (all in one transaction).

        ``kind="score"`` also becomes the record's ``score`` / ``score_model_version``.

        Raises
        ------
        UnknownImageError
            A name is not in the project (nothing is written).
        ValueError
            A value is not a finite number, or ``kind`` is empty.
        """
        _check_version(model_version)
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"score kind must be a non-empty string, got {kind!r}")
        values = []
        for name, value in scores.items():
            v = float(value)
            if not math.isfinite(v):
                raise ValueError(f"score {kind!r} of {name!r} is not finite ({value!r})")
            values.append((name, v))
        now = time.time()
        with self._transaction() as conn:
            self._require_names(conn, [n for n, _ in values])
            conn.executemany(
                "INSERT INTO scores (name, kind, value, model_version, updated_at) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (name, kind) DO UPDATE SET value = excluded.value, "
                "model_version = excluded.model_version, updated_at = excluded.updated_at",
                [(n, kind, v, model_version, now) for n, v in values])
            if kind == "score":
                conn.executemany("UPDATE images SET score = ?, score_model_version = ?, "
                                 "updated_at = ? WHERE name = ?",
                                 [(v, model_version, now, n) for n, v in values])

    def get_scores(self, kind: str | None = None) -> dict[str, dict[str, float]]:
        """Stored scores as ``{name: {kind: value}}`` (only ``kind`` when given)."""
        query = "SELECT name, kind, value FROM scores"
        args: tuple[str, ...] = ()
        if kind is not None:
            query += " WHERE kind = ?"
            args = (kind,)
        out: dict[str, dict[str, float]] = {}
        with self._connect() as conn:
            for name, k, value in conn.execute(query + " ORDER BY name, kind", args):
                out.setdefault(name, {})[k] = float(value)
        return out

    def score_versions(self, kind: str = "score") -> dict[str, str]:
        """Model version that produced each stored score of ``kind``: ``{name: version}``."""
        with self._connect() as conn:
            return dict(conn.execute("SELECT name, model_version FROM scores WHERE kind = ?",
                                     (kind,)).fetchall())

    def set_queue_order(self, names: Sequence[str]) -> None:
        """Put ``names`` first, in this order; the other images keep their order after them.

        Repeated names count once. Raises :class:`UnknownImageError` for an unknown name.
        """
        wanted = list(dict.fromkeys(names))
        with self._transaction() as conn:
            self._require_names(conn, wanted)
            current = [r[0] for r in conn.execute(f"SELECT name FROM images {_QUEUE}")]
            chosen = set(wanted)
            order = wanted + [n for n in current if n not in chosen]
            conn.executemany("UPDATE images SET queue_position = ? WHERE name = ?",
                             [(i, n) for i, n in enumerate(order)])

    def next_name(self, after: str | None = None) -> str | None:
        """The next image in queue order whose status is new or suggested.

        With ``after``, the search starts behind that image and wraps around to
        the start of the queue (``after`` itself is never returned). None when no
        image waits.
        """
        with self._connect() as conn:
            rows = conn.execute(f"SELECT name, status FROM images {_QUEUE}").fetchall()
            if after is not None:
                idx = next((i for i, r in enumerate(rows) if r[0] == after), None)
                if idx is None:
                    raise UnknownImageError(self.images_dir, after)
                rows = rows[idx + 1:] + rows[:idx]
        pending = {ImageStatus.NEW.value, ImageStatus.SUGGESTED.value}
        return next((name for name, status in rows if status in pending), None)

    # ------------------------------------------------------------------ meta
    def get_meta(self, key: str, default: Any = None) -> Any:
        """The JSON value stored under ``key``, or ``default``."""
        with self._connect() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable ``value`` under ``key`` (ValueError otherwise)."""
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"meta value for {key!r} is not JSON-serialisable ({exc})") from exc
        with self._transaction() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, text))

    @property
    def pixel_size_mm(self) -> float | None:
        """Size of one pixel in millimetres (None when unknown)."""
        value = self.get_meta("pixel_size_mm")
        return None if value is None else float(value)

    @pixel_size_mm.setter
    def pixel_size_mm(self, value: float | None) -> None:
        _check_pixel_size(value)
        self.set_meta("pixel_size_mm", None if value is None else float(value))

    # ------------------------------------------------------------------ models
    def add_model(self, version: str, path: str | Path, *, round: int,
                  metrics: Mapping[str, float]) -> None:
        """Register a trained model (``path`` is stored relative to the root when inside it).

        Raises
        ------
        ProjectError
            ``version`` is already registered.
        """
        _check_version(version)
        path = Path(path)
        with contextlib.suppress(ValueError):
            path = path.resolve().relative_to(self.root.resolve())
        try:
            metrics_json = json.dumps({str(k): float(v) for k, v in dict(metrics).items()})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"metrics of model {version!r} must map names to numbers ({exc})") \
                from exc
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM models WHERE version = ?", (version,)).fetchone():
                raise ProjectError(self.db_path, f"model version {version!r} is already registered")
            conn.execute("INSERT INTO models (version, path, round, metrics, created_at) "
                         "VALUES (?, ?, ?, ?, ?)",
                         (version, path.as_posix(), int(round), metrics_json, time.time()))

    def models(self) -> list[dict[str, Any]]:
        """Registered models, oldest first.

        Returns
        -------
        list of dict
            Keys ``version``, ``path`` (absolute), ``round``, ``metrics``, ``created_at``.
        """
        with self._connect() as conn:
            rows = conn.execute("SELECT version, path, round, metrics, created_at FROM models "
                                "ORDER BY created_at, rowid").fetchall()
        return [{"version": v, "path": self.root / p, "round": int(r), "metrics": json.loads(m),
                 "created_at": float(c)} for v, p, r, m, c in rows]

    def current_model(self) -> dict[str, Any] | None:
        """The most recently registered model, or None."""
        models = self.models()
        return models[-1] if models else None


def _check_pixel_size(value: float | None) -> None:
    if value is None:
        return
    try:
        ok = math.isfinite(float(value)) and float(value) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError("pixel_size_mm must be a positive number of millimetres or None; "
                          f"got {value!r}")


def _check_seconds(seconds: float) -> float:
    s = float(seconds)
    if not math.isfinite(s) or s < 0:
        raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
    return s


def _check_version(version: str) -> None:
    if not isinstance(version, str) or not version:
        raise ValueError(f"model version must be a non-empty string, got {version!r}")
