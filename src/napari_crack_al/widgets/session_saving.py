"""Saving the mask on screen: edits, drafts and what they started from, autosave, time.

:class:`SessionSavingMixin` knows whether the mask shown differs from what is saved,
saves it (a draft, or the annotation again for an annotated image) with the suggestion
it was edited from, autosaves while painting, and counts the annotation time of each
image (pauses capped). It is mixed into
:class:`~napari_crack_al.widgets.session.AnnotationSession`.

Encoding and writing the mask of a large image costs time in proportion to it (about
0.2 s for 8192 x 4096 pixels, more for an accept, which also measures the edits), so the
saves of the annotator's moves (switching image, autosave, accept, skip, a removed mask
layer) hand a copy of the mask to the session's disk queue (:mod:`.session_io`) when the
mask is large or the queue is busy: the writes land in order, atomically, before the next
image's masks are read; a failed write keeps the image and its edits on screen (the next
image is not opened) and says why. :meth:`SessionSavingMixin.save_current` still saves at
once (its caller reads the file next); it and closing wait for the queued writes first.

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
from .session_io import WRITE, IOTask

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from ..core.project import Project
    from .session_io import SessionIO

__all__ = ["IDLE_CAP_SECONDS", "SessionSavingMixin", "same_mask"]

logger = logging.getLogger(__name__)

#: Longest pause (seconds) counted as annotation time; longer pauses count as this much.
IDLE_CAP_SECONDS = 120.0


#: Rows compared at a time by :func:`same_mask` (no full-size temporary array).
_COMPARE_ROWS = 256


def same_mask(data: np.ndarray, mask: np.ndarray) -> bool:
    """Whether the labels ``data`` (> 0 is crack) hold exactly the bool ``mask``.

    Compared a block of rows at a time, bytes first (uint8 labels of 0 and 1 against the
    bool mask's bytes), so a clean 8192 x 4096 mask costs a few milliseconds and an edited
    one stops at the first block that differs; a block whose bytes differ is compared as
    crack / no crack (other label values count as crack).
    """
    data = np.asarray(data)
    mask = np.asarray(mask)
    if data.shape != mask.shape:
        return False
    if data.ndim != 2 or data.dtype != np.uint8 or mask.dtype != bool:
        return bool(np.array_equal(data > 0, mask > 0))
    raw = mask.view(np.uint8)
    for r0 in range(0, data.shape[0], _COMPARE_ROWS):
        block = data[r0:r0 + _COMPARE_ROWS]
        if not np.array_equal(block, raw[r0:r0 + _COMPARE_ROWS]) \
                and not np.array_equal(block > 0, mask[r0:r0 + _COMPARE_ROWS]):
            return False
    return True


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
    _closing: bool
    _edits: int
    background_pixels: int
    io: SessionIO
    _require_project: Callable[[], Project]
    _require_image: Callable[[], str]
    cancel_loading: Callable[[], None]

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
        if self.labels_layer is None or self._persisted is None:
            return False
        return not same_mask(self.labels_layer.data, self._persisted)

    def annotation_seconds(self, name: str | None = None) -> float:
        """Annotation time counted for ``name`` (default: current image) since its last accept."""
        name = self.current_name if name is None else name
        if name is None:
            return 0.0
        if name == self.current_name:
            self._tick()
        return self._seconds.get(name, 0.0)

    def save_current(self) -> str | None:
        """Save the edits of the current image now: they are on disk when this returns.

        An annotated image that was edited is accepted again (its annotation file
        is rewritten); any other edited image gets a draft. Writes still queued (large
        masks) are finished first, on this thread.

        Returns
        -------
        str or None
            ``"annotation"``, ``"draft"``, or None when there was nothing to save.
        """
        if self.project is None or self.current_name is None:
            return None
        self.io.finish_writes()
        if not self.is_dirty():
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

    def _in_background(self, pixels: int) -> bool:
        """Whether disk work on a mask of ``pixels`` goes to the queue (large, or queue busy)."""
        return self.io.busy or pixels > self.background_pixels

    def _save_soon(self) -> str | None:
        """Save the edits of the current image: at once when the mask is small and the disk
        queue idle, else a copy of the mask in the queue (see :meth:`save_current`).

        Returns
        -------
        str or None
            ``"annotation"``, ``"draft"``, or None when there was nothing to save.
        """
        if self.project is None or self.current_name is None or not self.is_dirty():
            return None
        mask = self.current_mask()
        assert mask is not None
        if not self._in_background(mask.size):
            return self.save_current()
        project, name, base = self.project, self.current_name, self._loaded_base
        if project.record(name).status != ImageStatus.ANNOTATED:  # else accepted again
            self._queue_write(name, mask, "draft",
                              lambda: project.save_draft(name, mask, base=base))
            return "draft"
        self._queue_accept(name, mask)
        return "annotation"

    def _queue_accept(self, name: str, mask: np.ndarray, *,
                      on_saved: Callable[[], Any] | None = None) -> None:
        """Queue the accept of ``mask`` as the annotation of ``name`` (the image on screen);
        ``on_saved`` is called on the UI thread once it is written."""
        project = self._require_project()
        seconds = self._take_seconds(name)
        run = _accepting(project, name, mask, seconds, self._loaded_base)
        self._queue_write(name, mask, "annotation", run, seconds=seconds, on_saved=on_saved)

    def _queue_write(self, name: str, mask: np.ndarray, what: str, run: Callable[[], Any], *,
                     seconds: float = 0.0, on_saved: Callable[[], Any] | None = None) -> None:
        """Queue the write of ``mask`` (``what``: "draft" or "annotation") of the current
        image; it counts as saved at once, and as edited again if the write fails."""
        previous = (self._persisted, self.mask_source)
        self._persisted = mask
        self.mask_source = what
        follow_state(self)
        project = self.project
        self.io.submit(IOTask(WRITE, run, lambda task: self._written(
            task, project, name, mask, what, previous, seconds, on_saved), label=f"Saving {name}"))

    def _written(self, task: IOTask, project: Project | None, name: str, mask: np.ndarray,
                 what: str, previous: tuple[np.ndarray | None, str | None], seconds: float,
                 on_saved: Callable[[], Any] | None) -> None:
        """A queued write ended (UI thread)."""
        if task.error is None:
            logger.debug("saved %s of %s", what, name)
            if self.project is project and project is not None and not self._closing:
                if what == "annotation":
                    self.queue_changed.emit()
                if on_saved is not None:
                    on_saved()
            return
        # the edits stay on screen: the image queued after the write is not opened
        self.cancel_loading()
        if seconds:
            self._seconds[name] = self._seconds.get(name, 0.0) + seconds
        if name == self.current_name and self._persisted is mask:
            self._persisted, self.mask_source = previous
            follow_state(self)
        if not notify.is_user_error(task.error):
            logger.error("saving the %s of %s failed", what, name, exc_info=task.error)
        notify.report(task.error, f"Saving the {what} of {name!r}")

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
        """Delete the draft of ``name``; after the queued writes when there are (in order)."""
        project = self.project
        assert project is not None
        if self.io.writing:
            self.io.submit(IOTask(WRITE, lambda: project.discard_draft(name), _report_failure,
                                  label=f"Discarding the draft of {name}"))
        else:
            project.discard_draft(name)

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
        self._edits += 1
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
            self._save_soon()
        except Exception as exc:  # noqa: BLE001
            if not notify.is_user_error(exc):
                raise
            notify.report(exc, action)


def _accepting(project: Project, name: str, mask: np.ndarray, seconds: float,
               base: DraftBase | None) -> Callable[[], None]:
    """The queued work of accepting ``mask``: the annotation is written, the draft removed."""

    def run() -> None:
        project.accept(name, mask, seconds=seconds, base=base)
        project.discard_draft(name)

    return run


def _report_failure(task: IOTask) -> None:
    if task.error is not None:
        notify.report(task.error, task.label)
