"""The Export panel's model and report section: the current model as TorchScript or ONNX, and
the project report (HTML), written into the panel's output folder.

Both run in a worker thread (the core's :func:`~napari_crack_al.core.export.model_export.export_model`
and :func:`~napari_crack_al.core.export.report.write_report`, as the command line's
``export-model`` and ``report``); files are never replaced unless "Overwrite" is ticked.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from qtpy.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from . import notify
from .worker import BackgroundJob, JobOutcome

__all__ = ["ModelReportBox", "MODEL_FILES", "REPORT_FILE"]

#: File names written into the output folder, per model format.
MODEL_FILES = {"torchscript": "model.pt", "onnx": "model.onnx"}
REPORT_FILE = "report.html"


def onnx_available() -> bool:
    """Whether the optional ONNX packages are installed (``napari-crack-al[onnx]``)."""
    return importlib.util.find_spec("onnx") is not None


class ModelReportBox(QGroupBox):
    """Buttons for the model and the report of the export panel ``panel``.

    Parameters
    ----------
    panel : ExportWidget
        Gives the session, the output folder and the overwrite choice.
    """

    def __init__(self, panel: Any) -> None:
        super().__init__("Model and report")
        self.panel = panel
        self.job: BackgroundJob | None = None
        self.torchscript_button = QPushButton("Model (TorchScript)")
        self.torchscript_button.setToolTip("Write the current model as TorchScript (model.pt + model.pt.json) "
                                           "for use without this plugin")
        self.torchscript_button.clicked.connect(lambda: self.export_model("torchscript"))
        self.onnx_button = QPushButton("Model (ONNX)")
        self.onnx_button.setToolTip("Write the current model as ONNX (model.onnx + model.onnx.json)"
                                    + ("" if onnx_available() else
                                       "; needs the onnx package: pip install 'napari-crack-al[onnx]'"))
        self.onnx_button.clicked.connect(lambda: self.export_model("onnx"))
        self.report_button = QPushButton("Report (HTML)")
        self.report_button.setToolTip("Write report.html: progress, models, measurements, plots")
        self.report_button.clicked.connect(self.write_report)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        row = QHBoxLayout()
        for b in (self.torchscript_button, self.onnx_button, self.report_button):
            row.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.status_label)
        self.set_project(None)

    def set_project(self, project: Any) -> None:
        """Enable what the open project allows."""
        has_model = project is not None and project.current_model() is not None
        self.torchscript_button.setEnabled(has_model)
        self.onnx_button.setEnabled(has_model and onnx_available())
        self.report_button.setEnabled(project is not None)

    @property
    def running(self) -> bool:
        """Whether an export of the model or the report is running."""
        return self.job is not None and self.job.running

    def _start(self, what: str, work: Any) -> BackgroundJob | None:
        if self.running:
            notify.info("An export is already running.")
            return None
        for b in (self.torchscript_button, self.onnx_button, self.report_button):
            b.setEnabled(False)
        self.status_label.setText(f"Writing {what} …")
        self.job = BackgroundJob(work, on_done=lambda outcome: self._done(what, outcome),
                                 description=f"Crack AL: {what}").start()
        return self.job

    def _target(self, name: str) -> Path | None:
        out = self.panel.output_folder()
        if self.panel.session.project is None or out is None:
            notify.warning("Open a project first (Crack project panel).")
            return None
        with notify.reporting("Export"):
            out.mkdir(parents=True, exist_ok=True)
            return out / name
        return None

    def export_model(self, fmt: str) -> BackgroundJob | None:
        """Export the current model as ``fmt`` ("torchscript" or "onnx") into the output folder."""
        from ..core.export.model_export import export_model

        project = self.panel.session.project
        model = project.current_model() if project is not None else None
        target = self._target(MODEL_FILES[fmt])
        if model is None or target is None:
            return None
        force = self.panel.force_check.isChecked()
        return self._start(f"the model ({fmt})",
                           lambda: export_model(model["path"], target, fmt=fmt, force=force))

    def write_report(self) -> BackgroundJob | None:
        """Write the project report (HTML) into the output folder."""
        from ..core.export.report import write_report

        project = self.panel.session.project
        target = self._target(REPORT_FILE)
        if project is None or target is None:
            return None
        force = self.panel.force_check.isChecked()
        return self._start("the report", lambda: write_report(project, target, force=force))

    def _done(self, what: str, outcome: JobOutcome) -> None:
        self.set_project(self.panel.session.project)
        if outcome.error is not None:
            self.status_label.setText(notify.report(outcome.error, f"Export {what}"))
            return
        if outcome.cancelled or outcome.value is None:
            self.status_label.setText("")
            return
        text = f"Wrote {outcome.value.path}"
        self.status_label.setText(text)
        notify.info(text)
