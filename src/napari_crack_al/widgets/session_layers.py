"""The napari layers of an annotation session: range image, crack mask and probability overlay.

:class:`SessionLayersMixin` shows the image being annotated in the viewer (the
range image below, the editable crack mask on top, the crack probability of
the last model between them), reuses those layers from one image to the next,
removes them, and shows or hides the probability overlay. It is mixed into
:class:`~napari_crack_al.widgets.session.AnnotationSession`.

This module uses napari but no Qt widgets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.errors import ProjectError
from ..core.open_image import read_overlay
from . import notify
from .display import DEFAULT_BRUSH_SIZE, MASK_COLORMAP, OVERLAY_NAME, labels_layer_name
from .session_io import READ, IOTask

if TYPE_CHECKING:  # pragma: no cover
    import weakref
    from collections.abc import Callable

    import napari
    from napari.layers import Image, Labels

    from ..core.open_image import PreparedImage
    from ..core.project import Project
    from .session_io import SessionIO

__all__ = ["SessionLayersMixin"]


class SessionLayersMixin:
    """The viewer layers of an :class:`AnnotationSession` (mixed into it)."""

    # provided by AnnotationSession
    _viewer_ref: weakref.ref
    project: Project | None
    current_name: str | None
    display_profile: str
    image_layer: Image | None
    labels_layer: Labels | None
    overlay_layer: Image | None
    overlay_visible: bool
    overlay_toggled: Any  # psygnal signal: the overlay was shown (True) or hidden
    _replacing: bool
    _on_paint: Callable[..., None]
    _load_generation: int
    io: SessionIO
    _in_background: Callable[[int], bool]

    #: ``_update_overlay``: the probability was not read yet (read it on this thread)
    _UNREAD = object()

    @property
    def viewer(self) -> napari.Viewer | None:
        """The viewer, or None once it is gone."""
        return self._viewer_ref()

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
        """Show the stored crack probability of the current image (after a new round).

        A large image's probability is read in the session's disk queue (a worker thread)
        and shown when read, if that image is still on screen.
        """
        name, project, image = self.current_name, self.project, self.image_layer
        if name is None or project is None or image is None:
            return
        shape = tuple(image.data.shape)
        if not self._in_background(int(np.prod(shape))):
            self._update_overlay(name)
            return
        generation = self._load_generation

        def shown(task: IOTask) -> None:
            if not task.cancelled and task.error is None and generation == self._load_generation \
                    and name == self.current_name:
                self._update_overlay(name, task.value)
            elif task.error is not None:
                notify.report(task.error, f"Crack probability of {name!r}")

        self.io.submit(IOTask(READ, lambda: read_overlay(project, name, shape), shown,
                              label=f"Reading the crack probability of {name}"))

    def overlay_threshold(self) -> float:
        """The current model's threshold: the overlay saturates there (the suggestion's cut)."""
        from ..core.calibration import DEFAULT_THRESHOLD, model_threshold

        current = self.project.current_model() if self.project is not None else None
        if current is None:
            return DEFAULT_THRESHOLD
        return model_threshold(current.get("metrics") or {})

    def _update_overlay(self, name: str, probability: Any = _UNREAD) -> None:
        """Show the stored probability of ``name`` in the overlay layer (zeros when there is none).

        ``probability``: what :func:`~napari_crack_al.core.open_image.read_overlay` gave (in a
        worker); left out, it is read here.

        The contrast runs from 0 to the model's threshold: what is bright is in the
        suggestion, what glows dimly is what the model almost called a crack.

        The layer is made once, with the first image, and then only gets new data:
        making a layer costs the UI thread a few hundred milliseconds, which must
        not happen when a training round finishes. Zeros add nothing to the image
        (additive blending), so an image without probability looks as without overlay.
        """
        viewer = self.viewer
        if viewer is None or self.project is None or self.image_layer is None:
            return
        shape = tuple(self.image_layer.data.shape)
        prob = probability
        if prob is self._UNREAD:
            prob = read_overlay(self.project, name, shape)
        if prob is not None and tuple(prob.shape) != shape:
            prob = None
        has = prob is not None
        data = prob if has else np.zeros(shape, dtype=np.float32)
        meta = {"crack_al_name": name, "has_probability": has}
        layer_name = OVERLAY_NAME if has else f"{OVERLAY_NAME} (none yet)"
        limits = (0.0, max(0.01, self.overlay_threshold()))
        layers = viewer.layers
        layer = self.overlay_layer if self.overlay_layer is not None and self.overlay_layer in layers else None
        if layer is None:
            from napari.layers import Image

            layer = Image(data, name=layer_name, colormap="inferno", contrast_limits=limits,
                          opacity=0.5, blending="additive", visible=self.overlay_visible, metadata=meta)
            layers.insert(layers.index(self.image_layer) + 1, layer)
        else:
            layer.data = data
            layer.contrast_limits = limits
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

    # ------------------------------------------------------------------ image and mask layers
    def _remove_layer_quietly(self, layer: Any) -> None:
        viewer = self.viewer
        replacing, self._replacing = self._replacing, True
        try:
            if viewer is not None and layer in viewer.layers:
                viewer.layers.remove(layer)
        finally:
            self._replacing = replacing

    def _show(self, prepared: PreparedImage) -> None:
        """Show a prepared image (:func:`~napari_crack_al.core.open_image.prepare_image`) and
        its mask and probability in the session's layers (UI thread; nothing is read here).

        Layers still in the viewer are reused (new data, name and metadata; the
        mask's undo history restarts), which is much faster than replacing them;
        layers the user removed are created again.
        """
        from napari.layers import Image, Labels

        viewer = self.viewer
        if viewer is None:
            raise ProjectError(None, "the viewer was closed")
        layers = viewer.layers
        name, data, limits, mask = prepared.name, prepared.display, prepared.limits, prepared.labels
        image_meta = {"crack_al_name": name, "path": str(prepared.path), "valid": prepared.valid,
                      "source_dtype": prepared.source_dtype, "normalization": prepared.profile}
        labels_meta = {"crack_al_name": name, "mask_source": prepared.source}
        labels_name = labels_layer_name(prepared.source)
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
            labels = Labels(mask, name=labels_name, opacity=0.7, colormap=MASK_COLORMAP,
                            metadata=labels_meta)
            labels.brush_size = DEFAULT_BRUSH_SIZE
            layers.insert(layers.index(image_layer) + 1, labels)
            labels.events.paint.connect(self._on_paint)
        else:
            labels.data = mask
            labels.metadata = labels_meta
            labels.name = labels_name
            _reset_undo_history(labels)
        if layers.index(labels) < layers.index(image_layer):  # the mask always on top of its image
            layers.move(layers.index(labels), layers.index(image_layer) + 1)
        self.image_layer, self.labels_layer = image_layer, labels
        self._update_overlay(name, prepared.probability)
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


def _reset_undo_history(labels: Labels) -> None:
    """Start a fresh undo history (edits of the previous image must not be undone onto this one)."""
    reset = getattr(labels, "_reset_history", None)
    if callable(reset):
        reset()
    else:  # pragma: no cover - napari without the private helper: making it read-only resets history
        labels.editable = False
        labels.editable = True
