"""First suggestions of a project that has no model yet: the detector, in a thread worker.

:class:`FirstSuggestionsMixin` starts :func:`~napari_crack_al.core.detector.iter_builtin_suggestions`
when a project without a model opens (the image on screen first, then the queue), and
shows the suggestion of the current image as soon as it is stored — unless the
annotator has already started painting, whose work always wins. It is mixed into
:class:`~napari_crack_al.widgets.session.AnnotationSession`.

This module uses napari's thread workers but no Qt widgets.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from . import notify

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from ..core.project import Project
    from .worker import BackgroundJob, JobOutcome

__all__ = ["FirstSuggestionsMixin"]

logger = logging.getLogger(__name__)


class FirstSuggestionsMixin:
    """The detector's first suggestions of an :class:`AnnotationSession` (mixed into it)."""

    # provided by AnnotationSession
    project: Project | None
    current_name: str | None
    mask_source: str | None
    queue_changed: Any  # psygnal signal
    first_suggestions_finished: Any  # psygnal signal: the detector job ended
    touched: Callable[[], bool]
    load: Callable[..., None]
    _first_job: BackgroundJob | None

    def start_first_suggestions(self) -> bool:
        """Start the detector on the images that have nothing to start from (no model yet).

        Returns
        -------
        bool
            Whether a job was started (not when the project has a model, when every
            image has a mask, or when a job already runs).
        """
        from ..core.detector import iter_builtin_suggestions, needs_builtin_suggestion
        from .worker import BackgroundJob

        project = self.project
        if project is None or project.current_model() is not None:
            return False
        if self._first_job is not None and self._first_job.running:
            return False
        order = [r.name for r in project.records()]
        if self.current_name in order:
            order.remove(self.current_name)
            order.insert(0, self.current_name)
        order = [n for n in order if needs_builtin_suggestion(project, n)]
        if not order:
            return False
        job = BackgroundJob(lambda: iter_builtin_suggestions(project, order),
                            on_event=self._on_first_event, on_done=self._on_first_done,
                            description="First suggestions (no model yet)")
        self._first_job = job
        job.start()
        return True

    def stop_first_suggestions(self) -> None:
        """Cancel the detector job, if one runs (closing the project, a model arrived)."""
        job = self._first_job
        if job is not None and job.running:
            job.cancel()

    @property
    def first_suggestions_running(self) -> bool:
        """Whether the detector job is running."""
        return self._first_job is not None and self._first_job.running

    def _on_first_event(self, event: Any) -> None:
        from ..core.detector import SuggestionReady
        from ..core.events import ProgressEvent

        job = self._first_job
        if isinstance(event, ProgressEvent) and job is not None:
            job.progress(event.done, event.total, "First suggestions (no model yet)")
        if not isinstance(event, SuggestionReady) or event.name != self.current_name:
            return
        if self.mask_source == "empty" and not self.touched():
            with notify.reporting(f"Show the suggestion of {event.name!r}"):
                self.load(event.name, force=True)
            self.queue_changed.emit()

    def _on_first_done(self, outcome: JobOutcome) -> None:
        if outcome.error is not None and not outcome.cancelled:
            if not notify.is_user_error(outcome.error):
                logger.error("first suggestions failed", exc_info=outcome.error)
            notify.report(outcome.error, "First suggestions")
        if self.project is not None:
            self.queue_changed.emit()
        self.first_suggestions_finished.emit()
