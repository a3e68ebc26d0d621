"""Moving through the annotation queue: accept, skip, next suggestion, retrain request.

:class:`QueueNavigationMixin` holds the annotator's moves from one image to the
next (accept & next, skip & next, open the top of a new ranking, Shift+R) and
how the next waiting image is found and loaded. With a large mask (or while the session's
disk queue is busy) the accept and the save before a move are queued writes
(:mod:`.session_saving`) and the next image opens in a worker (:mod:`.session_loading`):
the move returns at once. It is mixed into
:class:`~napari_crack_al.widgets.session.AnnotationSession`.

This module uses neither napari nor Qt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.project import ImageStatus
from . import notify
from .mask_state import follow_state

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    import numpy as np

    from ..core.project import Project

__all__ = ["QueueNavigationMixin"]


class QueueNavigationMixin:
    """The queue moves of an :class:`AnnotationSession` (mixed into it)."""

    # provided by AnnotationSession
    queue_changed: Any  # psygnal signal: statuses, scores or order changed
    retrain_requested: Any  # psygnal signal: the Train panel (if open) starts a round
    _advance_from_top: bool
    _persisted: np.ndarray | None
    _loaded_base: Any  # DraftBase | None: what the shown mask started from
    mask_source: str | None
    _require_project: Callable[[], Project]
    _require_image: Callable[[], str]
    _discard_draft: Callable[[str], None]
    _take_seconds: Callable[[str], float]
    current_mask: Callable[[], np.ndarray | None]
    save_current: Callable[[], str | None]
    _save_soon: Callable[[], str | None]
    _in_background: Callable[[int], bool]
    _queue_accept: Callable[..., None]
    _load: Callable[..., bool]
    load: Callable[..., None]
    start_detector_tuning: Callable[[], bool]

    def accept_and_next(self) -> str | None:
        """Accept the current mask as the annotation and load the next queued image.

        Returns
        -------
        str or None
            The image loaded (or being opened) next, or None when no image waits (the
            current one stays).
        """
        project = self._require_project()
        name = self._require_image()
        mask = self.current_mask()
        assert mask is not None
        if self._in_background(mask.size):  # written in the queue; the next image waits for it
            self._queue_accept(name, mask, on_saved=self.start_detector_tuning)
            return self._advance(name)
        project.accept(name, mask, seconds=self._take_seconds(name), base=self._loaded_base)
        self._discard_draft(name)
        self._persisted = mask.copy()
        self.mask_source = "annotation"  # what shows if no other image waits
        follow_state(self)
        self.queue_changed.emit()
        shown = self._advance(name)
        self.start_detector_tuning()  # no model yet: the detector learns from this mask
        return shown

    def skip_and_next(self) -> str | None:
        """Mark the current image skipped (edits kept as a draft) and load the next one.

        An image that is already annotated keeps its annotation and status.

        Returns
        -------
        str or None
            The image loaded (or being opened) next, or None when no image waits.
        """
        project = self._require_project()
        name = self._require_image()
        self._save_soon()
        if project.record(name).status != ImageStatus.ANNOTATED:
            project.skip(name, seconds=self._take_seconds(name))
            self.queue_changed.emit()
        return self._advance(name)

    def open_next_suggestion(self) -> str | None:
        """Save the current mask and open the top of the queue (the first image waiting).

        This is where a new ranking puts the most useful image (Shift+N).

        Returns
        -------
        str or None
            The image opened, or None when no image waits.
        """
        project = self._require_project()
        self._save_soon()
        self._advance_from_top = False
        name = project.next_name()
        if name is None:
            notify.info("No image waits in the queue: every image is annotated or skipped.")
            return None
        self.load(name, force=True)
        return name

    def queue_reranked(self) -> None:
        """Tell the session that a new ranking re-sorted the queue.

        The next "accept & next" or "skip" opens the top of the new queue (not the
        image after the current one), and the queue table is refreshed.
        """
        self._advance_from_top = True
        self.queue_changed.emit()

    def request_retrain(self) -> bool:
        """Ask the Train panel of this viewer to start a round (Shift+R).

        Returns
        -------
        bool
            False when no Train panel listens (a notification says how to open one).
        """
        if len(self.retrain_requested) == 0:
            notify.warning("Open the Train panel (Plugins > Crack AL > Train) to retrain the model.")
            return False
        self.retrain_requested.emit()
        return True

    def _advance(self, after: str | None) -> str | None:
        """Load the next waiting image after ``after``; unreadable ones are reported and passed
        (a large one once its worker found it unreadable: the queue then moves on from it)."""
        project = self._require_project()
        self._save_soon()
        if self._advance_from_top:  # a new ranking: its top first
            self._advance_from_top = False
            after = None
        unreadable = project.unreadable()  # marked before: passed without a new message
        tried: set[str] = set()
        name = project.next_name(after=after)
        if name is None and after is None and project.names():
            name = project.names()[0]  # nothing waits: show the first image
        while name is not None and name not in tried:
            tried.add(name)
            if name in unreadable:
                name = project.next_name(after=name)
                continue
            try:
                self._load(name, advancing=True)
                return name
            except Exception as exc:  # noqa: BLE001 - reported, then the next image is tried
                if not notify.is_user_error(exc):
                    raise
                notify.report(exc, f"Cannot open image {name!r}")  # marked unreadable by load
                name = project.next_name(after=name)
        if after is not None:
            notify.info("No image waits in the queue: every image is annotated or skipped.")
        return None
