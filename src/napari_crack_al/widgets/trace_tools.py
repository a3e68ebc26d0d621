"""Trace and erase-crack modes on the mask layer: clicks in, core calls, undoable edits out.

:class:`TraceTool` gives the session's crack mask two click modes besides napari's brush:

* **trace** (Shift+T): click on a crack, then further along it; between consecutive
  clicks the minimal-cost path (:func:`~napari_crack_al.core.trace.trace_on_image`, on the
  displayed image and the model's crack probability when there is one) is painted at the
  crack's width measured across the path (the brush size when the image shows none).
  Moving the mouse previews the path the next click would add (a Shapes layer). Enter or
  a double click ends the crack; Esc drops the previewed part and ends it. A short trace
  between two suggested pieces bridges a gap.
* **erase crack** (Shift+X): a click removes the crack segment under it (between
  junctions, with its width: :func:`~napari_crack_al.core.trace.segment_at`); with Ctrl
  the whole connected crack. This is how a suggestion is kept or dropped piece by piece:
  accept keeps what is left.

Every edit goes through ``Labels.data_setitem``, so Ctrl+Z undoes it like a brush stroke.
The layer is put in pan/zoom mode while a mode is on (napari's own tools come back when
it is switched off). This module translates clicks only; the work is in the core.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from psygnal import Signal

from . import notify

#: The viewer's :class:`~napari_crack_al.widgets.session.AnnotationSession` (which owns the
#: tool; not imported here, so the session can import this module).
AnnotationSession = Any

__all__ = ["TraceTool", "TRACE_MODES", "PREVIEW_NAME"]

logger = logging.getLogger(__name__)

TRACE_MODES = ("trace", "erase_crack")
#: Name of the layer showing the path the next click would add.
PREVIEW_NAME = "trace preview"
_PREVIEW_EVERY_S = 0.05  # at most one preview path per this many seconds of mouse moves


class TraceTool:
    """The trace and erase-crack modes of one session's mask layer (see the module docstring).

    Parameters
    ----------
    session : AnnotationSession
        The viewer's session.

    Attributes
    ----------
    mode : str or None
        ``"trace"``, ``"erase_crack"`` or None (napari's tools).
    points : list of (int, int)
        The clicks of the crack being traced.
    """

    mode_changed = Signal(object)  # the new mode (or None)

    def __init__(self, session: AnnotationSession) -> None:
        self.session = session
        self.mode: str | None = None
        self.points: list[tuple[int, int]] = []
        self._layer: Any = None
        self._previous_mode = "paint"
        self._last_preview = 0.0
        self.preview_layer: Any = None
        session.image_loaded.connect(self._on_image_loaded)

    # ------------------------------------------------------------------ modes
    def set_mode(self, mode: str | None) -> None:
        """Switch to ``mode`` (None: back to napari's brush); the crack being traced ends."""
        if mode is not None and mode not in TRACE_MODES:
            raise ValueError(f"mode must be one of {TRACE_MODES} or None, got {mode!r}")
        self.finish()
        layer = self.session.labels_layer
        if mode is not None and layer is None:
            notify.warning("Open an image first (Crack project panel).")
            return
        self._detach()
        changed = self.mode != mode
        self.mode = mode
        if mode is not None:
            self._attach(layer)
        if changed:
            self.mode_changed.emit(mode)

    def toggle(self, mode: str) -> str | None:
        """Switch ``mode`` on, or off when it is on; returns the new mode."""
        self.set_mode(None if self.mode == mode else mode)
        return self.mode

    def _attach(self, layer: Any) -> None:
        self._layer = layer
        self._previous_mode = layer.mode if layer.mode != "pan_zoom" else "paint"
        layer.mode = "pan_zoom"
        layer.mouse_drag_callbacks.append(self._on_press)
        layer.mouse_move_callbacks.append(self._on_move)
        layer.mouse_double_click_callbacks.append(self._on_double_click)
        layer.bind_key("Enter", lambda _layer: self.finish(), overwrite=True)
        layer.bind_key("Escape", lambda _layer: self.cancel(), overwrite=True)

    def _detach(self) -> None:
        layer, self._layer = self._layer, None
        if layer is None:
            return
        for callbacks, func in ((layer.mouse_drag_callbacks, self._on_press),
                                (layer.mouse_move_callbacks, self._on_move),
                                (layer.mouse_double_click_callbacks, self._on_double_click)):
            if func in callbacks:
                callbacks.remove(func)
        for key in ("Enter", "Escape"):
            layer.bind_key(key, None, overwrite=True)
        if self.mode is not None and layer.mode == "pan_zoom":
            layer.mode = self._previous_mode

    def _on_image_loaded(self, _name: str) -> None:
        self.points.clear()
        self._show_preview(None)
        if self.mode is None:
            return
        layer = self.session.labels_layer
        if layer is not self._layer:  # a new mask layer: attach to it
            mode = self.mode
            self._detach()
            self.mode = None
            self.set_mode(mode)
        elif layer is not None:
            layer.mode = "pan_zoom"  # loading an image puts the layer back in paint mode

    # ------------------------------------------------------------------ the crack being traced
    def finish(self) -> None:
        """End the crack being traced (Enter, double click)."""
        self.points.clear()
        self._show_preview(None)

    def cancel(self) -> None:
        """Drop the previewed part and end the crack (Esc); painted pieces stay (Ctrl+Z)."""
        self.finish()

    def click(self, point: tuple[float, float], *, whole: bool = False) -> int:
        """What a click at ``point`` (row, col) does in the current mode; returns pixels changed."""
        p = (int(round(point[0])), int(round(point[1])))
        if self.mode == "trace":
            changed = self._paint_path(self.points[-1], p) if self.points else 0
            self.points.append(p)
            self._show_preview(None)
            return changed
        if self.mode == "erase_crack":
            return self._erase_at(p, whole)
        return 0

    def preview(self, point: tuple[float, float]) -> np.ndarray | None:
        """The path a click at ``point`` would add (shown in the preview layer)."""
        if self.mode != "trace" or not self.points:
            return None
        path = self._path(self.points[-1], (int(round(point[0])), int(round(point[1]))))
        self._show_preview(path)
        return path

    # ------------------------------------------------------------------ core calls
    def _image(self) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        s = self.session
        image = np.asarray(s.image_layer.data, dtype=np.float32)
        valid = s.image_layer.metadata.get("valid")
        prob = None
        if s.has_probability() and s.overlay_layer is not None:
            prob = np.asarray(s.overlay_layer.data, dtype=np.float32)
        return image, valid, prob

    def _path(self, a: tuple[int, int], b: tuple[int, int]) -> np.ndarray:
        from ..core.trace import trace_on_image

        image, valid, prob = self._image()
        return trace_on_image(image, a, b, valid=valid, probability=prob)

    def _paint_path(self, a: tuple[int, int], b: tuple[int, int]) -> int:
        from ..core.trace import measure_path, path_mask

        layer = self.session.labels_layer
        image, valid, _ = self._image()
        width, path = measure_path(image, self._path(a, b), fallback=float(layer.brush_size),
                                   valid=valid)
        todo = np.nonzero(path_mask(image.shape, path, width) & (np.asarray(layer.data) == 0))
        if todo[0].size:
            layer.data_setitem(todo, 1)
            self.session.mark_edited()
        return int(todo[0].size)

    def _erase_at(self, p: tuple[int, int], whole: bool) -> int:
        from ..core.trace import segment_at

        layer = self.session.labels_layer
        removal = np.nonzero(segment_at(np.asarray(layer.data) > 0, p, whole=whole))
        if removal[0].size:
            layer.data_setitem(removal, 0)
            self.session.mark_edited()
        return int(removal[0].size)

    # ------------------------------------------------------------------ napari events
    def _data_point(self, layer: Any, event: Any) -> tuple[float, float]:
        pos = layer.world_to_data(event.position)
        return float(pos[-2]), float(pos[-1])

    def _on_press(self, layer: Any, event: Any) -> Any:
        if event.type != "mouse_press" or getattr(event, "button", 1) != 1:
            return
        point = self._data_point(layer, event)
        whole = "Control" in {str(m) for m in getattr(event, "modifiers", ())}
        with notify.reporting("Trace" if self.mode == "trace" else "Erase crack"):
            self.click(point, whole=whole)
        yield  # a drag after the press does nothing (pan/zoom stays napari's)

    def _on_move(self, layer: Any, event: Any) -> None:
        if self.mode != "trace" or not self.points:
            return
        now = time.monotonic()
        if now - self._last_preview < _PREVIEW_EVERY_S:
            return
        self._last_preview = now
        with notify.reporting("Trace preview"):
            self.preview(self._data_point(layer, event))

    def _on_double_click(self, layer: Any, event: Any) -> None:
        self.finish()

    def _show_preview(self, path: np.ndarray | None) -> None:
        viewer = self.session.viewer
        if viewer is None:
            return
        layer = self.preview_layer
        if path is None or len(path) < 2:
            if layer is not None and layer in viewer.layers:
                layer.data = []
            return
        if layer is None or layer not in viewer.layers:
            from napari.layers import Shapes

            labels = self.session.labels_layer
            layer = Shapes(name=PREVIEW_NAME, edge_color="#30c0ff", edge_width=1, opacity=0.9)
            viewer.layers.append(layer)
            self.preview_layer = layer
            if labels is not None:
                viewer.layers.selection.active = labels  # keep clicking on the mask
        layer.data = [np.asarray(path, dtype=float)]
        layer.shape_type = ["path"]

