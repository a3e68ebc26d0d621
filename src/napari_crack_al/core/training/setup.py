"""Everything one training run holds: device, student, EMA teacher, optimiser, samplers.

:func:`prepare_run` builds a :class:`TrainingRun` from the configuration, the data and
an optional warm start; the step functions (:mod:`.steps`) and the trainer
(:mod:`.trainer`) work on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..distributed import SINGLE, Distributed
from .config import SEMI_MODES, TrainConfig
from .data import BatchSampler, TrainingImage
from .ema import EMATeacher
from .schedule import LRSchedule

__all__ = ["TrainingRun", "WarmStart", "prepare_run", "load_warm_start"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WarmStart:
    """A previous model to continue from.

    Attributes
    ----------
    path : Path
        Its checkpoint.
    model_config : ModelConfig
        Its architecture (replaces the preset's).
    state_dict : dict
        Its weights (the saved network: the EMA teacher by default).
    threshold : float or None
        Its calibrated threshold, if it stored one.
    metadata : dict
        Its checkpoint metadata.
    train_config : dict
        Its training configuration.
    """

    path: Path
    model_config: Any
    state_dict: dict[str, torch.Tensor] = field(repr=False)
    threshold: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    train_config: dict[str, Any] = field(default_factory=dict)


def load_warm_start(path: str | Path) -> WarmStart:
    """Read a checkpoint to warm-start from (safely, ``weights_only=True``)."""
    from ..model import load_checkpoint

    from ..calibration import model_threshold

    ckpt = load_checkpoint(path)
    stored = "threshold" in ckpt.metadata and ckpt.metadata.get("threshold_source") != "default"
    return WarmStart(path=Path(path), model_config=ckpt.model_config,
                     state_dict=dict(ckpt.state_dict),
                     threshold=model_threshold(ckpt.metadata) if stored else None,
                     metadata=dict(ckpt.metadata), train_config=dict(ckpt.train_config))


@dataclass
class TrainingRun:
    """The mutable state of one run (see :func:`prepare_run`).

    Attributes
    ----------
    config : TrainConfig
    mode : str
        ``"semi"`` (U2PL), ``"unimatch"`` or ``"supervised"`` (a semi mode without
        unlabelled images is supervised).
    device : torch.device
    model_config : ModelConfig
    student : CrackSegmenter
        Trained by gradients.
    teacher : EMATeacher
        The EMA average of the student (the network that is saved by default).
    optimizer : torch.optim.SGD
    scaler : torch.amp.GradScaler
    autocast : callable
        Returns the autocast context of a step (mixed precision on CUDA only).
    schedule : LRSchedule
    semi_start : int
        First step of the semi-supervised phase: 0 for a warm start; for a semi run from
        scratch the run's length until the teacher is worth copying (:mod:`.gate` opens
        it with :meth:`open_semi`); the run's length for a supervised run.
    warmup_steps : int
        Supervised steps before the gate of a semi run from scratch is first checked.
    pseudo_threshold : float
        Crack probability above which the teacher's pseudo label is crack: the warm
        start's calibrated threshold, or the one the gate calibrated on the held-out
        images, else 0.5.
    labeled_sampler, unlabeled_sampler : BatchSampler
    rng : numpy.random.Generator
    contrastive_generator : torch.Generator
    memory : ContrastiveMemory or None
    contrastive_config : ContrastiveConfig or None
    warm : WarmStart or None
    dist : Distributed
        This process's rank among several (:mod:`~napari_crack_al.core.distributed`);
        :data:`~napari_crack_al.core.distributed.SINGLE` for one process.
    net : nn.Module or None
        What the steps call forward: the student in DistributedDataParallel on several
        ranks (gradients averaged), else None (the student itself, see :attr:`forward`).
    """

    config: TrainConfig
    mode: str
    device: torch.device
    model_config: Any
    student: Any
    teacher: EMATeacher
    optimizer: torch.optim.Optimizer
    scaler: Any
    autocast: Callable[[], AbstractContextManager]
    schedule: LRSchedule
    semi_start: int
    warmup_steps: int
    pseudo_threshold: float
    labeled_sampler: BatchSampler
    unlabeled_sampler: BatchSampler | None
    rng: np.random.Generator
    contrastive_generator: torch.Generator
    memory: Any = None
    contrastive_config: Any = None
    warm: WarmStart | None = None
    dist: Distributed = SINGLE
    net: Any = None

    @property
    def forward(self) -> Any:
        """The network a training step calls: the student, wrapped when several ranks train."""
        return self.student if self.net is None else self.net

    def update_teacher(self, step: int) -> None:
        """The EMA update after ``step``; on several ranks the teacher takes rank 0's buffers."""
        self.teacher.update(self.student, step)
        self.dist.same_buffers(self.teacher.module)

    @property
    def semi(self) -> bool:
        """Whether the run uses the unlabelled images."""
        return self.mode in SEMI_MODES

    @property
    def use_contrastive(self) -> bool:
        """Whether the contrastive loss is on."""
        return self.memory is not None

    def in_semi_phase(self, step: int) -> bool:
        """Whether step ``step`` uses the semi-supervised losses."""
        return self.semi and step >= self.semi_start

    @property
    def semi_open(self) -> bool:
        """Whether the semi-supervised phase has started (or is scheduled to)."""
        return self.semi and self.semi_start < self.schedule.total

    def open_semi(self, step: int, pseudo_threshold: float | None = None) -> None:
        """Start the semi-supervised phase at ``step`` (the EMA ramp starts there too)."""
        self.semi_start = int(step)
        self.teacher.warmup = int(step)
        if pseudo_threshold is not None:
            self.pseudo_threshold = float(pseudo_threshold)

    def progress(self, step: int) -> float:
        """Position of ``step`` in the semi phase, from 0 to 1 (schedules of U2PL)."""
        if not self.in_semi_phase(step):
            return 0.0
        span = max(1, self.schedule.total - self.semi_start)
        return min(1.0, max(0.0, (step - self.semi_start) / span))

    def unsup_weight(self, step: int) -> float:
        """Weight of the unsupervised loss: ramps up linearly over ``unsup_ramp`` of the phase."""
        if not self.in_semi_phase(step):
            return 0.0
        ramp = self.config.unsup_ramp * (self.schedule.total - self.semi_start)
        if ramp < 1:
            return self.config.unsup_weight
        return self.config.unsup_weight * min(1.0, (step - self.semi_start + 1) / ramp)

    def set_total(self, total: int) -> None:
        """Change the run's length (a budget in seconds planned it); keeps the warm-up share."""
        total = max(1, int(total))
        was_open = self.semi_open
        if self.warm is None:
            self.warmup_steps = _warmup_steps(self.config, total)
        self.schedule = self.schedule.with_total(total)
        if not was_open:  # still closed (or supervised): closed at the new end
            self.semi_start = total
            self.teacher.warmup = total


def _warmup_steps(config: TrainConfig, total: int) -> int:
    if config.warmup_iterations is None:
        return int(round(0.1 * total))
    return min(int(config.warmup_iterations), total)


def _build_student(config: TrainConfig, warm: WarmStart | None) -> tuple[Any, Any]:
    from ..model import build_model, load_encoder_weights, preset_config

    if warm is not None:
        student = build_model(warm.model_config)
        student.load_state_dict(warm.state_dict, strict=True)
        return student, warm.model_config
    model_config = preset_config(config.preset)
    if config.decoder is not None:
        model_config = replace(model_config, decoder=config.decoder)
    student = build_model(model_config)
    if config.encoder_weights is not None:
        load_encoder_weights(student, Path(config.encoder_weights).expanduser())
    return student, model_config


def prepare_run(config: TrainConfig, labeled: Sequence[TrainingImage],
                unlabeled: Sequence[TrainingImage], warm: WarmStart | None,
                total: int, dist: Distributed = SINGLE) -> TrainingRun:
    """Seed everything, build the networks, the optimiser and the samplers.

    Parameters
    ----------
    config : TrainConfig
    labeled, unlabeled : sequence of TrainingImage
    warm : WarmStart or None
        The previous model: student and teacher start from its weights, the teacher
        keeps them (no warm-up, EMA at its full decay) and the learning rate ramps up
        to a lower peak.
    total : int
        Planned steps (a budget in seconds may change it with :meth:`TrainingRun.set_total`).
    dist : Distributed
        Several ranks: the same initial weights everywhere, each rank's own crops (its
        own sampler seed), the student wrapped for averaged gradients, a shared
        contrastive memory.
    """
    from ..device import select_device
    from .contrastive import ContrastiveConfig, ContrastiveMemory

    device = dist.device(select_device(config.device))
    use_amp = bool(config.amp and device.type == "cuda")
    mode = config.mode if config.mode in SEMI_MODES and len(unlabeled) > 0 else "supervised"
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed + dist.seed_offset())
    contrastive_generator = torch.Generator().manual_seed(config.seed + 1)
    student, model_config = _build_student(config, warm)
    student.to(device)
    student.train()
    # a warm start continues U2PL at once; from scratch, the gate (.gate) opens the phase
    semi_start = 0 if mode in SEMI_MODES and warm is not None else total
    teacher = EMATeacher(student, max_decay=config.ema_max_decay,
                         warmup=semi_start, resume=warm is not None)
    optimizer = torch.optim.SGD(
        [{"params": list(student.backbone_parameters()), "lr_mult": 1.0},
         {"params": list(student.head_parameters()), "lr_mult": config.head_lr_multiplier}],
        lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
    )
    use_contrastive = mode == "semi" and config.use_contrastive and config.contrastive_weight > 0
    return TrainingRun(
        config=config, mode=mode, device=device, model_config=model_config, student=student,
        teacher=teacher, optimizer=optimizer,
        scaler=torch.amp.GradScaler("cuda", enabled=use_amp),
        autocast=(lambda: torch.autocast("cuda", dtype=torch.float16)) if use_amp
        else nullcontext,
        schedule=LRSchedule.for_round(config.lr, total, warm=warm is not None,
                                      warm_lr_scale=config.warm_lr_scale,
                                      warm_ramp=config.warm_ramp),
        semi_start=semi_start,
        warmup_steps=_warmup_steps(config, total) if warm is None else 0,
        pseudo_threshold=warm.threshold if warm is not None and warm.threshold is not None
        else 0.5,
        labeled_sampler=BatchSampler(len(labeled), config.batch_size, rng),
        unlabeled_sampler=BatchSampler(len(unlabeled), config.unlabeled_batch_size, rng)
        if mode in SEMI_MODES else None,
        rng=rng, contrastive_generator=contrastive_generator,
        memory=ContrastiveMemory(model_config.num_classes, config.memory_size,
                                 gather=dist.gather_rows if dist.active else None)
        if use_contrastive else None,
        contrastive_config=ContrastiveConfig(memory_size=config.memory_size)
        if use_contrastive else None,
        warm=warm, dist=dist, net=dist.wrap(student, device) if dist.active else None,
    )

