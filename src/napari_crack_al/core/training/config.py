"""Training configuration (:class:`TrainConfig`), a frozen, validated, JSON-able dataclass.

This module does not import torch; :meth:`TrainConfig.from_preset` reads a preset's
crop size, batch size and iterations from :mod:`napari_crack_al.core.model.config`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from ..config_io import ConfigIO
from ..checks import Problems, is_int
from ..errors import ConfigError
from ..normalize import DEFAULT_PROFILE, PROFILE_MODES

__all__ = ["TrainConfig", "TRAIN_MODES", "SEMI_MODES", "DEVICES", "PROFILES", "PRESET_NAMES", "SAVE_WHICH"]

TRAIN_MODES = ("semi", "supervised", "unimatch")
#: The modes that learn from unlabelled images: U2PL ("semi") and weak-to-strong consistency.
SEMI_MODES = ("semi", "unimatch")
DEVICES = ("auto", "cpu", "cuda", "mps")
PROFILES = PROFILE_MODES
PRESET_NAMES = ("fast", "accurate")
SAVE_WHICH = ("teacher", "student")


_INF = math.inf
#: The numeric fields of TrainConfig: (name, low, high, low open, high open).
_NUMBER_FIELDS = (
    ("lr", 0.0, _INF, True, False), ("momentum", 0.0, 1.0, False, True),
    ("weight_decay", 0.0, _INF, False, False), ("head_lr_multiplier", 0.0, _INF, True, False),
    ("ema_max_decay", 0.0, 1.0, False, True), ("unsup_weight", 0.0, _INF, False, False),
    ("unsup_ramp", 0.0, 1.0, False, False), ("semi_entry_f1", 0.0, 1.0, False, False),
    ("strong_strength", 0.0, 1.0, False, False), ("feature_dropout", 0.0, 1.0, False, True),
    ("contrastive_weight", 0.0, _INF, False, False), ("aux_weight", 0.0, _INF, False, False),
    ("drop_start", 0.0, 100.0, False, False), ("cutmix_prob", 0.0, 1.0, False, False),
    ("crack_crop_prob", 0.0, 1.0, False, False), ("gain_jitter", 0.0, 1.0, False, True),
    ("offset_jitter", 0.0, _INF, False, False), ("warm_lr_scale", 0.0, 1.0, True, False),
    ("warm_ramp", 0.0, 0.5, False, False), ("keep_margin", 0.0, 1.0, False, False),
)


#: Bounds checked before a model is built: beyond them one step would need tens of GB.
MAX_BATCH = 1024
MAX_CROP = 4096
#: Pixels of one step (labelled + unlabelled crops): 64 crops of 1024² (GPU presets use 2 M).
MAX_STEP_PIXELS = 64 * 1024 * 1024


def _step_size_problems(batch: Any, unlabeled: Any, crop: Any) -> list[str]:
    """A step too large for any machine (the crops of one step, labelled and unlabelled)."""
    if not all(is_int(v) and v >= 1 for v in (batch, unlabeled, crop)):
        return []
    pixels = (batch + unlabeled) * crop * crop
    if pixels <= MAX_STEP_PIXELS:
        return []
    return [f"batch_size + unlabeled_batch_size = {batch + unlabeled} crops of {crop}² is "
            f"{pixels / 1e6:.0f} M pixels per step, more than {MAX_STEP_PIXELS / 1e6:.0f} M "
            "(it would need tens of GB of memory)"]


@dataclass(frozen=True)
class TrainConfig(ConfigIO):
    """Everything the trainer needs besides the data and the model architecture.

    Parameters
    ----------
    mode : {"semi", "supervised", "unimatch"}
        U2PL semi-supervised (student + EMA teacher, pseudo labels, contrastive),
        supervised only (the unlabeled images are not used), or ``"unimatch"``:
        weak-to-strong consistency with a feature-perturbation stream (UniMatch-style:
        the EMA teacher's pseudo labels from the weak view train the student on a strong
        photometric + CutMix view and on the weak view with dropout on its encoder
        features).
    preset : {"fast", "accurate"}
        Model preset (see :data:`napari_crack_al.core.model.PRESETS`).
    decoder : str or None
        Decoder of a model trained from scratch (see
        :data:`napari_crack_al.core.model.DECODERS`); None: the preset's. A warm start
        keeps the decoder of the model it starts from.
    iterations : int
        Optimisation steps N.
    batch_size : int
        Labelled crops per step.
    unlabeled_batch_size : int
        Unlabelled crops per step (semi mode).
    crop_size : int
        Square training crop in pixels (multiple of 16; small images are padded with ignore).
    lr : float
        Base learning rate of the encoder; the decoder/heads use ``lr * head_lr_multiplier``.
        Poly schedule ``lr * (1 - i / N) ** 0.9``.
    momentum : float
        SGD momentum (0.9).
    weight_decay : float
        SGD weight decay.
    head_lr_multiplier : float
        Learning-rate factor of everything that is not the encoder (10, as upstream).
    warmup_iterations : int or None
        Supervised-only steps before the unsupervised and contrastive losses start and
        the EMA ramp begins (the teacher is a copy of the student during warm-up).
        ``None`` means 10 % of ``iterations``.
    ema_max_decay : float
        Upper bound of the EMA decay ``d = min(1 - 1 / (t + 1), ema_max_decay)``.
    unsup_weight : float
        Weight of the unsupervised (pseudo-label) loss; 0 switches it off.
    unsup_ramp : float
        Share of the semi phase over which that weight ramps up linearly from 0.
    semi_entry_f1 : float
        Pseudo labels only from a teacher worth copying: a semi run from scratch stays
        supervised until the teacher's held-out F1 (without held-out images: its F1 on
        the labelled crops it trains on) reaches this; checked from the end of the
        warm-up on. A warm start is trusted at once.
    strong_strength : float
        Strength of the strong photometric view (``"unimatch"``), in [0, 1].
    feature_dropout : float
        Channel dropout on the encoder features of the perturbed stream (``"unimatch"``).
    calibrated_pseudo_labels : bool
        Cut the teacher's crack probability at the model's calibrated threshold (the
        warm start's, or the one calibrated when the gate opened) instead of 0.5.
    use_contrastive : bool
        Whether the U2PL contrastive loss is used (semi mode only).
    contrastive_weight : float
        λ, weight of the contrastive loss.
    aux_weight : float
        Weight of the auxiliary head's loss when the model has one (0.4).
    drop_start : float
        Percent of the most uncertain pseudo-labelled pixels dropped at the start of
        the semi phase (20, decays linearly to 0).
    drop_per_class : bool
        Apply that drop within each pseudo class (background, crack) rather than over
        the whole batch (U2PL's batch-wide ranking). The batch-wide ranking drops every
        crack pseudo label early on (cracks are the uncertain class); the class-wise
        one (the default) keeps the most confident of them.
    cutmix_prob : float
        Probability per unlabelled batch of applying CutMix.
    crack_crop_prob : float
        Probability that a labelled crop is centred near a random crack pixel
        (cracks are a few percent of the pixels; this balances the crops).
    flip : bool
        Random horizontal and vertical flips.
    rotate90 : bool
        Random multiples of 90° rotations (no interpolation, no padding).
    gain_jitter : float
        Random gain ``U(1 - g, 1 + g)`` on the normalised image.
    offset_jitter : float
        Random offset ``U(-o, o)`` on the normalised image.
    class_weighting : bool
        Inverse-frequency class weights in the cross-entropy terms.
    profile : {"auto", "none", "column", "row"}
        Transverse-profile removal before normalisation (see ``normalize_for_model``);
        stored with the model, so prediction, scoring and the napari display use it too.
        ``"auto"``: per-column profile for one-channel range images, none for photographs.
    seed : int
        Seed of every random choice (initialisation, sampling, augmentation).
    device : {"auto", "cpu", "cuda", "mps"}
        Compute device; "auto" picks CUDA, then MPS, then CPU.
    amp : bool
        Mixed precision (autocast + GradScaler); only ever used on CUDA.
    threads : int or None
        CPU threads for torch; ``None`` leaves one core free for a user interface.
    val_every : int
        Validate every this many steps (0: only at the end); needs validation images.
    checkpoint_every : int
        Write an intermediate checkpoint every this many steps (0: only the final one).
    save_which : {"teacher", "student"}
        Which network's weights the checkpoint holds (teacher: the EMA average,
        usually better and smoother).
    memory_size : int
        Capacity per class of the contrastive negative memory bank.
    warm_lr_scale : float
        Peak learning rate of a warm-started round as a share of ``lr`` (a trained model
        needs smaller steps than a random one).
    warm_ramp : float
        Share of a warm-started round's steps spent ramping linearly up to that peak.
    keep_margin : float
        A warm-started round whose held-out F1 falls more than this (or more than the
        standard error of the per-image difference, whichever is larger) below the
        previous model's is rejected: the previous model is kept.
    seconds : float or None
        Round budget in seconds of training: the number of steps is planned from the
        step time measured on this machine (``iterations`` is then ignored). None:
        exactly ``iterations`` steps.
    encoder_weights : str or None
        A local file with ResNet weights for the encoder (e.g. a torchvision state
        dict the user downloaded); used when training from scratch. Nothing is ever
        downloaded.
    """

    mode: str = "semi"
    preset: str = "fast"
    decoder: str | None = None
    iterations: int = 1000
    batch_size: int = 4
    unlabeled_batch_size: int = 4
    crop_size: int = 256
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    head_lr_multiplier: float = 10.0
    warmup_iterations: int | None = None
    ema_max_decay: float = 0.99
    unsup_weight: float = 1.0
    unsup_ramp: float = 0.2
    semi_entry_f1: float = 0.5
    calibrated_pseudo_labels: bool = True
    strong_strength: float = 0.5
    feature_dropout: float = 0.5
    use_contrastive: bool = True
    contrastive_weight: float = 0.1
    aux_weight: float = 0.4
    drop_start: float = 20.0
    drop_per_class: bool = True
    cutmix_prob: float = 0.5
    crack_crop_prob: float = 0.5
    flip: bool = True
    rotate90: bool = True
    gain_jitter: float = 0.1
    offset_jitter: float = 0.1
    class_weighting: bool = False
    profile: str = DEFAULT_PROFILE
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    threads: int | None = None
    val_every: int = 0
    checkpoint_every: int = 0
    save_which: str = "teacher"
    memory_size: int = 30000
    warm_lr_scale: float = 0.3
    warm_ramp: float = 0.05
    keep_margin: float = 0.01
    seconds: float | None = None
    encoder_weights: str | None = None

    def __post_init__(self) -> None:
        from ..model.config import DECODERS  # no torch import

        check = Problems(self)
        if self.decoder is not None:
            check.choice("decoder", DECODERS)
        for name, options in (("mode", TRAIN_MODES), ("preset", PRESET_NAMES),
                              ("profile", PROFILES), ("device", DEVICES),
                              ("save_which", SAVE_WHICH)):
            check.choice(name, options)
        check.integer("iterations", 1)
        check.integer("batch_size", 1, MAX_BATCH)
        check.integer("unlabeled_batch_size", 1, MAX_BATCH)
        check.integer("crop_size", 32, MAX_CROP)
        if is_int(self.crop_size) and self.crop_size % 16:
            check.add(f"crop_size must be a multiple of 16 (got {self.crop_size})")
        for problem in _step_size_problems(self.batch_size, self.unlabeled_batch_size,
                                           self.crop_size):
            check.add(problem)
        for name, low, high, low_open, high_open in _NUMBER_FIELDS:
            check.number(name, low, high, low_open=low_open, high_open=high_open)
        check.number("seconds", 1.0, 86400.0, none_ok=True)
        for name, low in (("seed", 0), ("val_every", 0), ("checkpoint_every", 0),
                          ("memory_size", 1)):
            check.integer(name, low)
        check.integer("warmup_iterations", 0, none_ok=True)
        check.integer("threads", 1, none_ok=True)
        if self.encoder_weights is not None and (
                not isinstance(self.encoder_weights, str) or not self.encoder_weights.strip()):
            check.add(f"encoder_weights must be a file path or None "
                      f"(got {self.encoder_weights!r})")
        check.boolean("use_contrastive", "flip", "rotate90", "class_weighting", "amp",
                      "drop_per_class", "calibrated_pseudo_labels")
        check.raise_if_any("TrainConfig")

    # ------------------------------------------------------------------ derived
    @property
    def effective_warmup(self) -> int:
        """Warm-up steps actually used: ``warmup_iterations`` or 10 % of ``iterations``."""
        if self.warmup_iterations is None:
            return int(round(0.1 * self.iterations))
        return min(int(self.warmup_iterations), self.iterations)

    @property
    def semi(self) -> bool:
        """Whether the semi-supervised losses are used."""
        return self.mode in SEMI_MODES

    # ------------------------------------------------------------------ (de)serialisation
    @classmethod
    def from_preset(cls, preset: str = "fast", **overrides: Any) -> TrainConfig:
        """A config with the preset's crop and batch sizes, then ``overrides``.

        Parameters
        ----------
        preset : {"fast", "accurate"}
            Preset name.
        **overrides
            Any :class:`TrainConfig` field.
        """
        if preset not in PRESET_NAMES:
            raise ConfigError(f"preset must be one of {', '.join(PRESET_NAMES)} (got {preset!r})")
        values: dict[str, Any] = {"preset": preset}
        from ..model.config import PRESETS  # no torch import

        p = PRESETS.get(preset)
        if p is not None:
            for src, dst in (("crop_size", "crop_size"), ("batch_size", "batch_size"),
                             ("unlabeled_batch_size", "unlabeled_batch_size"),
                             ("lr", "lr"), ("iterations", "iterations")):
                v = getattr(p, src, None)
                if v is not None:
                    values[dst] = v
            if "unlabeled_batch_size" not in values and "batch_size" in values:
                values["unlabeled_batch_size"] = values["batch_size"]
        values.update(overrides)
        return cls.from_dict(values)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (validated)."""
        return replace(self, **changes)
