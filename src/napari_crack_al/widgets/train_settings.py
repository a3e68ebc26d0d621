"""The settings form of the Train panel: preset, device and the advanced settings of a round.

:class:`TrainSettingsMixin` builds the form's widgets, fills in the defaults of a
preset (:func:`panel_defaults`), reads the form as a JSON-able dict or a
:class:`~napari_crack_al.core.active.round.RoundConfig`, restores it from the
project, and detects the device in a worker thread. It is mixed into
:class:`~napari_crack_al.widgets.train_widget.TrainWidget`, which re-exports
this module's public names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QWidget,
)
from superqt import QCollapsible

from ..core.active.round import RoundConfig
from ..core.active.strategies import STRATEGY_NAMES
from ..core.training.config import DEVICES, PRESET_NAMES, TRAIN_MODES, TrainConfig
from .worker import BackgroundJob, JobOutcome

if TYPE_CHECKING:  # pragma: no cover
    from .session import AnnotationSession

__all__ = ["TrainSettingsMixin", "panel_defaults", "SETTINGS_META", "STRATEGIES"]

SETTINGS_META = "train_panel"  # the panel's settings, restored when the project is reopened
STRATEGIES = tuple(s for s in STRATEGY_NAMES if s != "disagreement")  # a round keeps no student


#: Round time (seconds of training) on a CPU: a round ends while the annotator works on an image.
CPU_ROUND_SECONDS = 60
#: Round time on a GPU.
GPU_ROUND_SECONDS = 120


def panel_defaults(preset: str, on_gpu: bool) -> dict[str, Any]:
    """Round time, iterations, crop size and mode of a round for a preset.

    A round is sized in seconds (the steps are planned from the step time measured on this
    machine); ``iterations`` is used only when the round time is set to 0. On two CPU
    cores a semi-supervised step costs about 2.5 supervised ones, and the EMA teacher it
    saves lags behind a short run; the first rounds are quick and supervised there, each
    round then starting from the previous model. A GPU trains the U2PL way from the start.
    """
    if on_gpu:
        steps, crop = (1000, 256) if preset == "fast" else (2000, 512)
        return {"seconds": GPU_ROUND_SECONDS, "iterations": steps, "crop_size": crop,
                "mode": "semi"}
    return {"seconds": CPU_ROUND_SECONDS, "iterations": 200 if preset == "fast" else 60,
            "crop_size": 128, "mode": "supervised"}


def _describe(choice: str) -> tuple[str, bool]:
    """``(description, on_gpu)`` of the device ``choice`` (imports torch: run it in a worker)."""
    from ..core.device import configure_threads, describe_device, select_device

    configure_threads(1)
    device = select_device(choice)
    return describe_device(device), device.type != "cpu"


class TrainSettingsMixin:
    """The settings form of the :class:`TrainWidget` (mixed into it)."""

    # provided by TrainWidget
    session: AnnotationSession
    train_overrides: dict[str, Any]
    _device_job: BackgroundJob | None
    _on_gpu: bool
    _alive: bool

    def _build_settings_form(self) -> None:
        """Make the preset and device choices and the "Advanced settings" section."""
        self.preset_combo = QComboBox()
        self.preset_combo.addItems(list(PRESET_NAMES))
        self.preset_combo.setToolTip("fast: ResNet-18, for a laptop CPU; accurate: ResNet-50, for a GPU "
                                     "(a new preset starts a new model only in a new project)")
        self.device_combo = QComboBox()
        self.device_combo.addItems(list(DEVICES))
        self.device_combo.setToolTip("auto: the GPU (CUDA or Apple MPS) when there is one, else the CPU")
        self.device_label = QLabel("Detecting the device…")
        self.device_label.setWordWrap(True)

        self.seconds_spin = QSpinBox()
        self.seconds_spin.setRange(0, 24 * 3600)
        self.seconds_spin.setSingleStep(15)
        self.seconds_spin.setSuffix(" s")
        self.seconds_spin.setSpecialValueText("use Iterations")
        self.seconds_spin.setToolTip("Training time of a round: the steps are planned from the step time "
                                     "measured on this machine (0: a fixed number of Iterations)")
        self.iterations_spin = QSpinBox()
        self.iterations_spin.setRange(1, 1_000_000)
        self.iterations_spin.setToolTip("Training steps per round when the round time is 0")
        self.weights_edit = QLineEdit()
        self.weights_edit.setPlaceholderText("none (random initialisation)")
        self.weights_edit.setToolTip("A local file with ResNet weights for the encoder of a NEW model, e.g. "
                                     "a torchvision resnet18 state dict you downloaded. Nothing is downloaded.")
        self.weights_button = QToolButton()
        self.weights_button.setText("…")
        self.weights_button.setToolTip("Choose an encoder weights file (.pth)")
        self.weights_button.clicked.connect(self._browse_weights)
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
                                   "unimatch: the same with weak-to-strong consistency; "
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
        self.activity_check.setChecked(True)
        self.activity_check.setToolTip("Also show the round's progress in napari's activity dock (bottom right). "
                                       "With software OpenGL (a remote desktop, no graphics card) its "
                                       "animation costs CPU time: turn it off there if rounds are slow")
        advanced = QCollapsible("Advanced settings")
        inner = QWidget()
        form = QFormLayout(inner)
        weights = QHBoxLayout()
        weights.addWidget(self.weights_edit, 1)
        weights.addWidget(self.weights_button)
        for label, w in (("Iterations", self.iterations_spin), ("Crop size", self.crop_spin),
                         ("Batch size", self.batch_spin), ("Mode", self.mode_combo),
                         ("Strategy", self.strategy_combo), ("Images per batch", self.k_spin),
                         ("Seed", self.seed_spin), ("Held-out fraction", self.heldout_spin)):
            form.addRow(label, w)
        form.addRow("Encoder weights", weights)
        form.addRow(self.activity_check)
        advanced.addWidget(inner)
        self.advanced = advanced

    def _apply_defaults(self, *_: Any) -> None:
        d = panel_defaults(self.preset_combo.currentText(), self._on_gpu)
        self.seconds_spin.setValue(d["seconds"])
        self.iterations_spin.setValue(d["iterations"])
        self.crop_spin.setValue(d["crop_size"])
        self.mode_combo.setCurrentText(d["mode"])

    def settings(self) -> dict[str, Any]:
        """The panel's settings as a JSON-able dict (stored in the project at each round)."""
        return {"preset": self.preset_combo.currentText(), "device": self.device_combo.currentText(),
                "seconds": self.seconds_spin.value(), "encoder_weights": self.weights_edit.text().strip(),
                "iterations": self.iterations_spin.value(), "crop_size": self.crop_spin.value(),
                "batch_size": self.batch_spin.value(), "mode": self.mode_combo.currentText(),
                "strategy": self.strategy_combo.currentText(), "k": self.k_spin.value(),
                "seed": self.seed_spin.value(), "heldout_fraction": round(self.heldout_spin.value(), 4)}

    def apply_settings(self, values: dict[str, Any]) -> None:
        """Set the panel from :meth:`settings` values (unknown or invalid ones are ignored)."""
        combos = {"preset": self.preset_combo, "device": self.device_combo, "mode": self.mode_combo,
                  "strategy": self.strategy_combo}
        spins = {"seconds": self.seconds_spin, "iterations": self.iterations_spin, "crop_size": self.crop_spin,
                 "batch_size": self.batch_spin, "k": self.k_spin, "seed": self.seed_spin,
                 "heldout_fraction": self.heldout_spin}
        for key, combo in combos.items():
            if key in values and combo.findText(str(values[key])) >= 0:
                combo.blockSignals(key == "preset")  # keep the stored iterations and crop
                combo.setCurrentText(str(values[key]))
                combo.blockSignals(False)
        for key, spin in spins.items():
            if isinstance(values.get(key), (int, float)):
                spin.setValue(values[key])
        if isinstance(values.get("encoder_weights"), str):
            self.weights_edit.setText(values["encoder_weights"])

    def round_config(self) -> RoundConfig:
        """The :class:`RoundConfig` of the panel's settings (ConfigError when invalid)."""
        s = self.settings()
        extra: dict[str, Any] = {"seconds": float(s["seconds"]) if s["seconds"] else None}
        if s["encoder_weights"]:
            from pathlib import Path

            from ..core.errors import CheckpointError

            path = Path(s["encoder_weights"]).expanduser()
            if not path.is_file():
                raise CheckpointError(path, "encoder weights file does not exist (Train panel > "
                                            "Advanced settings)")
            extra["encoder_weights"] = str(path)
        extra.update(self.train_overrides)
        train = TrainConfig.from_preset(s["preset"], iterations=s["iterations"], crop_size=s["crop_size"],
                                        batch_size=s["batch_size"], unlabeled_batch_size=s["batch_size"],
                                        mode=s["mode"], seed=s["seed"], device=s["device"], **extra)
        return RoundConfig(train=train, strategy=s["strategy"], batch_size=s["k"],
                           heldout_fraction=s["heldout_fraction"], seed=s["seed"],
                           mc_passes=4 if s["strategy"] == "bald" else 0)

    def _browse_weights(self) -> None:
        start = self.weights_edit.text().strip() or ""
        path, _ = QFileDialog.getOpenFileName(self.weights_button, "Encoder weights (ResNet state dict)", start,
                                              "PyTorch weights (*.pth *.pt);;All files (*)")
        if path:
            self.weights_edit.setText(path)

    # ------------------------------------------------------------------ device
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
