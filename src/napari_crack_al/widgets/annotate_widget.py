"""The "Annotate" dock widget: edit the crack mask, clean it up, see its measurements.

Every edit made here (reset to the suggestion, clear, clean-up) goes through the
Labels layer's undo history (``data_setitem``), so Ctrl+Z undoes it like a brush
stroke. The crack measurements of the mask being edited (number of cracks, total
length, mean and maximum width; in millimetres too when the project has a pixel
size) are computed in a worker thread shortly after each edit. While a large image opens
in the background, the panel's first line says so (the image shown stays editable).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from . import notify
from .mask_state import mask_state, started_from
from .session import AnnotationSession, get_session, unwrap_viewer
from .shortcuts import (
    ACCEPT_KEY,
    CLEANUP_KEY,
    CLEAR_KEY,
    NEXT_KEY,
    OVERLAY_KEY,
    RESET_KEY,
    SKIP_KEY,
    bind_shortcuts,
    tooltip_with_key,
)
from .mask_actions import (
    apply_mask,
    clean_up_current,
    clean_up_mask,
    clear_mask,
    reset_to_suggestion,
)
from .trace_box import CrackToolsBox
from .worker import BackgroundJob, JobOutcome

if TYPE_CHECKING:  # pragma: no cover
    import napari.viewer

    from ..core.export.measurements import ImageCrackSummary

__all__ = ["AnnotateWidget", "apply_mask", "reset_to_suggestion", "clear_mask", "clean_up_mask",
           "clean_up_current", "measure_mask", "format_measurements"]

#: Delay after the last edit before the measurements are recomputed (ms).
MEASURE_DELAY_MS = 300


def measure_mask(mask: np.ndarray, pixel_size_mm: float | None = None) -> ImageCrackSummary:
    """Crack measurements of a mask (see :func:`~napari_crack_al.core.export.measurements.measure_cracks`)."""
    from ..core.export.measurements import measure_cracks, summarize_image

    cracks = measure_cracks(mask, pixel_size_mm=pixel_size_mm)
    return summarize_image(cracks, image_shape=mask.shape, pixel_size_mm=pixel_size_mm)


def format_measurements(summary: ImageCrackSummary) -> str:
    """The measurements as lines of text, e.g. ``"Cracks: 3\\nTotal length: 412 px (41.2 mm)"``."""

    def both(px: float, mm: float | None, digits: int) -> str:
        text = f"{px:.{digits}f} px"
        return text if mm is None else f"{text} ({mm:.{digits}f} mm)"

    return "\n".join((
        f"Cracks: {summary.n_cracks}",
        f"Total length: {both(summary.total_length_px, summary.total_length_mm, 0)}",
        f"Mean width: {both(summary.mean_width_px, summary.mean_width_mm, 1)}",
        f"Max width: {both(summary.max_width_px, summary.max_width_mm, 1)}",
    ))


# ---------------------------------------------------------------------- the dock widget
class AnnotateWidget(QWidget):
    """Dock widget: accept / skip, reset, clear, brush size, clean-up and crack measurements.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer (napari passes it when the widget is added from the manifest).
    """

    def __init__(self, viewer: napari.viewer.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = unwrap_viewer(viewer)
        self.session: AnnotationSession = get_session(self.viewer)
        self._layer: Any = None
        self._measure_job: BackgroundJob | None = None
        self._measure_pending = False
        self._measured_key: tuple | None = None
        self._closed = False
        self.summary: ImageCrackSummary | None = None

        self.image_label = QLabel("No image")
        self.image_label.setWordWrap(True)
        self._make_buttons()
        self._make_settings()
        self.measure_label = QLabel("")
        self.measure_label.setToolTip("Measured on the mask being edited (cracks of 5 px or more)")
        self.crack_tools = CrackToolsBox(self.session)
        self._lay_out()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(MEASURE_DELAY_MS)
        self._timer.timeout.connect(self.update_measurements)
        bind_shortcuts(self.viewer)
        self._connect_session()
        self._on_image_loaded(self.session.current_name or "")

    # ------------------------------------------------------------------ construction
    @staticmethod
    def _button(text: str, tip: str, key: str | None, slot: Any) -> QPushButton:
        b = QPushButton(text)
        b.setToolTip(tooltip_with_key(tip, key) if key else tip)
        b.clicked.connect(slot)
        return b

    def _make_buttons(self) -> None:
        button = self._button
        self.accept_button = button("Accept && next", "Save this mask as the annotation and open the next "
                                    "image", ACCEPT_KEY, self._accept)
        self.skip_button = button("Skip", "Skip this image (edits kept as a draft) and open the next one",
                                  SKIP_KEY, self._skip)
        self.next_button = button("Next suggestion", "Open the top of the queue: the image the model "
                                  "most wants annotated", NEXT_KEY, self._next)
        self.reset_button = button("Reset to suggestion", "Replace the mask by the model's suggestion "
                                   "(Ctrl+Z undoes it)", RESET_KEY, self._reset)
        self.clear_button = button("Clear", "Erase the whole mask (Ctrl+Z undoes it)", CLEAR_KEY, self._clear)
        self.cleanup_button = button("Clean up", "Remove specks and fill small holes (Ctrl+Z undoes it)",
                                     CLEANUP_KEY, self._cleanup)

    @staticmethod
    def _area_spin(value: int, tip: str, on_change: Any) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(0, 100000)
        spin.setValue(value)
        spin.setSuffix(" px")
        spin.setToolTip(tip)
        spin.valueChanged.connect(on_change)
        return spin

    def _make_settings(self) -> None:
        session = self.session
        self.brush_spin = QSpinBox()
        self.brush_spin.setRange(1, 100)
        self.brush_spin.setSuffix(" px")
        self.brush_spin.setToolTip("Brush diameter ([ and ] on the canvas, napari's keys)")
        self.brush_spin.valueChanged.connect(self._set_brush)
        self.overlay_check = QCheckBox("Show crack probability")
        self.overlay_check.setToolTip(tooltip_with_key("Overlay the last model's crack probability below the "
                                                       "mask (bright = crack)", OVERLAY_KEY))
        self.overlay_check.setChecked(session.overlay_visible)
        self.overlay_check.toggled.connect(session.set_overlay_visible)
        self.speck_spin = self._area_spin(session.speck_area, "Crack pieces smaller than this are removed "
                                          "(0: keep all)",
                                          lambda v: setattr(self.session, "speck_area", int(v)))
        self.hole_spin = self._area_spin(session.hole_area, "Holes inside cracks smaller than this are "
                                         "filled (0: none)",
                                         lambda v: setattr(self.session, "hole_area", int(v)))

    def _lay_out(self) -> None:
        nav = QHBoxLayout()
        for b in (self.accept_button, self.skip_button, self.next_button):
            nav.addWidget(b)
        edit = QHBoxLayout()
        edit.addWidget(self.reset_button)
        edit.addWidget(self.clear_button)
        form = QFormLayout()
        form.addRow("Brush", self.brush_spin)
        form.addRow(self.overlay_check)
        clean_box = QGroupBox("Clean-up")
        grid = QGridLayout(clean_box)
        grid.addWidget(QLabel("Remove specks under"), 0, 0)
        grid.addWidget(self.speck_spin, 0, 1)
        grid.addWidget(QLabel("Fill holes under"), 1, 0)
        grid.addWidget(self.hole_spin, 1, 1)
        grid.addWidget(self.cleanup_button, 2, 0, 1, 2)
        measure_box = QGroupBox("Measurements")
        QVBoxLayout(measure_box).addWidget(self.measure_label)
        layout = QVBoxLayout(self)
        layout.addWidget(self.image_label)
        layout.addLayout(nav)
        layout.addLayout(edit)
        layout.addLayout(form)
        layout.addWidget(self.crack_tools)
        layout.addWidget(clean_box)
        layout.addWidget(measure_box)
        layout.addStretch(1)

    def _connect_session(self) -> None:
        session = self.session
        slots = ((session.project_changed, self._on_project_changed),
                 (session.image_loaded, self._on_image_loaded),
                 (session.queue_changed, self._update_state),
                 (session.mask_state_changed, self._update_state),
                 (session.loading_changed, self._update_state),
                 (session.overlay_toggled, self._on_overlay_toggled))
        for signal, slot in slots:
            signal.connect(slot)

        def _disconnect(*_: Any) -> None:
            self._closed = True
            for signal, slot in slots:
                signal.disconnect(slot, missing_ok=True)
            self._watch(None)
            if self._measure_job is not None:
                self._measure_job.cancel()

        self.destroyed.connect(_disconnect)

    # ------------------------------------------------------------------ actions
    def _accept(self) -> None:
        with notify.reporting("Accept"):
            self.session.accept_and_next()

    def _skip(self) -> None:
        with notify.reporting("Skip"):
            self.session.skip_and_next()

    def _next(self) -> None:
        with notify.reporting("Next suggestion"):
            self.session.open_next_suggestion()

    def _reset(self) -> None:
        with notify.reporting("Reset to suggestion"):
            reset_to_suggestion(self.session)
        self.schedule_measurements()

    def _clear(self) -> None:
        with notify.reporting("Clear"):
            clear_mask(self.session)
        self.schedule_measurements()

    def _cleanup(self) -> None:
        with notify.reporting("Clean up"):
            changed = clean_up_current(self.session)
            if changed == 0:
                notify.info("Clean-up: nothing to change.")
        self.schedule_measurements()

    def _set_brush(self, value: int) -> None:
        if self._layer is not None and int(self._layer.brush_size) != int(value):
            self._layer.brush_size = int(value)

    # ------------------------------------------------------------------ measurements
    def schedule_measurements(self, *_: Any) -> None:
        """Recompute the measurements shortly (edits in a row are measured once)."""
        self._timer.start()

    def update_measurements(self) -> None:
        """Measure the current mask in a worker thread (a newer request replaces an older one)."""
        session = self.session
        mask = session.current_mask()
        if mask is None or session.project is None:
            self.measure_label.setText("")
            self.summary = None
            return
        pixel_size = session.project.pixel_size_mm
        key = (session.current_name, mask.shape, pixel_size, hash(np.packbits(mask).tobytes()))
        if key == self._measured_key:
            return
        if self._measure_job is not None and self._measure_job.running:
            self._measure_pending = True
            return
        mask = mask.copy()
        self._measure_job = BackgroundJob(lambda: measure_mask(mask, pixel_size),
                                          on_done=lambda outcome: self._measured(outcome, key)).start()

    def _measured(self, outcome: JobOutcome, key: tuple) -> None:
        if self._closed:  # the panel was closed while the measurements ran
            return
        if outcome.error is not None:
            self.measure_label.setText(f"Cannot measure: {outcome.error}")
        elif outcome.value is not None:
            self.summary = outcome.value
            self._measured_key = key
            self.measure_label.setText(format_measurements(outcome.value))
        if self._measure_pending:
            self._measure_pending = False
            self.update_measurements()

    # ------------------------------------------------------------------ session slots
    def _watch(self, layer: Any) -> None:
        """Follow the edits and brush size of the session's mask layer."""
        old = self._layer
        if old is layer:
            return
        if old is not None:
            for emitter, slot in ((old.events.paint, self.schedule_measurements),
                                  (old.events.data, self.schedule_measurements),
                                  (old.events.brush_size, self._on_brush)):
                emitter.disconnect(slot)
        self._layer = layer
        if layer is not None:
            layer.events.paint.connect(self.schedule_measurements)
            layer.events.data.connect(self.schedule_measurements)
            layer.events.brush_size.connect(self._on_brush)
            self._on_brush()

    def _on_overlay_toggled(self, shown: bool) -> None:
        self.overlay_check.blockSignals(True)
        self.overlay_check.setChecked(bool(shown))
        self.overlay_check.blockSignals(False)

    def _on_brush(self, *_: Any) -> None:
        if self._layer is not None:
            self.brush_spin.blockSignals(True)
            self.brush_spin.setValue(int(self._layer.brush_size))
            self.brush_spin.blockSignals(False)

    def _on_project_changed(self, _project: Any) -> None:
        if _project is None:
            self._watch(None)
            self._measured_key = None
        self._update_state()

    def _on_image_loaded(self, _name: str) -> None:
        self._watch(self.session.labels_layer)
        self._update_state()
        self.schedule_measurements()

    def _update_state(self) -> None:
        session = self.session
        has_image = session.project is not None and session.current_name is not None
        for b in (self.accept_button, self.skip_button, self.reset_button, self.clear_button,
                  self.cleanup_button):
            b.setEnabled(has_image)
        self.next_button.setEnabled(session.project is not None)
        loading = session.loading_name
        opening = f"Opening <b>{loading}</b> …" if loading is not None else ""
        if not has_image:
            self.image_label.setText(opening or ("No image" if session.project is not None
                                                 else "No project open"))
            self.measure_label.setText("")
            return
        word = mask_state(session)
        text = f"<b>{session.current_name}</b> — {word} mask"
        origin = started_from(session)
        if origin == "builtin":  # core.detector.BUILTIN_VERSION (not imported here: scikit-image)
            text += " (from the training-free detector)"
        elif origin:
            text += f" (from the suggestion of {origin})"
        self.image_label.setText(f"{opening}<br>{text}" if opening else text)
