"""The image catalogue of a project: which images it has, their records, files and masks.

:class:`CatalogMixin` is the read side of :class:`~napari_crack_al.core.project.store.Project`:
registering images added to ``images/``, the records in queue order, the paths of an
image and of its annotation, suggestion and draft, and reading those masks. It relies
on the folders and the ``_connect`` / ``_transaction`` methods that ``Project`` defines.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ImageReadError, ProjectError
from ..io.mask_io import read_mask
from ._files import image_shape
from .records import ImageRecord, ImageStatus, UnknownImageError, safe_component

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Callable

__all__ = ["CatalogMixin", "MASK_SUFFIX"]

logger = logging.getLogger(__name__)

MASK_SUFFIX = ".png"
_COLUMNS = ("name, filename, status, queue_position, score, score_model_version, "
            "suggestion_model_version, annotation_seconds, edit_fraction, updated_at, "
            "suggestion_file_version, missed_length, false_length")
_QUEUE = "ORDER BY queue_position, name"


def _row_to_record(row: Sequence[Any]) -> ImageRecord:
    return ImageRecord(name=row[0], filename=row[1], status=ImageStatus(row[2]),
                       queue_position=int(row[3]), score=row[4], score_model_version=row[5],
                       suggestion_model_version=row[6], annotation_seconds=float(row[7]),
                       edit_fraction=row[8], updated_at=float(row[9]),
                       suggestion_file_version=row[10], missed_length=row[11],
                       false_length=row[12])


class CatalogMixin:
    """Images, records, paths and mask reading of a :class:`Project` (mixed into it)."""

    # provided by Project
    root: Path
    images_dir: Path
    annotations_dir: Path
    suggestions_dir: Path
    drafts_dir: Path
    _connect: Callable[[], contextlib.AbstractContextManager[sqlite3.Connection]]
    _transaction: Callable[[], contextlib.AbstractContextManager[sqlite3.Connection]]

    # ------------------------------------------------------------------ lookups
    def _list_images(self) -> list[Path]:
        from ..io.range_io import list_images

        try:
            return list_images(self.images_dir)
        except ImageReadError as exc:
            raise ProjectError(exc.path, exc.problem) from exc

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
        filename = safe_component(self.record(name).filename, where=self.db_path, what="file name")
        return self.images_dir / filename

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
        return self.annotations_dir / f"{safe_component(name, where=self.db_path)}{MASK_SUFFIX}"

    def suggestion_path(self, name: str, *, check: bool = True) -> Path:
        """``.crack-al/suggestions/NAME.png``."""
        if check:
            self.record(name)
        return self.suggestions_dir / f"{safe_component(name, where=self.db_path)}{MASK_SUFFIX}"

    def draft_path(self, name: str, *, check: bool = True) -> Path:
        """``.crack-al/drafts/NAME.png``."""
        if check:
            self.record(name)
        return self.drafts_dir / f"{safe_component(name, where=self.db_path)}{MASK_SUFFIX}"

    # ------------------------------------------------------------------ reading masks
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
