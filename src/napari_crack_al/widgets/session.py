"""The annotation session shared by every dock widget of one napari viewer.

An :class:`AnnotationSession` owns the open :class:`~napari_crack_al.core.project.Project`,
the image being annotated and its two layers (the range image and, on top of
it, the editable crack mask). Dock widgets (project queue, annotate, train)
never talk to each other: they all call :func:`get_session` and listen to the
session's signals.

Nothing the annotator paints is lost: the mask is saved (as a draft, or as
the annotation when an annotated image is edited) whenever the annotator moves
to another image, closes the project, removes the mask layer or closes the
viewer, and every ``autosave_seconds`` while painting.

A large image is opened, and its mask saved, in a worker thread (the session's disk
queue, :mod:`.session_io`): nothing on the UI thread then reads, decodes, normalises or
encodes the image.

This module holds the session's state (project, current image); opening images is in
:mod:`.session_loading`, saving the mask and the annotation time in :mod:`.session_saving`,
layers in :mod:`.session_layers`, queue moves in :mod:`.session_queue`, one session per
viewer in :mod:`.session_registry` and the look of images and masks in :mod:`.display`
(public names re-exported here). Uses napari and psygnal, no Qt widgets.
"""

from __future__ import annotations

import logging
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from psygnal import Signal

from ..core.errors import ConfigError, ProjectError
from ..core.normalize import DEFAULT_PROFILE, NORMALIZATION_META, PROFILE_MODES
from ..core.project import DraftBase, ImageStatus, Project
from .display import (DEFAULT_BRUSH_SIZE, MASK_COLORMAP, MASK_SOURCE_WORDS, OVERLAY_NAME, display_image,
                      labels_layer_name)
from .session_first import FirstSuggestionsMixin
from .session_fresh import FreshSuggestionMixin
from .session_io import SessionIO
from .session_layers import SessionLayersMixin
from .session_loading import SessionLoadingMixin
from .session_queue import QueueNavigationMixin
from .session_saving import SessionSavingMixin
from .session_registry import register, registered, unwrap_viewer
from .trace_tools import TraceTool

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Image, Labels

    from ..core.project import ImageRecord

__all__ = [
    "AnnotationSession",
    "get_session",
    "unwrap_viewer",
    "labels_layer_name",
    "display_image",
    "DEFAULT_BRUSH_SIZE",
    "MASK_COLORMAP",
    "MASK_SOURCE_WORDS",
    "OVERLAY_NAME",
]

logger = logging.getLogger(__name__)

class AnnotationSession(SessionLoadingMixin, SessionSavingMixin, QueueNavigationMixin,
                        SessionLayersMixin, FirstSuggestionsMixin, FreshSuggestionMixin):
    """State of the annotation work in one viewer (no Qt widgets).

    Opening images (:class:`~.session_loading.SessionLoadingMixin`), saving the mask on
    screen (:class:`~.session_saving.SessionSavingMixin`), its layers
    (:class:`~.session_layers.SessionLayersMixin`), queue moves
    (:class:`~.session_queue.QueueNavigationMixin`) and the first suggestions of a
    project without a model (:class:`~.session_first.FirstSuggestionsMixin`) and the
    on-demand suggestion of an image the last round left out
    (:class:`~.session_fresh.FreshSuggestionMixin`) are mixed in.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer; only a weak reference is kept.
    autosave_seconds : float
        While painting, the mask is saved at most this often (0 disables; the mask is
        still saved when moving on or closing).
    display_profile : {"auto", "none", "column", "row"} or None
        Normalisation profile of the display (see :func:`display_image`); None (the
        default): the one the project's models use (project meta ``"normalization"``,
        else :data:`~napari_crack_al.core.normalize.DEFAULT_PROFILE`), so the annotator
        sees what the model sees.

    Attributes
    ----------
    project : Project or None
        The open project.
    current_name : str or None
        The image being annotated.
    mask_source : str or None
        Where its mask came from ("draft", "annotation", "suggestion", "empty").
    image_layer, labels_layer : napari layers or None
        The range image and the editable crack mask (uint8, 1 = crack).
    overlay_layer : napari Image layer or None
        The crack probability of the current image from the last model (zeros when
        none is stored; see :meth:`has_probability`).
    overlay_visible : bool
        Whether the probability overlay is shown (toggled with Shift+O).
    loading_name : str or None
        The large image being opened in a worker thread (see :meth:`load`).
    io : SessionIO
        The session's disk queue: large images are opened and their masks saved there.
    speck_area, hole_area : int
        Clean-up sizes in pixels (Annotate panel): smaller crack pieces are removed,
        smaller holes in cracks are filled.
    """

    project_changed = Signal(object)  # Project | None
    image_loaded = Signal(str)  # image name
    queue_changed = Signal()  # statuses, scores or order changed
    retrain_requested = Signal()  # Shift+R: the Train panel (if open) starts a round
    overlay_toggled = Signal(bool)  # the probability overlay was shown (True) or hidden
    first_suggestions_finished = Signal()  # the detector's first suggestions job ended
    mask_state_changed = Signal()  # the mask on screen became edited, a draft, accepted...
    loading_changed = Signal(object)  # the image being opened in the background (None: none)
    #: Suggest in the background by itself: the training-free detector when a project without
    #: a model opens, the current model for an image the last round left out.
    auto_first_suggestions = True

    def __init__(self, viewer: napari.Viewer, *, autosave_seconds: float = 10.0,
                 display_profile: str | None = None) -> None:
        if display_profile is not None and display_profile not in PROFILE_MODES:
            raise ConfigError(f"display profile must be one of {', '.join(PROFILE_MODES)}; "
                              f"got {display_profile!r}")
        self._display_profile = display_profile
        viewer = unwrap_viewer(viewer)
        self._viewer_ref = weakref.ref(viewer)
        self.autosave_seconds = float(autosave_seconds)
        self.project: Project | None = None
        self.current_name: str | None = None
        self.mask_source: str | None = None
        self.image_layer: Image | None = None
        self.labels_layer: Labels | None = None
        self.overlay_layer: Image | None = None
        self.overlay_visible = True
        self.speck_area = 10  # clean-up: crack pieces smaller than this (pixels) are removed
        self.hole_area = 10  # clean-up: holes smaller than this (pixels) are filled
        self._painted = False  # the annotator edited the mask since it was loaded
        self._advance_from_top = False  # the queue was re-ranked: "next" is its top
        self._persisted: np.ndarray | None = None  # the mask as it is on disk for current_name
        self._seconds: dict[str, float] = {}  # annotation time not yet committed by accept
        self._last_activity: float | None = None
        self._last_autosave = 0.0
        self._replacing = False
        self._closed_viewer = False
        self._first_job = None
        self._fresh_job = None
        self._tune_pending = False
        self._trace_tool = None
        self._loaded_base: DraftBase | None = None  # the suggestion the shown mask started from
        self.io = SessionIO()  # opening large images, saving their masks: in order, in workers
        self._loading_name: str | None = None  # the image being opened in the background
        self._load_generation = 0  # every load() adds one: an older background result is stale
        self._edits = 0  # edits of the mask on screen (an edit wins over a reload of its image)
        self._closing = False
        viewer.layers.events.removed.connect(self._on_layer_removed)
        from .reader_handoff import ReaderHandoff

        self._reader_handoff = ReaderHandoff(self, viewer)  # projects opened by napari's reader
        qt_window = getattr(getattr(viewer, "window", None), "_qt_window", None)
        if qt_window is not None:
            qt_window.destroyed.connect(self._on_viewer_destroyed)

    # ------------------------------------------------------------------ properties
    @property
    def display_profile(self) -> str:
        """The normalisation profile images are shown with (the model's)."""
        if self._display_profile is not None:
            return self._display_profile
        if self.project is not None:
            stored = self.project.get_meta(NORMALIZATION_META)
            if stored in PROFILE_MODES:
                return str(stored)
        return DEFAULT_PROFILE

    @property
    def trace_tool(self) -> TraceTool:
        """The trace and erase-crack modes of the mask layer (:mod:`.trace_tools`)."""
        if self._trace_tool is None:
            self._trace_tool = TraceTool(self)
        return self._trace_tool

    @property
    def record(self) -> ImageRecord | None:
        """The record of the current image (read fresh from the project)."""
        if self.project is None or self.current_name is None:
            return None
        return self.project.record(self.current_name)

    # ------------------------------------------------------------------ project
    def open_project(self, path: str | Path, create: bool = False, *, load: bool = True) -> Project:
        """Open (or create) a project and show its first queued image.

        Parameters
        ----------
        path : str or Path
            The project folder.
        create : bool
            Create the project when ``path`` is not one yet (``path/images`` must hold images).
        load : bool
            Load the first image waiting in the queue (the first image when none waits).

        Returns
        -------
        Project

        Raises
        ------
        ProjectError
            The folder is not a project (and ``create`` is False) or cannot be created.
        """
        path = Path(path).expanduser()
        if create and not Project.is_project(path):
            project = Project.create(path)
        else:
            try:
                project = Project.open(path)
            except ProjectError as exc:
                if (path / "images").is_dir() and not Project.is_project(path):
                    raise ProjectError(path, "is not a crack project yet; use 'Create from folder' to make "
                                             "one of the images in its images/ folder") from exc
                raise
        added = project.refresh()
        if added:
            logger.info("registered %d new image(s) in %s", len(added), path)
        self.close()
        self.project = project
        self.project_changed.emit(project)
        self.queue_changed.emit()
        if load:
            self._advance(None)
        if self.auto_first_suggestions:
            self.start_first_suggestions()
        return project

    def close(self, *, remove_layers: bool = True) -> None:
        """Save the current mask, remove the session's layers and close the project.

        Parameters
        ----------
        remove_layers : bool
            Remove the image and mask layers from the viewer (False when the viewer is closing).
        """
        if self.project is None:
            return
        self.stop_first_suggestions()
        self.stop_fresh_suggestion()
        self.cancel_loading()
        self._closing = True
        try:
            self.save_current()  # the queued writes first: nothing accepted or painted is lost
        finally:
            self._closing = False
            if remove_layers:
                self._remove_layers()
            elif self.labels_layer is not None:
                self.labels_layer.events.paint.disconnect(self._on_paint)
                self.image_layer = self.labels_layer = self.overlay_layer = None
            project, self.project = self.project, None
            self._advance_from_top = False
            self._painted = False
            self.current_name = None
            self.mask_source = None
            self._persisted = None
            self._seconds.clear()
            self._last_activity = None
            closer = getattr(project, "close", None)
            if callable(closer):
                closer()
            self.project_changed.emit(None)

    # ------------------------------------------------------------------ images
    def counts(self) -> dict[str, int]:
        """Number of images per status (and ``"total"``)."""
        out = {s.value: 0 for s in ImageStatus}
        records = self.project.records() if self.project is not None else []
        for rec in records:
            out[ImageStatus(rec.status).value] += 1
        out["total"] = len(records)
        return out

    # ------------------------------------------------------------------ internals
    def _require_project(self) -> Project:
        if self.project is None:
            raise ProjectError(None, "no project is open")
        return self.project

    def _require_image(self) -> str:
        if self.current_name is None:
            raise ProjectError(self.project.root if self.project else None, "no image is loaded")
        return self.current_name

    def _on_viewer_destroyed(self, *_: Any) -> None:
        if self._closed_viewer:
            return
        self._closed_viewer = True
        try:
            self.close(remove_layers=False)
        except Exception as exc:  # noqa: BLE001 - the window is gone; log what could not be saved
            logger.error("could not save %s when the viewer closed: %s", self.current_name, exc)



def get_session(viewer: napari.Viewer) -> AnnotationSession:
    """The one :class:`AnnotationSession` of ``viewer`` (created on first use).

    Sessions are keyed weakly by viewer: a closed and collected viewer drops its session.
    A ``PublicOnlyProxy`` of a viewer (what napari passes to dock widgets) gives the
    session of the viewer it wraps.
    """
    viewer = unwrap_viewer(viewer)
    session = registered(viewer)
    if session is None:
        session = AnnotationSession(viewer)
        register(viewer, session)
    return session
