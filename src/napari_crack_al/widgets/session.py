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

This module uses napari and psygnal but no Qt widgets.
"""

from __future__ import annotations

import logging
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from psygnal import Signal

from ..core.errors import ConfigError, ProjectError
from ..core.normalize import PROFILE_MODES, display_contrast_limits, remove_transverse_profile
from ..core.project import ImageStatus, Project
from ..core.range_io import RangeImage, read_range_image
from . import notify

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
    "OVERLAY_NAME",
]

logger = logging.getLogger(__name__)

#: Brush diameter in pixels when a mask is first shown (cracks are 1-10 px wide).
DEFAULT_BRUSH_SIZE = 5
#: Label 1 (crack) in a colour that stands out on a gray range image.
MASK_COLORMAP = {None: "transparent", 0: "transparent", 1: "#ff3030"}
#: Longest pause (seconds) counted as annotation time; longer pauses count as this much.
IDLE_CAP_SECONDS = 120.0

MASK_SOURCE_WORDS = {"annotation": "annotation", "suggestion": "suggestion", "draft": "draft", "empty": "new"}
#: Name of the optional layer showing the model's crack probability (below the mask).
OVERLAY_NAME = "crack probability"


def labels_layer_name(source: str) -> str:
    """Name of the mask layer for a mask that came from ``source``.

    Parameters
    ----------
    source : {"annotation", "suggestion", "draft", "empty"}
        Where :meth:`Project.mask_for_editing` found the mask.

    Returns
    -------
    str
        e.g. ``"crack mask (annotation)"``; an empty start is called ``"crack mask (new)"``.
    """
    return f"crack mask ({MASK_SOURCE_WORDS.get(source, source)})"


def display_image(image: RangeImage, profile: str = "column") -> tuple[np.ndarray, tuple[float, float]]:
    """The pixels to show for a range image, and their contrast limits.

    For a one-channel range image the transverse road profile (cross-slope,
    ruts) is removed first, so cracks stand out instead of the road's shape;
    colour photographs converted to gray are shown as they are.

    Parameters
    ----------
    image : RangeImage
        The image.
    profile : {"column", "row", "none"}
        Which transverse profile to remove (see
        :func:`~napari_crack_al.core.normalize.remove_transverse_profile`).

    Returns
    -------
    (ndarray of float32, (float, float))
        Display data and contrast limits over the valid pixels.
    """
    if profile not in PROFILE_MODES:
        raise ConfigError(f"display profile must be one of {', '.join(PROFILE_MODES)}; got {profile!r}")
    if profile == "none" or getattr(image, "channels", 1) != 1:
        return image.data, display_contrast_limits(image)
    data = remove_transverse_profile(image.data, image.valid, axis=profile)
    shown = RangeImage(data=data, valid=image.valid, path=image.path, source_dtype=image.source_dtype)
    return data, display_contrast_limits(shown)


class AnnotationSession:
    """State of the annotation work in one viewer (no Qt widgets).

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer; only a weak reference is kept.
    autosave_seconds : float
        While painting, the mask is saved at most this often (0 disables; the mask is
        still saved when moving on or closing).
    display_profile : {"column", "row", "none"}
        Transverse profile removed from range images for display (see :func:`display_image`).

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
    speck_area, hole_area : int
        Clean-up sizes in pixels (Annotate panel): smaller crack pieces are removed,
        smaller holes in cracks are filled.
    """

    project_changed = Signal(object)  # Project | None
    image_loaded = Signal(str)  # image name
    queue_changed = Signal()  # statuses, scores or order changed
    retrain_requested = Signal()  # Shift+R: the Train panel (if open) starts a round
    overlay_toggled = Signal(bool)  # the probability overlay was shown (True) or hidden

    def __init__(self, viewer: napari.Viewer, *, autosave_seconds: float = 10.0,
                 display_profile: str = "column") -> None:
        if display_profile not in PROFILE_MODES:
            raise ConfigError(f"display profile must be one of {', '.join(PROFILE_MODES)}; "
                              f"got {display_profile!r}")
        self.display_profile = display_profile
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
        viewer.layers.events.removed.connect(self._on_layer_removed)
        qt_window = getattr(getattr(viewer, "window", None), "_qt_window", None)
        if qt_window is not None:
            qt_window.destroyed.connect(self._on_viewer_destroyed)

    # ------------------------------------------------------------------ properties
    @property
    def viewer(self) -> napari.Viewer | None:
        """The viewer, or None once it is gone."""
        return self._viewer_ref()

    @property
    def record(self) -> ImageRecord | None:
        """The record of the current image (read fresh from the project)."""
        if self.project is None or self.current_name is None:
            return None
        return self.project.record(self.current_name)

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
        try:
            self.save_current()
        finally:
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
    def load(self, name: str, *, force: bool = False) -> None:
        """Show image ``name`` with its mask (draft, else annotation, else suggestion, else empty).

        The mask of the image shown before is saved first. The image layer goes
        below, the mask layer on top, selected, in paint mode with label 1; the
        crack probability of the last model, when stored, goes between them
        (see :attr:`overlay_visible`).

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
            The image or its mask cannot be read (the current image stays shown).
        """
        project = self._require_project()
        if name == self.current_name and self.labels_layer is not None:
            if not force:
                return
            self.save_current()
        image = read_range_image(project.image_path(name))
        mask, source = project.mask_for_editing(name)
        if mask is None:
            mask = np.zeros(image.shape, dtype=bool)
        mask = np.asarray(mask) > 0
        if mask.shape != image.shape:
            raise ProjectError(project.root, f"mask of {name!r} has shape {mask.shape}, "
                                             f"its image {image.shape}")
        self.save_current()
        self._tick()
        self._show(name, image, mask, source)
        self.current_name = name
        self.mask_source = source
        self._persisted = mask.copy()
        self._painted = False
        self._last_activity = time.monotonic()
        self._last_autosave = time.monotonic()
        self.image_loaded.emit(name)

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
            self.project.accept(name, mask, seconds=self._take_seconds(name))
            self._discard_draft(name)
            what = "annotation"
            self.queue_changed.emit()
        else:
            self.project.save_draft(name, mask)
            what = "draft"
        self._persisted = mask.copy()
        logger.debug("saved %s of %s", what, name)
        return what

    def accept_and_next(self) -> str | None:
        """Accept the current mask as the annotation and load the next queued image.

        Returns
        -------
        str or None
            The image loaded next, or None when no image waits (the current one stays).
        """
        project = self._require_project()
        name = self._require_image()
        mask = self.current_mask()
        assert mask is not None
        project.accept(name, mask, seconds=self._take_seconds(name))
        self._discard_draft(name)
        self._persisted = mask.copy()
        self.queue_changed.emit()
        return self._advance(name)

    def skip_and_next(self) -> str | None:
        """Mark the current image skipped (edits kept as a draft) and load the next one.

        An image that is already annotated keeps its annotation and status.

        Returns
        -------
        str or None
            The image loaded next, or None when no image waits.
        """
        project = self._require_project()
        name = self._require_image()
        self.save_current()
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
        self.save_current()
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

    # ------------------------------------------------------------------ probability overlay
    def set_overlay_visible(self, visible: bool) -> None:
        """Show or hide the crack probability overlay (now and for the next images)."""
        changed = self.overlay_visible != bool(visible)
        self.overlay_visible = bool(visible)
        if changed:
            self.overlay_toggled.emit(self.overlay_visible)
        layer = self.overlay_layer
        viewer = self.viewer
        if layer is not None and viewer is not None and layer in viewer.layers:
            layer.visible = self.overlay_visible
        if self.labels_layer is not None and viewer is not None and self.labels_layer in viewer.layers:
            viewer.layers.selection.active = self.labels_layer  # painting keeps working

    def toggle_overlay(self) -> bool:
        """Toggle the probability overlay (Shift+O); returns whether it is now shown."""
        layer = self.overlay_layer
        viewer = self.viewer
        shown = self.overlay_visible
        if layer is not None and viewer is not None and layer in viewer.layers:
            shown = bool(layer.visible)  # the eye icon may have been used
        self.set_overlay_visible(not shown)
        if self.overlay_visible and not self.has_probability():
            notify.info("No crack probability for this image yet: it appears after a training round.")
        return self.overlay_visible

    def refresh_overlay(self) -> None:
        """Show the stored crack probability of the current image (after a new round)."""
        if self.current_name is not None:
            self._update_overlay(self.current_name)

    def _update_overlay(self, name: str) -> None:
        """Show the stored probability of ``name`` in the overlay layer (zeros when there is none).

        The layer is made once, with the first image, and then only gets new data:
        making a layer costs the UI thread a few hundred milliseconds, which must
        not happen when a training round finishes. Zeros add nothing to the image
        (additive blending), so an image without probability looks as without overlay.
        """
        viewer = self.viewer
        if viewer is None or self.project is None or self.image_layer is None:
            return
        from ..core.active.round import probability_path, read_probability

        shape = tuple(self.image_layer.data.shape)
        prob = None
        if probability_path(self.project, name).is_file():
            prob = read_probability(self.project, name)
            if prob is not None and prob.shape != shape:
                prob = None
        has = prob is not None
        data = prob if has else np.zeros(shape, dtype=np.float32)
        meta = {"crack_al_name": name, "has_probability": has}
        layer_name = OVERLAY_NAME if has else f"{OVERLAY_NAME} (none yet)"
        layers = viewer.layers
        layer = self.overlay_layer if self.overlay_layer is not None and self.overlay_layer in layers else None
        if layer is None:
            from napari.layers import Image

            layer = Image(data, name=layer_name, colormap="inferno", contrast_limits=(0.0, 1.0),
                          opacity=0.5, blending="additive", visible=self.overlay_visible, metadata=meta)
            layers.insert(layers.index(self.image_layer) + 1, layer)
        else:
            layer.data = data
            layer.contrast_limits = (0.0, 1.0)
            layer.metadata = meta
            layer.name = layer_name
        self.overlay_layer = layer
        if layers.index(layer) < layers.index(self.image_layer):  # the image was added again
            layers.move(layers.index(layer), layers.index(self.image_layer) + 1)
        if self.labels_layer is not None and self.labels_layer in layers:
            if layers.index(layer) > layers.index(self.labels_layer):
                layers.move(layers.index(layer), layers.index(self.labels_layer))
            layers.selection.active = self.labels_layer

    def has_probability(self) -> bool:
        """Whether the overlay shows a stored probability for the current image."""
        layer = self.overlay_layer
        return layer is not None and bool(layer.metadata.get("has_probability"))

    def _remove_layer_quietly(self, layer: Any) -> None:
        viewer = self.viewer
        replacing, self._replacing = self._replacing, True
        try:
            if viewer is not None and layer in viewer.layers:
                viewer.layers.remove(layer)
        finally:
            self._replacing = replacing

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

    def _discard_draft(self, name: str) -> None:
        assert self.project is not None
        self.project.discard_draft(name)

    def _advance(self, after: str | None) -> str | None:
        """Load the next waiting image after ``after``; unreadable ones are reported and passed."""
        project = self._require_project()
        self.save_current()
        if self._advance_from_top:  # a new ranking: its top first
            self._advance_from_top = False
            after = None
        tried: set[str] = set()
        name = project.next_name(after=after)
        if name is None and after is None and project.names():
            name = project.names()[0]  # nothing waits: show the first image
        while name is not None and name not in tried:
            tried.add(name)
            try:
                self.load(name)
                return name
            except Exception as exc:  # noqa: BLE001 - reported, then the next image is tried
                if not notify.is_user_error(exc):
                    raise
                notify.report(exc, f"Cannot open image {name!r}")
                name = project.next_name(after=name)
        if after is not None:
            notify.info("No image waits in the queue: every image is annotated or skipped.")
        return None

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

    def _show(self, name: str, image: RangeImage, mask: np.ndarray, source: str) -> None:
        """Show the image and mask of ``name`` in the session's two layers.

        Layers still in the viewer are reused (new data, name and metadata; the
        mask's undo history restarts), which is much faster than replacing them;
        layers the user removed are created again.
        """
        from napari.layers import Image, Labels

        viewer = self.viewer
        if viewer is None:
            raise ProjectError(None, "the viewer was closed")
        layers = viewer.layers
        data, limits = display_image(image, self.display_profile)
        image_meta = {"crack_al_name": name, "path": str(image.path), "valid": image.valid,
                      "source_dtype": image.source_dtype,
                      "profile_removed": self.display_profile if data is not image.data else "none"}
        labels_meta = {"crack_al_name": name, "mask_source": source}
        labels_name = labels_layer_name(source)
        old_shape = None if self.image_layer is None else tuple(self.image_layer.data.shape)

        image_layer = self.image_layer if self.image_layer is not None and self.image_layer in layers else None
        if image_layer is None:
            image_layer = Image(data, name=name, colormap="gray", contrast_limits=limits, metadata=image_meta)
            layers.insert(0, image_layer)
        else:
            image_layer.data = data
            image_layer.contrast_limits_range = limits
            image_layer.contrast_limits = limits
            image_layer.metadata = image_meta
            image_layer.name = name
        labels = self.labels_layer if self.labels_layer is not None and self.labels_layer in layers else None
        if labels is None:
            if self.labels_layer is not None:
                self.labels_layer.events.paint.disconnect(self._on_paint)
            labels = Labels(mask.astype(np.uint8), name=labels_name, opacity=0.7, colormap=MASK_COLORMAP,
                            metadata=labels_meta)
            labels.brush_size = DEFAULT_BRUSH_SIZE
            layers.insert(layers.index(image_layer) + 1, labels)
            labels.events.paint.connect(self._on_paint)
        else:
            labels.data = mask.astype(np.uint8)
            labels.metadata = labels_meta
            labels.name = labels_name
            _reset_undo_history(labels)
        if layers.index(labels) < layers.index(image_layer):  # the mask always on top of its image
            layers.move(layers.index(labels), layers.index(image_layer) + 1)
        self.image_layer, self.labels_layer = image_layer, labels
        self._update_overlay(name)
        labels.selected_label = 1
        layers.selection.active = labels
        labels.mode = "paint"
        if old_shape != tuple(image_layer.data.shape):
            viewer.reset_view()

    def _remove_layers(self) -> None:
        viewer = self.viewer
        replacing, self._replacing = self._replacing, True
        try:
            for layer in (self.labels_layer, self.overlay_layer, self.image_layer):
                if layer is None:
                    continue
                if layer is self.labels_layer:
                    layer.events.paint.disconnect(self._on_paint)
                if viewer is not None and layer in viewer.layers:
                    viewer.layers.remove(layer)
        finally:
            self._replacing = replacing
        self.image_layer = self.labels_layer = self.overlay_layer = None

    def _on_paint(self, event: Any = None) -> None:
        self._painted = True
        self._tick()
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

    def _on_viewer_destroyed(self, *_: Any) -> None:
        if self._closed_viewer:
            return
        self._closed_viewer = True
        try:
            self.close(remove_layers=False)
        except Exception as exc:  # noqa: BLE001 - the window is gone; log what could not be saved
            logger.error("could not save %s when the viewer closed: %s", self.current_name, exc)

    def _save_reporting(self, action: str) -> None:
        try:
            self.save_current()
        except Exception as exc:  # noqa: BLE001
            if not notify.is_user_error(exc):
                raise
            notify.report(exc, action)


def _reset_undo_history(labels: Labels) -> None:
    """Start a fresh undo history (edits of the previous image must not be undone onto this one)."""
    reset = getattr(labels, "_reset_history", None)
    if callable(reset):
        reset()
    else:  # pragma: no cover - napari without the private helper: making it read-only resets history
        labels.editable = False
        labels.editable = True


# ---------------------------------------------------------------------- one session per viewer
_SESSIONS: dict[int, tuple[weakref.ref, AnnotationSession]] = {}


def get_session(viewer: napari.Viewer) -> AnnotationSession:
    """The one :class:`AnnotationSession` of ``viewer`` (created on first use).

    Sessions are keyed weakly by viewer: a closed and collected viewer drops its session.
    A ``PublicOnlyProxy`` of a viewer (what napari passes to dock widgets) gives the
    session of the viewer it wraps.
    """
    viewer = unwrap_viewer(viewer)
    key = id(viewer)
    entry = _SESSIONS.get(key)
    if entry is not None and entry[0]() is viewer:
        return entry[1]
    session = AnnotationSession(viewer)
    ref = weakref.ref(viewer, lambda _ref, key=key: _drop(key, _ref))
    _SESSIONS[key] = (ref, session)
    return session


def unwrap_viewer(viewer: Any) -> Any:
    """The real viewer behind napari's ``PublicOnlyProxy`` (or ``viewer`` itself)."""
    while hasattr(type(viewer), "__wrapped__"):
        viewer = viewer.__wrapped__
    return viewer


def _drop(key: int, ref: weakref.ref) -> None:
    entry = _SESSIONS.get(key)
    if entry is not None and entry[0] is ref:
        del _SESSIONS[key]
