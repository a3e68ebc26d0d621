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

This module holds the life cycle of a project (create, open, the folder lock), the
database access and the crash-safe writes of masks (drafts, accept, skip,
suggestions). The read side is mixed in from :mod:`._catalog` (images, records,
paths, reading masks), :mod:`._ranking` (scores, queue order) and :mod:`._meta`
(meta values, model registry).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..io.atomic import fsync_dir
from ..errors import InputError, MaskError, ProjectError
from ..io.mask_io import write_mask
from . import _database
from ._catalog import MASK_SUFFIX, CatalogMixin
from ._drafts import DraftBase, DraftsMixin
from ._files import ProjectLock, is_temp_file, remove_temp_files
from ._meta import MetaMixin, _check_pixel_size, _check_version
from ._ranking import RankingMixin
from ._unreadable import UnreadableMixin
from .records import ImageRecord, ImageStatus, as_bool_mask, edit_fraction

__all__ = ["Project", "STATE_DIRNAME", "DB_FILENAME", "MASK_SUFFIX", "is_temp_file"]

logger = logging.getLogger(__name__)

STATE_DIRNAME = ".crack-al"
DB_FILENAME = "project.sqlite"
LOCK_FILENAME = "project.lock"
_CREATE_TMP = ".project.sqlite.tmp-create"


class Project(CatalogMixin, DraftsMixin, RankingMixin, UnreadableMixin, MetaMixin):
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
        #: Opened on a read-only medium: reads and exports work, every change is refused.
        self.read_only = False

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
    def open(cls, root: str | Path, *, read_only: bool | None = None) -> Project:
        """Open an existing project (and remove temp files a crash may have left).

        Parameters
        ----------
        root : str or Path
            The project folder.
        read_only : bool, optional
            Open without writing anything (not even a lock or a journal): reads, export and
            reports work, changes raise :class:`ProjectError`. Default: when the project's
            state folder cannot be written (a read-only medium).

        Raises
        ------
        ProjectError
            Not a project, the database is not a valid or intact SQLite file, its schema
            is newer than this code, or its medium is full, failing or locked.
        """
        project = cls(root)
        if not project.root.is_dir():
            raise ProjectError(project.root, "folder does not exist")
        if not cls.is_project(project.root):
            raise ProjectError(project.root, "is not a napari-crack-al project "
                                             f"(no {STATE_DIRNAME}/{DB_FILENAME})")
        if read_only is None:
            read_only = _database.medium_is_read_only(project.state_dir)
        project.read_only = bool(read_only)
        _database.check_database(project.db_path, read_only=project.read_only)
        if project.read_only:
            logger.info("opened %s read-only", project.root)
        else:
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
        from ..active.probability import PROBABILITY_DIR

        return remove_temp_files((self.annotations_dir, self.suggestions_dir, self.drafts_dir,
                                  self.drafts_dir / "base", self.state_dir, self.models_dir,
                                  self.state_dir / PROBABILITY_DIR))

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
    def _refuse_if_read_only(self) -> None:
        if self.read_only:
            raise ProjectError(self.root, "the project is open read-only (its medium is "
                                          "read-only); nothing can be changed")

    def _connect(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return _database.connect(self.db_path, read_only=self.read_only)

    def _transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """One write transaction, rolled back on any error (refused when read-only)."""
        return _database.transaction(self.db_path, read_only=self.read_only)

    def integrity_check(self) -> list[str]:
        """Run SQLite's full ``PRAGMA integrity_check``; return the problems (empty when intact)."""
        return _database.integrity_check(self.db_path)

    # ------------------------------------------------------------------ writing masks
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

    @staticmethod
    def _unlink(path: Path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ProjectError(path, f"cannot delete the file ({exc.strerror or exc})") from exc
        fsync_dir(path.parent)

    def accept(self, name: str, mask: np.ndarray, *, seconds: float = 0.0,
               base: DraftBase | None = None) -> ImageRecord:
        """Accept ``mask`` as the annotation of ``name``.

        Order: the mask file is written atomically first, then the record is
        committed in one transaction (status annotated, time accumulated, edit
        fraction and missed / false crack length against the suggestion the mask was
        edited from: the draft's base when there is one, else the current suggestion),
        then the draft is removed. A
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
        base : DraftBase, optional
            What the annotator started from, when no draft records it (the suggestion
            shown when the image was loaded); else the current suggestion is used.

        Returns
        -------
        ImageRecord
            The updated record.

        Raises
        ------
        MaskError
            The mask is not 2-D, not bool/int, or its shape differs from the image.
        """
        from ..metrics import effort_lengths  # skimage: imported on the first accept only

        seconds = _check_seconds(seconds)
        path = self.annotation_path(name)
        arr = self._checked_mask(name, mask, path)
        self._refuse_if_read_only()
        with self._lock:
            suggestion, suggestion_version = self._suggestion_for_edit_fraction(name, arr.shape,
                                                                                base)
            fraction = edit_fraction(arr, suggestion)
            missed, false = effort_lengths(suggestion, arr)
            write_mask(path, arr)
            with self._transaction() as conn:
                conn.execute(
                    "UPDATE images SET status = ?, annotation_seconds = annotation_seconds + ?, "
                    "edit_fraction = ?, missed_length = ?, false_length = ?, "
                    "suggestion_model_version = ?, draft_base_version = NULL, updated_at = ? "
                    "WHERE name = ?",
                    (ImageStatus.ANNOTATED.value, seconds, fraction, float(missed),
                     float(false), suggestion_version, time.time(), name))
                record = self._require(conn, name)
            self._unlink(self.draft_path(name, check=False))
            self._unlink(self.draft_base_path(name, check=False))
        logger.info("accepted %s (edit fraction %.3f, %.1f s)", name, fraction, seconds)
        return record

    def _suggestion_for_edit_fraction(self, name: str, shape: tuple[int, ...],
                                      given: DraftBase | None = None,
                                      ) -> tuple[np.ndarray | None, str | None]:
        """The suggestion the accepted mask was edited from: the draft's base when one is
        recorded (a newer suggestion may have been written since), else ``given``, else
        the current one."""
        base = self.draft_base(name) if self.has_draft(name) else None
        base = given if base is None else base
        if base is not None:
            if base.mask is None or base.mask.shape == tuple(shape):
                return base.mask, base.version
            logger.warning("ignoring the draft base of %s of shape %s (mask %s)", name,
                           base.mask.shape, shape)
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
        self._refuse_if_read_only()
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


def _check_seconds(seconds: float) -> float:
    s = float(seconds)
    if not math.isfinite(s) or s < 0:
        raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
    return s
