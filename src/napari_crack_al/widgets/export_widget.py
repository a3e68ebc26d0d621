"""The "Export" dock widget: write the project's masks (and crack measurements) to a folder.

Runs :func:`~napari_crack_al.core.export.masks.iter_export_masks` in a worker
thread: ``OUT/NAME.png`` (or ``.tif``) per image with crack = 255 (or 1), plus
``manifest.csv``, ``measurements.csv`` and ``measurements_summary.csv`` (see
``docs/export.md``). An export that would overwrite files writes nothing unless
"Overwrite" is ticked.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.export.masks import EXPORT_FORMATS, EXPORT_INCLUDE, EXPORT_VALUES, ExportResult, iter_export_masks
from ..core.events import ProgressEvent
from . import notify
from .session import AnnotationSession, get_session, unwrap_viewer
from .export_extras import ModelReportBox
from .worker import BackgroundJob, JobOutcome

if TYPE_CHECKING:  # pragma: no cover
    import napari.viewer

__all__ = ["ExportWidget", "DEFAULT_EXPORT_DIRNAME"]

DEFAULT_EXPORT_DIRNAME = "export"
_INCLUDE_TEXT = {"annotated": "accepted masks",
                 "annotated+suggested": "accepted masks + drafts + suggestions"}


class ExportWidget(QWidget):
    """Dock widget: export masks as PNG/TIFF with values 255 or 1, with crack measurements.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer (napari passes it when the widget is added from the manifest).

    Attributes
    ----------
    job : BackgroundJob or None
        The running (or last) export.
    last_result : ExportResult or None
        What the last successful export wrote.
    """

    def __init__(self, viewer: napari.viewer.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = unwrap_viewer(viewer)
        self.session: AnnotationSession = get_session(self.viewer)
        self.job: BackgroundJob | None = None
        self.last_result: ExportResult | None = None
        self._alive = True

        self.format_combo = QComboBox()
        self.format_combo.addItems(list(EXPORT_FORMATS))
        self.format_combo.setToolTip("File format of the masks (named after their images)")
        self.values_combo = QComboBox()
        self.values_combo.addItems([str(v) for v in EXPORT_VALUES])
        self.values_combo.setToolTip("Pixel value of crack (background is 0): 255 to view, 1 for training tools")
        self.include_combo = QComboBox()
        for key in EXPORT_INCLUDE:
            self.include_combo.addItem(_INCLUDE_TEXT.get(key, key), key)
        self.include_combo.setToolTip("Only the masks you accepted, or also the images not annotated yet as "
                                      "you see them: your unaccepted corrections (draft) where there are "
                                      "some, else the model's suggestion")
        self.force_check = QCheckBox("Overwrite existing files")
        self.force_check.setToolTip("Without it, an export that would replace any file writes nothing")
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("output folder (default: PROJECT/export)")
        self.browse_button = QToolButton()
        self.browse_button.setText("…")
        self.browse_button.setToolTip("Choose the output folder")
        self.browse_button.clicked.connect(self._browse)
        self.export_button = QPushButton("Export masks")
        self.export_button.setToolTip("Write the masks, manifest.csv and the crack measurements")
        self.export_button.clicked.connect(self.export)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)

        folder = QHBoxLayout()
        folder.addWidget(self.folder_edit, 1)
        folder.addWidget(self.browse_button)
        form = QFormLayout()
        form.addRow("Format", self.format_combo)
        form.addRow("Crack value", self.values_combo)
        form.addRow("Include", self.include_combo)
        form.addRow("Folder", folder)
        form.addRow(self.force_check)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.export_button)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        self.model_report = ModelReportBox(self)
        layout.addWidget(self.model_report)
        layout.addStretch(1)

        self.session.project_changed.connect(self._on_project_changed)
        self.session.queue_changed.connect(self._on_queue_changed)  # a round may add a model

        def _teardown(*_: Any) -> None:
            self._alive = False
            self.session.project_changed.disconnect(self._on_project_changed, missing_ok=True)
            self.session.queue_changed.disconnect(self._on_queue_changed, missing_ok=True)

        self.destroyed.connect(_teardown)
        self._on_project_changed(self.session.project)

    # ------------------------------------------------------------------ actions
    def output_folder(self) -> Path | None:
        """The folder typed, else ``PROJECT/export`` (None without a project)."""
        text = self.folder_edit.text().strip()
        if text:
            return Path(text).expanduser()
        project = self.session.project
        return None if project is None else Path(project.root) / DEFAULT_EXPORT_DIRNAME

    def export(self) -> BackgroundJob | None:
        """Start the export in a worker thread; returns its job (None when not started)."""
        project = self.session.project
        out = self.output_folder()
        if project is None or out is None:
            notify.warning("Open a project first (Crack project panel).")
            return None
        if self.job is not None and self.job.running:
            notify.info("An export is already running.")
            return None
        with notify.reporting("Save the mask"):
            self.session.save_current()  # what is on screen is exported too
        options = dict(fmt=self.format_combo.currentText(), values=int(self.values_combo.currentText()),
                       include=self.include_combo.currentData(), force=self.force_check.isChecked())
        self.export_button.setEnabled(False)
        self.status_label.setText(f"Exporting to {out} …")
        self.job = BackgroundJob(lambda: iter_export_masks(project, out, **options), on_event=self._on_event,
                                 on_done=self._on_done, description="Crack AL: export masks").start()
        return self.job

    def _browse(self) -> None:
        start = str(self.output_folder() or Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Choose the export folder", start)
        if folder:
            self.folder_edit.setText(folder)

    # ------------------------------------------------------------------ slots
    def _on_event(self, ev: Any) -> None:
        if self._alive and isinstance(ev, ProgressEvent):
            self.progress_bar.setRange(0, max(1, ev.total))
            self.progress_bar.setValue(ev.done)
            if self.job is not None:
                self.job.progress(ev.done, ev.total, "Crack AL: export masks")

    def _on_done(self, outcome: JobOutcome) -> None:
        if not self._alive:
            return
        self.export_button.setEnabled(self.session.project is not None)
        if outcome.error is not None:
            self.progress_bar.setValue(0)
            self.status_label.setText(notify.report(outcome.error, "Export"))
            return
        result = outcome.value
        if not isinstance(result, ExportResult):
            return
        self.last_result = result
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(1)
        text = (f"Exported {result.n_masks} mask(s) ({result.n_annotated} accepted, {result.n_drafts} "
                f"drafts, {result.n_suggested} suggested) and {result.n_cracks} measured crack(s) to "
                f"{result.out_dir}")
        self.status_label.setText(text)
        notify.info(text)

    def _on_queue_changed(self) -> None:
        if self._alive and not self.model_report.running:
            self.model_report.set_project(self.session.project)

    def _on_project_changed(self, project: Any) -> None:
        if self._alive:
            self.model_report.set_project(project)
        self.export_button.setEnabled(project is not None)
        if project is None:
            self.status_label.setText("No project open")
        else:
            self.status_label.setText("")
            self.folder_edit.setPlaceholderText(str(Path(project.root) / DEFAULT_EXPORT_DIRNAME))
