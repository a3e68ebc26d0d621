"""The "Train" dock widget: one click on **Retrain & suggest next** runs an active-learning round.

The round (:func:`~napari_crack_al.core.active.round.run_round`) runs in a napari
thread worker: it snapshots the accepted masks, trains (warm start from the
current model), registers the new model, re-scores the images waiting in the
queue, writes their suggestions and re-sorts the queue. The UI thread only
shows progress; the annotator keeps annotating meanwhile (only the Retrain
button is disabled).

When the round finishes the queue table is refreshed and the top image opens with
the new model's suggestion as an editable mask, and its crack probability as an
overlay (Shift+O) - unless the annotator has edited the image on screen since it
was opened: that image then stays, and a notification says the new suggestions
are ready (Shift+N opens the top image). Nothing typed is ever lost either way.

Cancel stops the round at its next check (within a training step); the previous
model stays current. Errors become notifications; out-of-memory errors come with
advice instead of a traceback.

This module lays the panel out and starts, cancels and ties rounds to the open
project; the settings form is in :mod:`.train_settings` and the display of a
running round and its outcome in :mod:`.train_progress` (their public names are
re-exported here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from ..core.active.round import RoundFinished, run_round
from ..core.errors import CrackALError
from ..core.events import CancelToken
from . import notify
from .metrics_plot import MetricsPlot
from .session import AnnotationSession, get_session, unwrap_viewer
from .shortcuts import RETRAIN_KEY, bind_shortcuts, tooltip_with_key
from .train_progress import LOSSES_META, RoundProgressMixin
from .train_settings import SETTINGS_META, TrainSettingsMixin, panel_defaults
from .worker import BackgroundJob

if TYPE_CHECKING:  # pragma: no cover
    import napari.viewer

__all__ = ["TrainWidget", "panel_defaults", "SETTINGS_META", "LOSSES_META"]


def _configure_threads() -> None:
    from ..core.device import configure_threads

    configure_threads(1)  # one core stays with the UI


class TrainWidget(TrainSettingsMixin, RoundProgressMixin, QWidget):
    """Dock widget: Retrain & suggest next, preset, device, advanced settings, progress, plot, Cancel.

    The settings form (:class:`~.train_settings.TrainSettingsMixin`) and the display of a
    round (:class:`~.train_progress.RoundProgressMixin`) are mixed in.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer (napari passes it when the widget is added from the manifest).

    Attributes
    ----------
    train_overrides : dict
        Extra :class:`TrainConfig` fields applied last (tests, power users).
    job : BackgroundJob or None
        The running (or last) round.
    last_result : RoundFinished or None
        The outcome of the last round that finished.
    """

    def __init__(self, viewer: napari.viewer.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = unwrap_viewer(viewer)
        self.session: AnnotationSession = get_session(self.viewer)
        self.train_overrides: dict[str, Any] = {}
        self.job: BackgroundJob | None = None
        self.last_result: RoundFinished | None = None
        self._device_job: BackgroundJob | None = None
        self._on_gpu = False
        self._alive = True

        self.model_label = QLabel("No project open")
        self.model_label.setWordWrap(True)
        self._build_settings_form()

        self.retrain_button = QPushButton("Retrain && suggest next")
        self.retrain_button.setToolTip(tooltip_with_key(
            "Train on the accepted masks (warm start), re-rank the queue and open the top image with the "
            "new suggestion; you can keep annotating meanwhile", RETRAIN_KEY))
        self.retrain_button.clicked.connect(self.retrain)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the round; the current model is kept")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("idle")
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.plot = MetricsPlot(colors=self._theme_colors())

        top = QFormLayout()
        top.addRow("Preset", self.preset_combo)
        top.addRow("Device", self.device_combo)
        top.addRow("Round time", self.seconds_spin)
        buttons = QHBoxLayout()
        buttons.addWidget(self.retrain_button, 1)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.model_label)
        layout.addLayout(top)
        layout.addWidget(self.device_label)
        layout.addLayout(buttons)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.advanced)

        self.preset_combo.currentTextChanged.connect(self._apply_defaults)
        self.device_combo.currentTextChanged.connect(self._detect_device)
        bind_shortcuts(self.viewer)
        session = self.session
        slots = ((session.project_changed, self._on_project_changed),
                 (session.retrain_requested, self.retrain))
        for signal, slot in slots:
            signal.connect(slot)

        def _teardown(*_: Any) -> None:
            self._alive = False
            for signal, slot in slots:
                signal.disconnect(slot, missing_ok=True)
            for job in (self.job, self._device_job):
                if job is not None:
                    job.cancel()

        self.destroyed.connect(_teardown)
        self._apply_defaults()
        self._detect_device()
        self._on_project_changed(session.project)

    # ------------------------------------------------------------------ plot colours
    def _theme_colors(self) -> dict[str, str]:
        try:
            from napari.utils.theme import get_theme

            theme = get_theme(self.viewer.theme)
            return {"background": theme.background.as_hex(), "foreground": theme.foreground.as_hex(),
                    "text": theme.text.as_hex()}
        except Exception:  # noqa: BLE001 - default colours
            return {}

    # ------------------------------------------------------------------ round
    @property
    def running(self) -> bool:
        """Whether a round is running."""
        return self.job is not None and self.job.running

    def retrain(self) -> BackgroundJob | None:
        """Start a round in a worker thread (Shift+R); returns its job (None when not started)."""
        session = self.session
        project = session.project
        if project is None:
            notify.warning("Open a project first (Crack project panel).")
            return None
        if self.running:
            notify.info("A round is already running; Cancel stops it.")
            return None
        try:
            session.save_current()  # the round's snapshot includes the edits on screen
            config = self.round_config()
            project.set_meta(SETTINGS_META, self.settings())
        except Exception as exc:  # noqa: BLE001
            if not notify.is_user_error(exc):
                raise
            notify.report(exc, "Retrain")
            return None
        n_round = max((int(m["round"]) for m in project.models()), default=0) + 1
        self.plot.start_round(f"Round {n_round} losses")
        self.last_result = None
        token = CancelToken()
        self.job = BackgroundJob(lambda: run_round(project, config, cancel=token), cancel=token,
                                 on_event=self._on_event, on_done=self._on_done, setup=_configure_threads,
                                 description="Crack AL: retrain & suggest next" if self.activity_check.isChecked()
                                 else "")
        self._set_running(True)
        self._set_progress(0, 0, "Starting…")
        self.status_label.setText(f"Round {n_round} started — you can keep annotating.")
        self.job.start()
        return self.job

    def cancel(self) -> None:
        """Stop the running round (the current model is kept)."""
        if self.running:
            assert self.job is not None
            self.job.cancel()
            self.cancel_button.setEnabled(False)
            self.status_label.setText("Cancelling…")

    # ------------------------------------------------------------------ project
    def _on_project_changed(self, project: Any) -> None:
        if self.running:
            assert self.job is not None
            self.job.cancel()  # the round belongs to the project that was closed
        self._set_running(self.running)
        if project is None:
            self.model_label.setText("No project open")
            self.plot.set_models([])
            self.plot.start_round("Losses")
            return
        try:
            stored = project.get_meta(SETTINGS_META)
            if isinstance(stored, dict):
                self.apply_settings(stored)
            losses = project.get_meta(LOSSES_META)
            if isinstance(losses, dict) and isinstance(losses.get("curves"), dict):
                self.plot.set_losses(losses["curves"], str(losses.get("title", "Last round losses")))
            else:
                self.plot.start_round("Losses")
            self._show_models(project)
        except (CrackALError, OSError, ValueError) as exc:
            notify.report(exc, "Read the project's models")
