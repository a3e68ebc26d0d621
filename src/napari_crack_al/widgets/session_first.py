"""First suggestions of a project that has no model yet: the detector, in a thread worker.

:class:`FirstSuggestionsMixin` starts :func:`~napari_crack_al.core.detector.iter_builtin_suggestions`
when a project without a model opens (the image on screen first, then the queue), and
shows the suggestion of the current image as soon as it is stored — unless the
annotator has already started painting, whose work always wins. After each accept
(still no model), :func:`~napari_crack_al.core.detector.iter_tune_detector` tunes the
detector on the accepted masks and re-suggests the images whose detector mask is
untouched, in the same job slot. It is mixed into
:class:`~napari_crack_al.widgets.session.AnnotationSession`.

This module uses napari's thread workers but no Qt widgets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import notify

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from ..core.project import Project
    from .worker import BackgroundJob, JobOutcome

__all__ = ["FirstSuggestionsMixin"]



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
    loading_name: str | None  # the image being opened in a worker thread
    _first_job: BackgroundJob | None
    _tune_pending: bool
    auto_first_suggestions: bool  # the detector runs by itself (tests turn it off)

    def start_first_suggestions(self) -> bool:
        """Start the detector on the images that have nothing to start from (no model yet).

        Returns
        -------
        bool
            Whether a job was started (not when the project has a model, when every
            image has a mask, or when a job already runs).
        """
        from ..core.detector import iter_builtin_suggestions, needs_builtin_suggestion

        project = self.project
        if project is None or project.current_model() is not None:
            return False
        if self._first_job is not None and self._first_job.running:
            return False
        order = [n for n in self._current_first(project) if needs_builtin_suggestion(project, n)]
        if not order:
            return False
        self._start_detector_job(lambda: iter_builtin_suggestions(project, order),
                                 "First suggestions (no model yet)")
        return True

    def start_detector_tuning(self) -> bool:
        """Tune the detector on the accepted masks and re-suggest untouched images (no model).

        Called after an accept. While a detector job runs, that job is cancelled and the
        tuning starts when it has ended.

        Returns
        -------
        bool
            Whether a job was started now.
        """
        from ..core.detector import iter_tune_detector

        project = self.project
        if project is None or not self.auto_first_suggestions \
                or project.current_model() is not None:
            return False
        if self._first_job is not None and self._first_job.running:
            self._tune_pending = True
            self._first_job.cancel()
            return False
        self._tune_pending = False
        order = self._current_first(project)
        self._start_detector_job(lambda: iter_tune_detector(project, order),
                                 "Tuning the detector on your masks")
        return True

    def _current_first(self, project: Project) -> list[str]:
        """The queue's images, the one on screen first."""
        order = [r.name for r in project.records()]
        if self.current_name in order:
            order.remove(self.current_name)
            order.insert(0, self.current_name)
        return order

    def _start_detector_job(self, run: Callable[[], Any], description: str) -> None:
        from .worker import BackgroundJob

        job = BackgroundJob(run, on_event=self._on_first_event, on_done=self._on_first_done,
                            description=description)
        self._first_job = job
        job.start()

    def stop_first_suggestions(self) -> None:
        """Cancel the detector job, if one runs (closing the project, a model arrived)."""
        self._tune_pending = False
        job = self._first_job
        if job is not None and job.running:
            job.cancel()

    @property
    def first_suggestions_running(self) -> bool:
        """Whether the detector job is running."""
        return self._first_job is not None and self._first_job.running

    def _on_first_event(self, event: Any) -> None:
        from ..core.detector import DetectorTuned, SuggestionReady
        from ..core.events import ProgressEvent

        job = self._first_job
        if isinstance(event, ProgressEvent) and job is not None:
            text = "Tuning the detector" if event.what == "tuning the detector" \
                else "First suggestions (no model yet)"
            job.progress(event.done, event.total, text)
        if isinstance(event, DetectorTuned):
            notify.info(event.calibration.describe())
        if isinstance(event, SuggestionReady) and event.name == self.loading_name:
            self.load(event.name, force=True)  # opening in a worker: read again, with it
            return
        if not isinstance(event, SuggestionReady) or event.name != self.current_name:
            return
        # an untouched detector mask (or none) is replaced; a model's never comes here
        if self.mask_source in ("empty", "suggestion") and not self.touched():
            with notify.reporting(f"Show the suggestion of {event.name!r}"):
                self.load(event.name, force=True)
            self.queue_changed.emit()

    def _on_first_done(self, outcome: JobOutcome) -> None:
        notify.report_job_failure(outcome, "First suggestions")
        if self.project is not None:
            self.queue_changed.emit()
        self.first_suggestions_finished.emit()
        if self._tune_pending and self.project is not None:
            self.start_detector_tuning()
