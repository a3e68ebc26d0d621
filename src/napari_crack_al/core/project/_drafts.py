"""Drafts of a project: unaccepted masks, and the suggestion each was edited from.

A draft (``.crack-al/drafts/NAME.png``) is the annotator's unaccepted work, saved as
they go. Its first save also keeps the suggestion it was edited from: a copy of the
suggestion file (``.crack-al/drafts/base/NAME.png``) and that suggestion's model
version (the record's ``draft_base_version``; ``""`` when the draft started from no
suggestion). A retrain may write a newer suggestion meanwhile; accepting the draft
still records the model version the annotator started from and measures the edit
fraction against that suggestion. :class:`DraftsMixin` is mixed into
:class:`~napari_crack_al.core.project.store.Project`.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING

import numpy as np

from ..errors import MaskError
from ..io.mask_io import read_mask, write_mask
from ._catalog import MASK_SUFFIX
from .records import safe_component

if TYPE_CHECKING:
    import contextlib
    import threading
    from collections.abc import Callable
    from pathlib import Path

__all__ = ["DraftsMixin", "DraftBase"]

logger = logging.getLogger(__name__)


class DraftBase:
    """The suggestion a draft was edited from.

    Attributes
    ----------
    mask : ndarray of bool or None
        The suggestion (None: the draft started from an empty mask).
    version : str or None
        Its model version (None with ``mask=None``).
    """

    __slots__ = ("mask", "version")

    def __init__(self, mask: np.ndarray | None, version: str | None) -> None:
        self.mask = mask
        self.version = version


class DraftsMixin:
    """Drafts and their base suggestions (mixed into :class:`Project`)."""

    # provided by Project
    drafts_dir: Path
    db_path: Path
    _lock: threading.RLock
    _connect: Callable[[], contextlib.AbstractContextManager[sqlite3.Connection]]
    _transaction: Callable[[], contextlib.AbstractContextManager[sqlite3.Connection]]
    _checked_mask: Callable[..., np.ndarray]
    _refuse_if_read_only: Callable[[], None]
    _unlink: Callable[[Path], None]
    draft_path: Callable[..., Path]
    suggestion_path: Callable[..., Path]
    record: Callable[..., object]

    def draft_base_path(self, name: str, *, check: bool = True) -> Path:
        """``.crack-al/drafts/base/NAME.png``: the suggestion the draft was edited from."""
        if check:
            self.record(name)
        return self.drafts_dir / "base" / f"{safe_component(name, where=self.db_path)}{MASK_SUFFIX}"

    def save_draft(self, name: str, mask: np.ndarray, *, base: DraftBase | None = None) -> None:
        """Save an unaccepted mask (autosave); it takes priority in :meth:`mask_for_editing`.

        Parameters
        ----------
        name : str
            Image name.
        mask : ndarray
            The unaccepted mask (> 0 is crack).
        base : DraftBase, optional
            What the annotator started from (the suggestion shown when the image was
            loaded). The first save of a draft keeps it, or when not given the current
            suggestion, as the draft's base (:meth:`draft_base`); later saves keep that.
        """
        path = self.draft_path(name)
        arr = self._checked_mask(name, mask, path)
        self._refuse_if_read_only()
        with self._lock:
            if not path.is_file():
                self._keep_draft_base(name, base)
            write_mask(path, arr)

    def _keep_draft_base(self, name: str, given: DraftBase | None) -> None:
        """Keep the base of a new draft: its mask beside the draft, its version in the record."""
        mask, version = (given.mask, given.version) if given is not None \
            else self._current_suggestion(name)
        base = self.draft_base_path(name, check=False)
        if mask is not None and version:
            base.parent.mkdir(exist_ok=True)
            write_mask(base, mask)
        else:
            version = ""
            self._unlink(base)
        with self._transaction() as conn:
            conn.execute("UPDATE images SET draft_base_version = ? WHERE name = ?", (version, name))

    def _current_suggestion(self, name: str) -> tuple[np.ndarray | None, str | None]:
        """The suggestion file of ``name`` and its version, (None, None) when none is readable."""
        path = self.suggestion_path(name, check=False)
        if not path.is_file():
            return None, None
        try:
            mask = read_mask(path)
        except MaskError as exc:
            logger.warning("the draft of %s starts from no suggestion: %s", name, exc)
            return None, None
        return mask, getattr(self.record(name), "suggestion_file_version", None)

    def draft_base_version(self, name: str) -> str | None:
        """The model version the draft of ``name`` was edited from (``""``: from no
        suggestion; None: no draft, or one saved by an older version of the plugin)."""
        with self._connect() as conn:
            row = conn.execute("SELECT draft_base_version FROM images WHERE name = ?",
                               (name,)).fetchone()
        return None if row is None else row[0]

    def draft_base(self, name: str) -> DraftBase | None:
        """The suggestion the draft of ``name`` was edited from; None when none was recorded
        (no draft, or a draft saved by an older version of the plugin)."""
        version = self.draft_base_version(name)
        if version is None:
            return None
        if version == "":
            return DraftBase(None, None)
        base = self.draft_base_path(name)
        try:
            return DraftBase(read_mask(base), version)
        except (MaskError, OSError) as exc:
            logger.warning("ignoring the draft base of %s: %s", name, exc)
            return None

    def discard_draft(self, name: str) -> None:
        """Delete the draft of ``name`` and its base, if there are."""
        path = self.draft_path(name)
        with self._lock:
            self._unlink(path)
            self._forget_draft_base(name)

    def _forget_draft_base(self, name: str) -> None:
        self._unlink(self.draft_base_path(name, check=False))
        if self.draft_base_version(name) is not None:
            with self._transaction() as conn:
                conn.execute("UPDATE images SET draft_base_version = NULL WHERE name = ?", (name,))
