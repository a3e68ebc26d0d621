"""Opening an image of the project: small ones at once, large ones in a thread worker.

:class:`SessionLoadingMixin` holds :meth:`load`. Reading a range image, normalising it as
the model sees it and reading its masks and probability cost time in proportion to the
image (seconds for 8192 x 4096 pixels), so an image with more than
:attr:`~SessionLoadingMixin.background_pixels` pixels (from its file header) is prepared by
:func:`~napari_crack_al.core.open_image.prepare_image` in the session's disk queue
(:mod:`.session_io`) while the viewer stays usable; the finished arrays are then handed to
the layers on the UI thread. While it loads, :attr:`~SessionLoadingMixin.loading_name`
names it (the Annotate panel says so). A newer :meth:`load` supersedes an older one: the
last one wins and a stale result never replaces a newer image's layers. The mask on screen
is saved before the new image's masks are read (in the queue, in order), and the annotator
keeps painting the old image until the new one is shown: edits made meanwhile are saved
before the layers switch, and an edit of the image being reloaded wins over the reload.

It is mixed into :class:`~napari_crack_al.widgets.session.AnnotationSession`; this module
uses napari's thread workers but no Qt widgets.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from ..core.open_image import LARGE_IMAGE_PIXELS, UnreadableImageError, is_large, prepare_image
from . import notify
from .session_io import READ, IOTask

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    import numpy as np

    from ..core.open_image import PreparedImage
    from ..core.project import DraftBase, Project
    from .session_io import SessionIO

__all__ = ["SessionLoadingMixin"]

logger = logging.getLogger(__name__)


class SessionLoadingMixin:
    """Opening images of an :class:`AnnotationSession` (mixed into it)."""

    #: Images with more pixels than this (file header) are opened, and their masks saved,
    #: in a worker thread; smaller ones at once (tests set 0 to take the threaded path).
    background_pixels: int = LARGE_IMAGE_PIXELS

    # provided by AnnotationSession and its other mixins
    project: Project | None
    current_name: str | None
    mask_source: str | None
    labels_layer: Any
    display_profile: str
    image_loaded: Any  # psygnal signal
    loading_changed: Any  # psygnal signal
    queue_changed: Any  # psygnal signal
    io: SessionIO
    _loaded_base: DraftBase | None
    _persisted: np.ndarray | None
    _painted: bool
    _edits: int
    _last_activity: float | None
    _last_autosave: float
    _loading_name: str | None
    _load_generation: int
    _require_project: Callable[[], Project]
    _show: Callable[..., None]
    _tick: Callable[[], None]
    _base_of: Callable[..., Any]
    _save_soon: Callable[[], str | None]
    _advance: Callable[[str | None], str | None]
    save_current: Callable[[], str | None]
    is_dirty: Callable[[], bool]
    start_fresh_suggestion: Callable[[], bool]

    @property
    def loading_name(self) -> str | None:
        """The image being opened in the background (None when none is)."""
        return self._loading_name

    def load(self, name: str, *, force: bool = False) -> None:
        """Show image ``name`` with its mask (draft, else annotation, else suggestion, else empty).

        The mask of the image shown before is saved first. The image layer goes
        below, the mask layer on top, selected, in paint mode with label 1; the
        crack probability of the last model, when stored, goes between them
        (see :attr:`overlay_visible`). A large image (more than :attr:`background_pixels`)
        is read in a worker thread: this returns at once, :attr:`loading_name` names it
        until its layers are shown (``image_loaded`` is emitted then), and a problem
        becomes a notification instead of an exception.

        Parameters
        ----------
        name : str
            The image.
        force : bool
            Load again even when ``name`` is already shown (after a new suggestion
            was written for it; the edits are saved first, so a draft wins).

        Raises
        ------
        InputError
            The image or its mask cannot be read (the current image stays shown;
            a small image only: a large one reports it as a notification).
        """
        self._load(name, force=force)

    def cancel_loading(self) -> None:
        """Forget the image being opened in the background (the image shown stays)."""
        self._load_generation += 1
        self.io.cancel_reads()
        self._set_loading(None)

    # ------------------------------------------------------------------ internals
    def _load(self, name: str, *, force: bool = False, advancing: bool = False) -> bool:
        """Load ``name``; returns True when it was shown at once, False when it is on its way.

        ``advancing``: the queue moves on (accept, skip); when the image cannot be read
        in the background, the next waiting image is opened instead.
        """
        project = self._require_project()
        if not force and name == self._loading_name:
            return False
        if not force and name == self.current_name and self.labels_layer is not None:
            self.cancel_loading()  # back to the image shown: a load on its way is dropped
            return True
        self.cancel_loading()
        path = project.image_path(name)
        if not self.io.busy and not is_large(path, self.background_pixels):
            self._load_now(project, name, force)
            return True
        self._save_soon()  # in the queue, before the new image's masks are read
        generation, edits, profile = self._load_generation, self._edits, self.display_profile

        def run() -> PreparedImage | None:  # worker thread
            return prepare_image(project, name, profile,
                                 cancelled=lambda: generation != self._load_generation)

        self._set_loading(name)
        self.io.submit(IOTask(READ, run, lambda task: self._loaded(task, name, generation, edits,
                                                                   advancing),
                              label=f"Opening {name}"))
        return False

    def _load_now(self, project: Project, name: str, force: bool) -> None:
        """Read ``name`` on this thread and show it (small images)."""
        if force and name == self.current_name and self.labels_layer is not None:
            self.save_current()
        try:
            prepared = prepare_image(project, name, self.display_profile)
        except UnreadableImageError as exc:  # shown as "unreadable" in the queue, passed by "next"
            project.mark_unreadable(name, exc.problem)
            self.queue_changed.emit()
            raise
        assert prepared is not None
        self.save_current()
        self._apply(prepared)

    def _loaded(self, task: IOTask, name: str, generation: int, edits: int,
                advancing: bool) -> None:
        """A background load ended (UI thread): show it, unless it was superseded."""
        if task.cancelled or generation != self._load_generation or self.project is None:
            return
        self._set_loading(None)
        if task.error is not None:
            self._load_failed(name, task.error, advancing)
            return
        prepared = task.value
        if prepared is None:
            return
        if prepared.name == self.current_name and self._edits != edits:
            logger.info("kept the edits of %s instead of reloading it", prepared.name)
            return
        with notify.reporting(f"Open image {name!r}"):
            if self.is_dirty():  # painted while the image loaded: saved before the switch
                self._save_soon()
            if self.io.writing:  # a save of the mask on screen waits: switch once it is on disk
                self._set_loading(name)
                self.io.submit(IOTask(READ, lambda: prepared,
                                      lambda again: self._loaded(again, name, generation, edits,
                                                                 advancing)))
                return
            self._apply(prepared)

    def _load_failed(self, name: str, exc: BaseException, advancing: bool) -> None:
        """Report why ``name`` could not be opened; the queue moves on past it when advancing."""
        project = self.project
        if isinstance(exc, UnreadableImageError) and project is not None:
            project.mark_unreadable(name, exc.problem)  # shown as "unreadable", passed by "next"
            self.queue_changed.emit()
        if not notify.is_user_error(exc):
            logger.error("opening %s failed", name, exc_info=exc)
        notify.report(exc, f"Cannot open image {name!r}")
        if advancing and self.project is not None:
            self._advance(name)

    def _apply(self, prepared: PreparedImage) -> None:
        """Show a prepared image in the layers and make it the current one (UI thread)."""
        project = self._require_project()
        name = prepared.name
        self._tick()
        self._show(prepared)
        self.current_name = name
        self.mask_source = prepared.source
        self._loaded_base = self._base_of(name, prepared.mask, prepared.source)
        self._persisted = prepared.mask
        self._painted = False
        self._last_activity = time.monotonic()
        self._last_autosave = time.monotonic()
        project.clear_unreadable(name)  # read after all (repaired, or a passing problem)
        self.image_loaded.emit(name)
        self.start_fresh_suggestion()

    def _set_loading(self, name: str | None) -> None:
        if name != self._loading_name:
            self._loading_name = name
            self.loading_changed.emit(name)
