"""The U2PL trainer: a generator of :mod:`napari_crack_al.core.events`.

One step of the semi-supervised phase (see docs/model.md, "Training"):

1. a labelled batch of weakly augmented crops and an unlabelled batch of weakly
   augmented crops (invalid pixels and padding marked ignore);
2. ONE teacher forward (eval mode, no gradients) on the unmixed unlabelled batch
   gives the pseudo labels, probabilities (entropy follows from them) and the
   teacher's representation features;
3. CutMix (probability ``cutmix_prob``): images, probabilities, ignore masks and
   teacher features are mixed with the same boxes (aligned to the feature stride 4);
4. ONE student forward on ``[labelled, mixed unlabelled]``;
5. ``L = L_sup (+ aux_weight · L_aux) + unsup_weight · L_unsup + λ · L_contrastive``;
6. SGD step (poly schedule), then the EMA teacher update.

During the supervised warm-up (and in ``mode="supervised"``) only the labelled
batch is used and the teacher copies the student. The checkpoint holds the
teacher's weights by default (``save_which``).

The generator checks a :class:`~napari_crack_al.core.events.CancelToken` before
every step and stops cleanly when closed (``generator.close()``, as a napari
worker's ``quit()`` does). A cancelled or closed run writes no checkpoint, so the
previous file at the checkpoint path is left untouched; every write is atomic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

from ..errors import ConfigError, CrackALError, InputError
from ..events import CancelToken, CheckpointEvent, MessageEvent, StepEvent, ValidationEvent
from .augment import IGNORE_INDEX, apply_cutmix, cutmix_masks
from .config import TrainConfig
from .data import BatchSampler, TrainingImage, make_batch
from .ema import EMATeacher

__all__ = ["TrainResult", "TrainEvent", "TrainingDivergedError", "train", "poly_lr",
           "DEFAULT_CHECKPOINT_NAME"]

logger = logging.getLogger(__name__)

DEFAULT_CHECKPOINT_NAME = "model.pt"
FEATURE_STRIDE = 4  # representation features are at 1/4 resolution

TrainEvent = Union[StepEvent, ValidationEvent, CheckpointEvent, MessageEvent]


class TrainingDivergedError(CrackALError):
    """The loss became NaN or infinite (learning rate too high, or corrupt data)."""


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns (the ``value`` of its ``StopIteration``).

    Attributes
    ----------
    checkpoint : Path or None
        The final checkpoint, ``None`` when the run was cancelled.
    steps : int
        Optimisation steps done.
    cancelled : bool
        Whether the run stopped early (cancel token or ``close()``).
    losses : dict
        Losses of the last step.
    metrics : dict
        Final validation metrics (empty without validation images).
    seconds : float
        Wall time.
    mode : str
        Mode actually used ("supervised" when semi was asked without unlabelled data).
    """

    checkpoint: Path | None
    steps: int
    cancelled: bool
    losses: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    mode: str = "semi"


def poly_lr(base_lr: float, step: int, total: int, power: float = 0.9) -> float:
    """Poly schedule ``base_lr · (1 − step / total) ** power``."""
    return float(base_lr) * (1.0 - min(step, total) / max(total, 1)) ** power


def _check_data(labeled: Sequence[TrainingImage], unlabeled: Sequence[TrainingImage]) -> None:
    if len(labeled) == 0:
        raise InputError(None, "training needs at least one labelled image (image with a mask)")
    for item in labeled:
        if item.mask is None:
            raise InputError(None, f"labelled image {item.name!r} has no mask")
    names = [t.name for t in labeled]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(None, f"labelled images with the same name: {', '.join(dup)}")


def _resolve_checkpoint_path(out_dir: str | Path | None, checkpoint_path: str | Path | None) -> Path:
    if checkpoint_path is not None:
        return Path(checkpoint_path)
    if out_dir is None:
        raise ConfigError("train() needs out_dir or checkpoint_path")
    return Path(out_dir) / DEFAULT_CHECKPOINT_NAME


class _Validator:
    """Teacher inference on full validation images (tiled) and the metrics."""

    def __init__(self, images: Sequence[TrainingImage], tile: int = 512) -> None:
        self.images = [t for t in images if t.mask is not None]
        if len(self.images) != len(images):
            raise InputError(None, "validation images need masks")
        self.tile = tile

    def __call__(self, model: torch.nn.Module) -> dict[str, float]:
        from ..inference import predict_image
        from ..metrics import evaluate_masks

        preds, gts, valids = [], [], []
        for item in self.images:
            prob = predict_image(model, item.image, tile=self.tile).probability
            preds.append(prob > 0.5)
            gts.append(item.mask)
            valids.append(item.valid)
        metrics = evaluate_masks(preds, gts, valid=valids)
        return {k: float(v) for k, v in metrics.items()}


def train(
    labeled: Sequence[TrainingImage],
    unlabeled: Sequence[TrainingImage],
    config: TrainConfig,
    *,
    out_dir: str | Path | None = None,
    checkpoint_path: str | Path | None = None,
    init: str | Path | None = None,
    validation: Sequence[TrainingImage] = (),
    cancel: CancelToken | None = None,
    round_index: int = 0,
    extra_metadata: dict[str, Any] | None = None,
) -> Generator[TrainEvent, None, TrainResult]:
    """Train a crack segmenter with U2PL (or supervised only), yielding progress events.

    Parameters
    ----------
    labeled : sequence of TrainingImage
        Images with masks (at least one; one or two work).
    unlabeled : sequence of TrainingImage
        Images without masks (used in ``mode="semi"``; masks, if any, are ignored).
    config : TrainConfig
        Settings.
    out_dir : path, optional
        Folder of the checkpoint ``model.pt`` (when ``checkpoint_path`` is not given).
    checkpoint_path : path, optional
        The checkpoint file to write (atomically, at the end and every
        ``checkpoint_every`` steps).
    init : path, optional
        Warm start: a checkpoint whose weights initialise the student AND the teacher
        (its model configuration replaces the preset's).
    validation : sequence of TrainingImage
        Labelled images for :class:`ValidationEvent` (teacher, tiled inference,
        threshold 0.5); at the end and every ``val_every`` steps.
    cancel : CancelToken, optional
        Checked before every step.
    round_index : int
        Active-learning round, stored in the checkpoint metadata.
    extra_metadata : dict, optional
        More JSON-able metadata for the checkpoint.

    Yields
    ------
    MessageEvent, StepEvent, ValidationEvent, CheckpointEvent

    Returns
    -------
    TrainResult
    """
    from ..device import configure_threads, describe_device, select_device
    from ..model import build_model, load_checkpoint, preset_config, save_checkpoint
    from .contrastive import ContrastiveConfig, ContrastiveMemory, contrastive_loss
    from .losses import aux_loss, inverse_frequency_weights, supervised_loss, unsupervised_loss

    t_start = time.perf_counter()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    _check_data(labeled, unlabeled)
    ckpt_path = _resolve_checkpoint_path(out_dir, checkpoint_path)
    if not ckpt_path.parent.is_dir():
        raise InputError(ckpt_path.parent, "output folder does not exist")
    cancel = cancel if cancel is not None else CancelToken()

    # ---------------------------------------------------------------- device, seeds, model
    threads = configure_threads(1) if config.threads is None else config.threads
    torch.set_num_threads(threads)
    device = select_device(config.device)
    use_amp = bool(config.amp and device.type == "cuda")
    mode = config.mode
    if mode == "semi" and len(unlabeled) == 0:
        mode = "supervised"
        yield MessageEvent("no unlabeled images: training supervised only")
    semi = mode == "semi"
    use_contrastive = semi and config.use_contrastive and config.contrastive_weight > 0
    yield MessageEvent(f"device: {describe_device(device)}{' with mixed precision' if use_amp else ''}")
    yield MessageEvent(
        f"data: {len(labeled)} labelled, {len(unlabeled) if semi else 0} unlabelled, "
        f"{len(validation)} validation images; mode {mode}, {config.iterations} iterations, "
        f"crop {config.crop_size}"
    )

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    contrastive_gen = torch.Generator().manual_seed(config.seed + 1)
    if init is not None:
        ckpt = load_checkpoint(init)
        model_config = ckpt.model_config
        student = build_model(model_config)
        student.load_state_dict(ckpt.state_dict, strict=True)
        yield MessageEvent(f"warm start from {init}")
    else:
        model_config = preset_config(config.preset)
        student = build_model(model_config)
    student.to(device)
    student.train()
    warmup = config.effective_warmup if semi else config.iterations
    teacher = EMATeacher(student, max_decay=config.ema_max_decay, warmup=warmup)

    head_params = list(student.head_parameters())
    enc_params = list(student.backbone_parameters())
    optimizer = torch.optim.SGD(
        [{"params": enc_params, "lr_mult": 1.0},
         {"params": head_params, "lr_mult": config.head_lr_multiplier}],
        lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
    )
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.float16)) if use_amp else nullcontext

    lab_sampler = BatchSampler(len(labeled), config.batch_size, rng)
    unl_sampler = BatchSampler(len(unlabeled), config.unlabeled_batch_size, rng) if semi else None
    memory = ContrastiveMemory(model_config.num_classes, config.memory_size) if use_contrastive else None
    ccfg = ContrastiveConfig(memory_size=config.memory_size) if use_contrastive else None
    validator = _Validator(validation) if validation else None

    aug = dict(crop_size=config.crop_size, flip=config.flip, rotate90=config.rotate90,
               gain_jitter=config.gain_jitter, offset_jitter=config.offset_jitter)
    n_iter = config.iterations
    losses: dict[str, float] = {}
    metrics: dict[str, float] = {}
    steps_done = 0
    cancelled = False

    def to_dev(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
        return torch.from_numpy(a).to(device=device, dtype=dtype, non_blocking=True)

    def metadata(final_metrics: dict[str, float], step: int) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "round": int(round_index),
            "steps": int(step),
            "mode": mode,
            "weights": config.save_which,
            "device": str(device),
            "labeled_images": [t.name for t in labeled],
            "unlabeled_images": [t.name for t in unlabeled] if semi else [],
            "validation_images": [t.name for t in validation],
            "metrics": dict(final_metrics),
            "last_losses": dict(losses),
            "seconds": time.perf_counter() - t_start,
        }
        if init is not None:
            meta["init"] = str(init)
        if extra_metadata:
            meta.update(extra_metadata)
        return meta

    def save(step: int, final_metrics: dict[str, float]) -> Path:
        net = teacher.module if config.save_which == "teacher" else student
        return save_checkpoint(ckpt_path, net, model_config=model_config,
                               train_config=config.to_dict(),
                               metadata=metadata(final_metrics, step))

    for step in range(n_iter):
        if cancel.cancelled:
            cancelled = True
            yield MessageEvent(f"training cancelled after {steps_done} steps")
            break
        t0 = time.perf_counter()
        lr = poly_lr(config.lr, step, n_iter)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_mult"]

        x_l_np, y_l_np = make_batch(labeled, lab_sampler.next(), rng,
                                    crack_prob=config.crack_crop_prob, **aug)
        x_l = to_dev(x_l_np, torch.float32)
        y_l = to_dev(y_l_np, torch.int64)
        b_l = x_l.shape[0]
        in_semi_phase = semi and step >= warmup
        progress = 0.0
        if in_semi_phase:
            progress = min(1.0, max(0.0, (step - warmup) / max(1, n_iter - warmup)))

        unsup_t = contr_t = None
        with autocast():
            if in_semi_phase:
                assert unl_sampler is not None
                x_u_np, t_u_np = make_batch(unlabeled, unl_sampler.next(), rng, crack_prob=0.0,
                                            **aug)
                x_u = to_dev(x_u_np, torch.float32)
                ign_u = to_dev(t_u_np == IGNORE_INDEX, torch.bool)
                with torch.no_grad():
                    out_t = teacher.module(x_u, with_features=use_contrastive)
                    prob_u = torch.softmax(out_t.logits.float(), dim=1)
                    feat_u = out_t.features
                box = cutmix_masks(x_u.shape[0], x_u.shape[2], x_u.shape[3], rng,
                                   prob=config.cutmix_prob, align=FEATURE_STRIDE)
                box_t = None if box is None else torch.from_numpy(box).to(device)
                x_u = apply_cutmix(x_u, box_t)
                prob_u = apply_cutmix(prob_u, box_t)
                ign_u = apply_cutmix(ign_u, box_t)
                out_s = student(torch.cat([x_l, x_u]), with_features=use_contrastive)
                logits_l, logits_u = out_s.logits[:b_l], out_s.logits[b_l:]
            else:
                out_s = student(x_l, with_features=False)
                logits_l, logits_u = out_s.logits, None

            cw = inverse_frequency_weights(y_l, model_config.num_classes) \
                if config.class_weighting else None
            sup_t = supervised_loss(logits_l.float(), y_l, class_weights=cw)
            aux_logits = None if out_s.aux_logits is None else out_s.aux_logits[:b_l]
            aux_t = aux_loss(None if aux_logits is None else aux_logits.float(), y_l,
                             weight=config.aux_weight, class_weights=cw)
            if aux_t is not None and config.aux_weight > 0:
                sup_t = sup_t + aux_t
            total = sup_t
            if in_semi_phase and logits_u is not None:
                if config.unsup_weight > 0:
                    cw_u = None
                    if config.class_weighting:
                        pseudo = torch.where(ign_u, IGNORE_INDEX, prob_u.argmax(1))
                        cw_u = inverse_frequency_weights(pseudo, model_config.num_classes)
                    unsup_t = unsupervised_loss(logits_u.float(), prob_u, progress,
                                                ignore_mask=ign_u, drop_start=config.drop_start,
                                                class_weights=cw_u,
                                                drop_per_class=config.drop_per_class)
                    total = total + config.unsup_weight * unsup_t
                if use_contrastive and memory is not None:
                    feat_s = out_s.features
                    assert feat_s is not None and feat_u is not None
                    feat_u = apply_cutmix(feat_u.float(), box_t)
                    # labelled part: the student's own (detached) outputs stand in for the
                    # teacher's, so that the teacher runs once, on the unlabelled batch only
                    prob_l = torch.softmax(logits_l.detach().float(), dim=1)
                    pseudo_u = torch.where(ign_u, IGNORE_INDEX, prob_u.argmax(1))
                    labels = torch.cat([y_l, pseudo_u])
                    t_prob = torch.cat([prob_l, prob_u])
                    t_feat = torch.cat([feat_s[:b_l].detach().float(), feat_u])
                    is_lab = torch.arange(labels.shape[0], device=device) < b_l
                    contr_t = contrastive_loss(feat_s.float(), t_feat, labels, t_prob, None,
                                               is_lab, progress, memory, ccfg,
                                               generator=contrastive_gen)
                    total = total + config.contrastive_weight * contr_t

        optimizer.zero_grad(set_to_none=True)
        if not torch.isfinite(total):
            raise TrainingDivergedError(
                f"training diverged at step {step + 1} (loss {float(total)}); lower the "
                "learning rate")
        scaler.scale(total).backward()
        scaler.step(optimizer)
        scaler.update()
        teacher.update(student, step)
        steps_done = step + 1

        losses = {
            "sup": float(sup_t.detach()),
            "unsup": float(unsup_t.detach()) if unsup_t is not None else 0.0,
            "contrastive": float(contr_t.detach()) if contr_t is not None else 0.0,
            "total": float(total.detach()),
        }
        yield StepEvent(step=steps_done, total_steps=n_iter, losses=dict(losses), lr=lr,
                        seconds=time.perf_counter() - t0)

        last = steps_done == n_iter
        if validator is not None and config.val_every and steps_done % config.val_every == 0 \
                and not last:
            metrics = validator(teacher.module)
            yield ValidationEvent(step=steps_done, metrics=dict(metrics))
        if config.checkpoint_every and steps_done % config.checkpoint_every == 0 and not last:
            if cancel.cancelled:
                continue
            path = save(steps_done, metrics)
            yield CheckpointEvent(step=steps_done, path=path,
                                  metadata={"round": round_index, "final": False})

    if cancelled:
        return TrainResult(checkpoint=None, steps=steps_done, cancelled=True, losses=losses,
                           metrics=metrics, seconds=time.perf_counter() - t_start, mode=mode)

    if validator is not None:
        metrics = validator(teacher.module)
        yield ValidationEvent(step=steps_done, metrics=dict(metrics))
    if cancel.cancelled:  # cancelled during the final validation: keep the previous file
        return TrainResult(checkpoint=None, steps=steps_done, cancelled=True, losses=losses,
                           metrics=metrics, seconds=time.perf_counter() - t_start, mode=mode)
    path = save(steps_done, metrics)
    yield CheckpointEvent(step=steps_done, path=path,
                          metadata={"round": round_index, "final": True, "metrics": dict(metrics)})
    seconds = time.perf_counter() - t_start
    logger.info("trained %d steps in %.1f s -> %s", steps_done, seconds, path)
    return TrainResult(checkpoint=path, steps=steps_done, cancelled=False, losses=losses,
                       metrics=metrics, seconds=seconds, mode=mode)
