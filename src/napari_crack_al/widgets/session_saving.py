"""Saving the mask on screen: edits, drafts and what they started from, autosave, time.

:class:`SessionSavingMixin` knows whether the mask shown differs from what is saved,
saves it (a draft, or the annotation again for an annotated image) with the suggestion
it was edited from, autosaves while painting, and counts the annotation time of each
image (pauses capped). It is mixed into
:class:`~napari_crack_al.widgets.session.AnnotationSession`.

This module uses neither napari nor Qt widgets (a Qt timer defers the autosave when Qt
is there).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.project import DraftBase, ImageStatus
from . import notify
from .mask_state import follow_state

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from ..core.project import Project

__all__ = ["IDLE_CAP_SECONDS", "SessionSavingMixin"]

logger = logging.getLogger(__name__)

#: Longest pause (seconds) counted as annotation time; longer pauses count as this much.
IDLE_CAP_SECONDS = 120.0


class SessionSavingMixin:
    """Saving and timing the mask of an :class:`AnnotationSession` (mixed into it)."""

    # provided by AnnotationSession
    project: Project | None
    current_name: str | None
    mask_source: str | None
    labels_layer: Any
    autosave_seconds: float
    queue_changed: Any  # psygnal signal
    _painted: bool
    _persisted: np.ndarray | None
    _loaded_base: DraftBase | None
    _seconds: dict[str, float]
    _last_activity: float | None
    _last_autosave: float
    _replacing: bool
    _require_project: Callable[[], Project]
    _require_image: Callable[[], str]

    def mark_edited(self) -> None:
        """Count an edit made outside napari's brush (an undoable ``data_setitem``)."""
        self._on_paint()

    @property
    def loaded_base(self) -> DraftBase | None:
        """What the mask on screen started from when its image was loaded (or reset)."""
        return self._loaded_base

    def current_mask(self) -> np.ndarray | None:
        """The mask being edited as bool (True = crack), or None."""
        if self.labels_layer is None:
            return None
        return np.asarray(self.labels_layer.data) > 0

    def touched(self) -> bool:
        """Whether the annotator edited the current mask since it was loaded (saved or not)."""
        return self._painted or self.is_dirty()

    def is_dirty(self) -> bool:
        """Whether the mask differs from what is saved for the current image."""
        mask = self.current_mask()
        if mask is None or self._persisted is None:
            return False
        return mask.shape != self._persisted.shape or not np.array_equal(mask, self._persisted)

    def annotation_seconds(self, name: str | None = None) -> float:
        """Annotation time counted for ``name`` (default: current image) since its last accept."""
        name = self.current_name if name is None else name
        if name is None:
            return 0.0
        if name == self.current_name:
            self._tick()
        return self._seconds.get(name, 0.0)

    def save_current(self) -> str | None:
        """Save the edits of the current image.

        An annotated image that was edited is accepted again (its annotation file
        is rewritten); any other edited image gets a draft.

        Returns
        -------
        str or None
            ``"annotation"``, ``"draft"``, or None when there was nothing to save.
        """
        if self.project is None or self.current_name is None or not self.is_dirty():
            return None
        name = self.current_name
        mask = self.current_mask()
        assert mask is not None
        if self.project.record(name).status == ImageStatus.ANNOTATED:
            self.project.accept(name, mask, seconds=self._take_seconds(name), base=self._loaded_base)
            self._discard_draft(name)
            what = "annotation"
            self.queue_changed.emit()
        else:
            self.project.save_draft(name, mask, base=self._loaded_base)
            what = "draft"
        self._persisted = mask.copy()
        self.mask_source = what
        follow_state(self)
        logger.debug("saved %s of %s", what, name)
        return what

    def restart_from_suggestion(self, suggestion: np.ndarray, version: str | None) -> None:
        """The mask shown was reset to the current suggestion: the draft (and what it was
        edited from) is dropped and the mask counts as unedited, started from ``version``.
        An annotated image keeps its annotation until the reset mask is saved."""
        name = self._require_image()
        project = self._require_project()
        if project.record(name).status == ImageStatus.ANNOTATED:
            return
        self._discard_draft(name)
        self._loaded_base = DraftBase(np.asarray(suggestion, dtype=bool).copy(), version)
        self._persisted = np.asarray(suggestion, dtype=bool).copy()
        self._painted = False
        self.mask_source = "suggestion"
        follow_state(self)

    def _base_of(self, name: str, mask: np.ndarray, source: str) -> DraftBase | None:
        """What the annotator starts from when ``name`` is loaded: the suggestion shown (with
        its model version), an empty mask, or None for a draft (it records its own base) and
        an annotation."""
        if source == "suggestion":
            version = self._require_project().record(name).suggestion_file_version
            return DraftBase(mask.copy(), version)
        return DraftBase(None, None) if source == "empty" else None

    def _discard_draft(self, name: str) -> None:
        assert self.project is not None
        self.project.discard_draft(name)

    def _tick(self) -> None:
        """Add the time since the last activity (capped) to the current image."""
        now = time.monotonic()
        if self.current_name is not None and self._last_activity is not None:
            delta = min(max(0.0, now - self._last_activity), IDLE_CAP_SECONDS)
            self._seconds[self.current_name] = self._seconds.get(self.current_name, 0.0) + delta
        self._last_activity = now

    def _take_seconds(self, name: str) -> float:
        if name == self.current_name:
            self._tick()
        return float(self._seconds.pop(name, 0.0))

    def _on_paint(self, event: Any = None) -> None:
        self._painted = True
        self._tick()
        follow_state(self)
        if self.autosave_seconds > 0 and time.monotonic() - self._last_autosave >= self.autosave_seconds:
            self._last_autosave = time.monotonic()
            # napari emits `paint` before a single (non-stroke) edit is written: save a moment later
            try:
                from qtpy.QtCore import QTimer
            except Exception:  # noqa: BLE001 - no Qt: save now
                self._autosave()
            else:
                QTimer.singleShot(0, self._autosave)

    def _autosave(self) -> None:
        self._save_reporting("Autosave")

    def _on_layer_removed(self, event: Any) -> None:
        if not self._replacing and getattr(event, "value", None) is self.labels_layer:
            self._save_reporting("Saving the mask of the removed layer")

    def _save_reporting(self, action: str) -> None:
        try:
            self.save_current()
        except Exception as exc:  # noqa: BLE001
            if not notify.is_user_error(exc):
                raise
            notify.report(exc, action)
