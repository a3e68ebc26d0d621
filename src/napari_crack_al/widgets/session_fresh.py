"""A fresh suggestion for the image on screen when the last round did not make one.

A round scores a bounded set of images for a bounded time, so an image deep in a large
queue may open with an older model's suggestion (or none). :class:`FreshSuggestionMixin`
then computes its suggestion with the current model in a thread worker
(:func:`~napari_crack_al.core.active.on_demand.iter_fresh_suggestion`) and shows it as
soon as it is stored — unless the annotator has started painting, whose work always
wins. It is mixed into :class:`~napari_crack_al.widgets.session.AnnotationSession`.

This module uses napari's thread workers but no Qt widgets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import notify

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from ..core.project import Project
    from .worker import BackgroundJob, JobOutcome

__all__ = ["FreshSuggestionMixin"]



class FreshSuggestionMixin:
    """The on-demand suggestion of an :class:`AnnotationSession` (mixed into it)."""

    # provided by AnnotationSession
    project: Project | None
    current_name: str | None
    mask_source: str | None
    queue_changed: Any  # psygnal signal
    touched: Callable[[], bool]
    load: Callable[..., None]
    auto_first_suggestions: bool  # background suggestions run by themselves (tests: off)
    _fresh_job: BackgroundJob | None

    def start_fresh_suggestion(self) -> bool:
        """Suggest the image on screen with the current model, when its suggestion is stale.

        Returns
        -------
        bool
            Whether a job was started (not without a model, for an image with a draft or
            an up-to-date suggestion, or while a job for this image runs).
        """
        from ..core.active.on_demand import iter_fresh_suggestion, needs_fresh_suggestion
        from .worker import BackgroundJob

        project, name = self.project, self.current_name
        if project is None or name is None or not self.auto_first_suggestions:
            return False
        job = self._fresh_job
        if job is not None and job.running:
            if getattr(job, "image_name", None) == name:
                return False
            job.cancel()
        if not needs_fresh_suggestion(project, name):
            return False
        job = BackgroundJob(lambda: iter_fresh_suggestion(project, name),
                            on_event=self._on_fresh_event, on_done=self._on_fresh_done,
                            description=f"Suggesting {name}")
        job.image_name = name  # type: ignore[attr-defined]
        self._fresh_job = job
        job.start()
        return True

    def stop_fresh_suggestion(self) -> None:
        """Cancel the on-demand suggestion job, if one runs (closing the project)."""
        job = self._fresh_job
        if job is not None and job.running:
            job.cancel()

    @property
    def fresh_suggestion_running(self) -> bool:
        """Whether the on-demand suggestion job is running."""
        return self._fresh_job is not None and self._fresh_job.running

    def _on_fresh_event(self, event: Any) -> None:
        from ..core.active.on_demand import FreshSuggestion

        if not isinstance(event, FreshSuggestion) or event.name != self.current_name:
            return
        if self.mask_source in ("empty", "suggestion") and not self.touched():
            with notify.reporting(f"Show the suggestion of {event.name!r}"):
                self.load(event.name, force=True)
        self.queue_changed.emit()

    def _on_fresh_done(self, outcome: JobOutcome) -> None:
        notify.report_job_failure(outcome, "Suggestion of the image on screen")
