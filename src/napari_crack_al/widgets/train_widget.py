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
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible

from ..core.active.round import RoundConfig, RoundFinished, run_round
from ..core.active.strategies import STRATEGY_NAMES
from ..core.errors import CrackALError
from ..core.events import CancelToken, CheckpointEvent, MessageEvent, ProgressEvent, StepEvent, ValidationEvent
from ..core.training.config import DEVICES, PRESET_NAMES, TRAIN_MODES, TrainConfig
from . import notify
from .metrics_plot import METRIC_KEYS, MetricsPlot
from .session import AnnotationSession, get_session, unwrap_viewer
from .shortcuts import NEXT_KEY, RETRAIN_KEY, bind_shortcuts, key_text, tooltip_with_key
from .worker import OUT_OF_MEMORY_ADVICE, BackgroundJob, JobOutcome, is_out_of_memory

if TYPE_CHECKING:  # pragma: no cover
    import napari.viewer

__all__ = ["TrainWidget", "panel_defaults", "software_opengl", "SETTINGS_META", "LOSSES_META"]

logger = logging.getLogger(__name__)

SETTINGS_META = "train_panel"  # the panel's settings, restored when the project is reopened
LOSSES_META = "train_panel_losses"  # loss curve of the last round, for the plot after a restart
STRATEGIES = tuple(s for s in STRATEGY_NAMES if s != "disagreement")  # a round keeps no student
_PHASES = {"loading": "Loading images", "scoring": "Scoring the queue", "embedding annotated": "Embedding"}


def panel_defaults(preset: str, on_gpu: bool) -> dict[str, Any]:
    """Iterations, crop size and mode of a round for a preset: short supervised rounds on a CPU.

    On two CPU cores a semi-supervised step costs about 2.5 supervised ones, and the EMA teacher
    it saves lags behind a short run; the first rounds are quick and supervised there, each
    round then starting from the previous model. A GPU trains the U2PL way from the start.
    """
    if on_gpu:
        steps, crop = (1000, 256) if preset == "fast" else (2000, 512)
        return {"iterations": steps, "crop_size": crop, "mode": "semi"}
    return {"iterations": 200 if preset == "fast" else 60, "crop_size": 128, "mode": "supervised"}


@functools.lru_cache(maxsize=1)
def software_opengl() -> bool:
    """Whether napari draws with a software OpenGL renderer (llvmpipe: remote desktops, Xvfb).

    There, napari's activity indicator (an animated GIF that makes Qt compose the
    whole OpenGL window at every frame) takes a CPU core away from training, so
    the Train panel does not use napari's activity dock by default.
    """
    try:
        from napari._vispy.utils.gl import _opengl_context
        from vispy.gloo import gl

        with _opengl_context():
            renderer = str(gl.glGetParameter(gl.GL_RENDERER)).lower()
    except Exception:  # noqa: BLE001 - unknown: assume a GPU
        return False
    return any(word in renderer for word in ("llvmpipe", "softpipe", "swrast", "swiftshader", "software"))


def _describe(choice: str) -> tuple[str, bool]:
    """``(description, on_gpu)`` of the device ``choice`` (imports torch: run it in a worker)."""
    from ..core.device import configure_threads, describe_device, select_device

    configure_threads(1)
    device = select_device(choice)
    return describe_device(device), device.type != "cpu"


def _configure_threads() -> None:
    from ..core.device import configure_threads

    configure_threads(1)  # one core stays with the UI


def _release_gpu_memory() -> None:
    """Give the GPU memory cached by torch back (no gc.collect(): it would stall the UI)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


class TrainWidget(QWidget):
    """Dock widget: Retrain & suggest next, preset, device, advanced settings, progress, plot, Cancel.

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
        self.preset_combo = QComboBox()
        self.preset_combo.addItems(list(PRESET_NAMES))
        self.preset_combo.setToolTip("fast: ResNet-18, for a laptop CPU; accurate: ResNet-50, for a GPU "
                                     "(a new preset starts a new model only in a new project)")
        self.device_combo = QComboBox()
        self.device_combo.addItems(list(DEVICES))
        self.device_combo.setToolTip("auto: the GPU (CUDA or Apple MPS) when there is one, else the CPU")
        self.device_label = QLabel("Detecting the device…")
        self.device_label.setWordWrap(True)

        self.iterations_spin = QSpinBox()
        self.iterations_spin.setRange(1, 1_000_000)
        self.iterations_spin.setToolTip("Training steps per round")
        self.crop_spin = QSpinBox()
        self.crop_spin.setRange(32, 2048)
        self.crop_spin.setSingleStep(16)
        self.crop_spin.setToolTip("Training crop side in pixels (multiple of 16; smaller uses less memory)")
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 256)
        self.batch_spin.setValue(4)
        self.batch_spin.setToolTip("Crops per training step (smaller uses less memory)")
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(list(TRAIN_MODES))
        self.mode_combo.setToolTip("semi: also learns from the images not annotated yet (U2PL); "
                                   "supervised: from the accepted masks only (faster)")
        self.strategy_combo = QComboBox()
        self.strategy_combo.addItems(list(STRATEGIES))
        self.strategy_combo.setCurrentText("hybrid")
        self.strategy_combo.setToolTip("How the queue is ranked: hybrid = uncertain AND diverse images first")
        self.k_spin = QSpinBox()
        self.k_spin.setRange(1, 1000)
        self.k_spin.setValue(5)
        self.k_spin.setToolTip("Images chosen together as the next batch at the top of the queue")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.heldout_spin = QDoubleSpinBox()
        self.heldout_spin.setRange(0.0, 0.5)
        self.heldout_spin.setSingleStep(0.05)
        self.heldout_spin.setValue(0.2)
        self.heldout_spin.setToolTip("Share of the accepted images kept out of training to measure the "
                                     "model (from 5 accepted images on)")
        self.activity_check = QCheckBox("Progress in napari's activity dock")
        self.activity_check.setChecked(not software_opengl())
        self.activity_check.setToolTip("Also show the round's progress in napari's activity dock (bottom right). "
                                       "Off by default with software OpenGL (remote desktop), where its "
                                       "animation slows training down")
        advanced = QCollapsible("Advanced settings")
        inner = QWidget()
        form = QFormLayout(inner)
        for label, w in (("Iterations", self.iterations_spin), ("Crop size", self.crop_spin),
                         ("Batch size", self.batch_spin), ("Mode", self.mode_combo),
                         ("Strategy", self.strategy_combo), ("Images per batch", self.k_spin),
                         ("Seed", self.seed_spin), ("Held-out fraction", self.heldout_spin)):
            form.addRow(label, w)
        form.addRow(self.activity_check)
        advanced.addWidget(inner)
        self.advanced = advanced

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
        layout.addWidget(advanced)

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

    # ------------------------------------------------------------------ settings
    def _theme_colors(self) -> dict[str, str]:
        try:
            from napari.utils.theme import get_theme

            theme = get_theme(self.viewer.theme)
            return {"background": theme.background.as_hex(), "foreground": theme.foreground.as_hex(),
                    "text": theme.text.as_hex()}
        except Exception:  # noqa: BLE001 - default colours
            return {}

    def _apply_defaults(self, *_: Any) -> None:
        d = panel_defaults(self.preset_combo.currentText(), self._on_gpu)
        self.iterations_spin.setValue(d["iterations"])
        self.crop_spin.setValue(d["crop_size"])
        self.mode_combo.setCurrentText(d["mode"])

    def settings(self) -> dict[str, Any]:
        """The panel's settings as a JSON-able dict (stored in the project at each round)."""
        return {"preset": self.preset_combo.currentText(), "device": self.device_combo.currentText(),
                "iterations": self.iterations_spin.value(), "crop_size": self.crop_spin.value(),
                "batch_size": self.batch_spin.value(), "mode": self.mode_combo.currentText(),
                "strategy": self.strategy_combo.currentText(), "k": self.k_spin.value(),
                "seed": self.seed_spin.value(), "heldout_fraction": round(self.heldout_spin.value(), 4)}

    def apply_settings(self, values: dict[str, Any]) -> None:
        """Set the panel from :meth:`settings` values (unknown or invalid ones are ignored)."""
        combos = {"preset": self.preset_combo, "device": self.device_combo, "mode": self.mode_combo,
                  "strategy": self.strategy_combo}
        spins = {"iterations": self.iterations_spin, "crop_size": self.crop_spin, "batch_size": self.batch_spin,
                 "k": self.k_spin, "seed": self.seed_spin, "heldout_fraction": self.heldout_spin}
        for key, combo in combos.items():
            if key in values and combo.findText(str(values[key])) >= 0:
                combo.blockSignals(key == "preset")  # keep the stored iterations and crop
                combo.setCurrentText(str(values[key]))
                combo.blockSignals(False)
        for key, spin in spins.items():
            if isinstance(values.get(key), (int, float)):
                spin.setValue(values[key])

    def round_config(self) -> RoundConfig:
        """The :class:`RoundConfig` of the panel's settings (ConfigError when invalid)."""
        s = self.settings()
        train = TrainConfig.from_preset(s["preset"], iterations=s["iterations"], crop_size=s["crop_size"],
                                        batch_size=s["batch_size"], unlabeled_batch_size=s["batch_size"],
                                        mode=s["mode"], seed=s["seed"], device=s["device"],
                                        **self.train_overrides)
        return RoundConfig(train=train, strategy=s["strategy"], batch_size=s["k"],
                           heldout_fraction=s["heldout_fraction"], seed=s["seed"],
                           mc_passes=4 if s["strategy"] == "bald" else 0)

    def _detect_device(self, *_: Any) -> None:
        choice = self.device_combo.currentText()
        self.device_label.setText("Detecting the device…")
        if self._device_job is not None and self._device_job.running:
            self._device_job.cancel()
        self._device_job = BackgroundJob(lambda: _describe(choice),
                                         on_done=lambda outcome: self._device_found(outcome, choice)).start()

    def _device_found(self, outcome: JobOutcome, choice: str) -> None:
        if not self._alive or choice != self.device_combo.currentText():
            return
        if outcome.error is not None:
            self.device_label.setText(str(outcome.error))
            return
        if outcome.value is None:
            return
        text, on_gpu = outcome.value
        if on_gpu:
            self.device_label.setText(f"Runs on the GPU — {text}")
        elif choice == "auto":
            self.device_label.setText(f"Runs on the CPU — {text}; no GPU found")
        else:
            self.device_label.setText(f"Runs on the CPU — {text}")
        if on_gpu != self._on_gpu:
            self._on_gpu = on_gpu
            if self.session.project is None or not self.session.project.get_meta(SETTINGS_META):
                self._apply_defaults()

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
                                 else "", freeze_gc=True)
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

    def _set_running(self, running: bool) -> None:
        self.retrain_button.setEnabled(not running and self.session.project is not None)
        self.cancel_button.setEnabled(running)

    def _set_progress(self, done: int, total: int, text: str) -> None:
        self.progress_bar.setRange(0, max(0, total))
        self.progress_bar.setValue(min(done, total) if total else 0)
        self.progress_bar.setFormat(f"{text} %v/%m" if total else text)
        if self.job is not None:
            self.job.progress(done, total, f"Crack AL: {text.lower()}")

    def _on_event(self, ev: Any) -> None:
        if not self._alive:
            return
        if isinstance(ev, StepEvent):
            self.plot.add_losses(ev.step, ev.losses)
            self._set_progress(ev.step, ev.total_steps, "Training")
            total = ev.losses.get("total")
            if total is not None:
                self.status_label.setText(f"Training step {ev.step}/{ev.total_steps} — loss {total:.3f}")
        elif isinstance(ev, ProgressEvent):
            self._set_progress(ev.done, ev.total, _PHASES.get(ev.what, ev.what.capitalize() or "Working"))
        elif isinstance(ev, ValidationEvent):
            f1 = ev.metrics.get("f1")
            if f1 is not None:
                self.status_label.setText(f"Held-out F1 after step {ev.step}: {f1:.3f}")
        elif isinstance(ev, CheckpointEvent) and ev.metadata.get("final"):
            self.status_label.setText(f"Model {ev.metadata.get('model_version', '')} saved; scoring the queue…")
            if self.session.project is not None:
                self._show_models(self.session.project)
        elif isinstance(ev, MessageEvent):
            logger.info("%s", ev.text)
            self.status_label.setText(ev.text)
        elif isinstance(ev, RoundFinished):
            self.last_result = ev

    def _on_done(self, outcome: JobOutcome) -> None:
        if not self._alive:
            return
        _release_gpu_memory()
        self._set_running(False)
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("idle")
        project = self.session.project
        if isinstance(outcome.value, RoundFinished):
            self.last_result = outcome.value
            with notify.reporting("Show the new suggestions"):
                self._apply_round(outcome.value)
        elif outcome.error is not None:
            self._report_error(outcome.error)
        else:
            current = project.current_model() if project is not None else None
            kept = f"the model {current['version']} is kept" if current else "no model was saved"
            self.status_label.setText(f"Round cancelled: {kept}.")
            notify.info(f"Round cancelled: {kept}.")
        if project is not None:
            self._show_models(project)

    def _report_error(self, exc: BaseException) -> None:
        if is_out_of_memory(exc):
            msg = f"Retrain {OUT_OF_MEMORY_ADVICE}"
            logger.warning("out of memory during a round: %s", exc)
            notify.error(msg)
        elif notify.is_user_error(exc):
            msg = notify.report(exc, "Retrain")
        else:
            logger.error("the round failed", exc_info=(type(exc), exc, exc.__traceback__))
            msg = f"Retrain failed: {type(exc).__name__}: {exc}"
            notify.error(msg)
        self.status_label.setText(msg)

    def _apply_round(self, result: RoundFinished) -> None:
        session = self.session
        project = session.project
        if project is None:
            return
        if result.checkpoint is not None:
            project.set_meta(LOSSES_META, {"version": result.model_version, "title": self.plot.loss_title,
                                           "curves": self.plot.loss_history()})
        session.queue_reranked()
        top = project.next_name()
        if result.checkpoint is None:
            done = "No image is accepted yet: the queue is ranked by diversity (no model trained)."
        else:
            done = (f"Round {result.round_index} done: model {result.model_version} "
                    f"(trained {result.train_seconds:.0f} s, scored {result.score_seconds:.0f} s).")
        if top is None:
            self.status_label.setText(f"{done} No image waits in the queue.")
        elif session.current_name is None or not session.touched():
            session.load(top, force=True)  # saves the current mask first
            self.status_label.setText(f"{done} Opened {top}, the top of the new queue.")
        else:
            session.refresh_overlay()
            self.status_label.setText(f"{done} You were editing {session.current_name}: it stays open.")
            notify.info(f"New suggestions from {result.model_version} are ready: press {key_text(NEXT_KEY)} "
                        f"(Next suggestion) to open {top}.")

    # ------------------------------------------------------------------ project
    def _show_models(self, project: Any) -> None:
        models = project.models()
        self.plot.set_models(models)
        current = models[-1] if models else None
        if current is None:
            self.model_label.setText("Model: none yet — accept a few masks, then Retrain & suggest next.")
            return
        metrics = current.get("metrics") or {}
        parts = [f"Model: <b>{current['version']}</b> (round {current['round']}, {len(models)} trained)"]
        shown = [f"{label} {metrics[k]:.2f}" for k, label in METRIC_KEYS.items() if k in metrics]
        if shown:
            n = metrics.get("n_images")
            parts.append("held-out " + ", ".join(shown) + (f" on {int(n)} image(s)" if n else ""))
        self.model_label.setText(" — ".join(parts))

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
