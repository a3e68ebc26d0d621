"""One optimisation step of the trainer, as separate functions.

* :func:`supervised_losses` — CE + Dice (+ aux) of the student on a labelled batch;
* :func:`semi_losses` — U2PL: one teacher forward on the unlabelled batch (pseudo
  labels, probabilities, features), CutMix, one student forward on labelled + mixed
  unlabelled images, then supervised + unsupervised (+ contrastive) losses;
* :func:`unimatch_losses` — weak-to-strong consistency: the same pseudo labels learnt
  on a strong (photometric + CutMix) view and on a feature-perturbed weak view;
* :func:`apply_gradients` — a finite-loss check, backward and the SGD step;
* :func:`set_learning_rate` — the schedule's rate on every parameter group.

The EMA update is :meth:`~.ema.EMATeacher.update`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..errors import CrackALError
from .augment import IGNORE_INDEX, apply_cutmix, cutmix_masks
from .data import TrainingImage, make_batch
from .setup import TrainingRun

__all__ = ["FEATURE_STRIDE", "LossTerms", "TrainingDivergedError", "LabeledBatch",
           "batch_f1", "batch_counts", "draw_labeled", "supervised_losses", "semi_losses", "unimatch_losses",
           "apply_gradients", "set_learning_rate"]

FEATURE_STRIDE = 4  # representation features are at 1/4 resolution


class TrainingDivergedError(CrackALError):
    """The loss became NaN or infinite (learning rate too high, or corrupt data)."""


@dataclass(frozen=True)
class LossTerms:
    """The losses of one step (tensors with gradients; ``unsup``/``contrastive`` may be None).

    ``labelled_f1`` is the pixel F1 of the student's own prediction (at 0.5) on the
    labelled crops it trained on; ``labelled_counts`` (while the gate of :mod:`.gate` is
    closed) its true and false positives at every threshold of
    :data:`~napari_crack_al.core.calibration.CALIBRATION_GRID` and the crack pixels, which
    the gate reads without held-out images.
    """

    total: torch.Tensor
    sup: torch.Tensor
    unsup: torch.Tensor | None = None
    contrastive: torch.Tensor | None = None
    labelled_f1: float | None = None
    labelled_counts: tuple | None = None

    def as_floats(self) -> dict[str, float]:
        """The losses as plain numbers (0 for a term that was not used)."""
        def f(t: torch.Tensor | None) -> float:
            return float(t.detach()) if t is not None else 0.0

        return {"sup": f(self.sup), "unsup": f(self.unsup), "contrastive": f(self.contrastive),
                "total": f(self.total)}


@dataclass(frozen=True)
class LabeledBatch:
    """Weakly augmented labelled crops on the run's device: images and targets."""

    x: torch.Tensor
    y: torch.Tensor


def _augment_kwargs(run: TrainingRun) -> dict:
    c = run.config
    return dict(crop_size=c.crop_size, flip=c.flip, rotate90=c.rotate90,
                gain_jitter=c.gain_jitter, offset_jitter=c.offset_jitter)


def _to_device(run: TrainingRun, a, dtype: torch.dtype) -> torch.Tensor:  # noqa: ANN001
    return torch.from_numpy(a).to(device=run.device, dtype=dtype, non_blocking=True)


def draw_labeled(run: TrainingRun, labeled: list[TrainingImage]) -> LabeledBatch:
    """The next labelled batch (crops centred on cracks with ``crack_crop_prob``)."""
    x, y = make_batch(labeled, run.labeled_sampler.next(), run.rng,
                      crack_prob=run.config.crack_crop_prob, **_augment_kwargs(run))
    return LabeledBatch(_to_device(run, x, torch.float32), _to_device(run, y, torch.int64))


def _labeled_terms(run: TrainingRun, logits: torch.Tensor, aux_logits: torch.Tensor | None,
                   y: torch.Tensor) -> torch.Tensor:
    from .losses import aux_loss, inverse_frequency_weights, supervised_loss

    c = run.config
    cw = inverse_frequency_weights(y, run.model_config.num_classes) if c.class_weighting else None
    sup = supervised_loss(logits.float(), y, class_weights=cw)
    aux = aux_loss(None if aux_logits is None else aux_logits.float(), y, weight=c.aux_weight,
                   class_weights=cw)
    if aux is not None and c.aux_weight > 0:
        sup = sup + aux
    return sup


def batch_f1(logits: torch.Tensor, target: torch.Tensor) -> float:
    """Pixel F1 of ``softmax(logits)[:, 1] > 0.5`` against a 0/1/255 target (1 when both empty)."""
    with torch.no_grad():
        valid = target != IGNORE_INDEX
        pred = (logits[:, 1] > logits[:, 0]) & valid
        truth = (target == 1) & valid
        tp = int((pred & truth).sum())
        den = int(pred.sum()) + int(truth.sum())
    return 1.0 if den == 0 else 2.0 * tp / den


def batch_counts(logits: torch.Tensor, target: torch.Tensor) -> tuple:
    """Threshold counts (tp, fp per grid threshold; crack pixels) of a labelled batch."""
    from ..calibration import CALIBRATION_GRID, threshold_counts

    with torch.no_grad():
        prob = torch.softmax(logits.float(), dim=1)[:, 1].cpu().numpy()
        y = target.cpu().numpy()
    valid = y != IGNORE_INDEX
    return threshold_counts(prob, y == 1, CALIBRATION_GRID, valid)


def supervised_losses(run: TrainingRun, batch: LabeledBatch) -> LossTerms:
    """Losses of a supervised step (warm-up, or ``mode="supervised"``)."""
    with run.autocast():
        out = run.forward(batch.x, with_features=False)
        sup = _labeled_terms(run, out.logits, out.aux_logits, batch.y)
    counts = batch_counts(out.logits, batch.y) if run.semi and not run.semi_open else None
    return LossTerms(total=sup, sup=sup, labelled_f1=batch_f1(out.logits.float(), batch.y),
                     labelled_counts=counts)


def semi_losses(run: TrainingRun, batch: LabeledBatch, unlabeled: Sequence[TrainingImage],
                step: int) -> LossTerms:
    """Losses of a U2PL step (see the module docstring)."""
    from .contrastive import contrastive_loss
    from .losses import hard_pseudo_labels, inverse_frequency_weights
    from .unsupervised import unsupervised_loss

    c = run.config
    progress = run.progress(step)
    weight = run.unsup_weight(step)
    cut = run.pseudo_threshold if c.calibrated_pseudo_labels else 0.5
    assert run.unlabeled_sampler is not None
    with run.autocast():
        x_u_np, t_u_np = make_batch(unlabeled, run.unlabeled_sampler.next(), run.rng,
                                    crack_prob=0.0, **_augment_kwargs(run))
        x_u = _to_device(run, x_u_np, torch.float32)
        ign_u = _to_device(run, t_u_np == IGNORE_INDEX, torch.bool)
        with torch.no_grad():
            out_t = run.teacher.module(x_u, with_features=run.use_contrastive)
            prob_u = torch.softmax(out_t.logits.float(), dim=1)
            feat_u = out_t.features
        box = cutmix_masks(x_u.shape[0], x_u.shape[2], x_u.shape[3], run.rng,
                           prob=c.cutmix_prob, align=FEATURE_STRIDE)
        box_t = None if box is None else torch.from_numpy(box).to(run.device)
        x_u = apply_cutmix(x_u, box_t)
        prob_u = apply_cutmix(prob_u, box_t)
        ign_u = apply_cutmix(ign_u, box_t)
        b_l = batch.x.shape[0]
        out_s = run.forward(torch.cat([batch.x, x_u]), with_features=run.use_contrastive)
        logits_l, logits_u = out_s.logits[:b_l], out_s.logits[b_l:]
        aux_l = None if out_s.aux_logits is None else out_s.aux_logits[:b_l]
        sup = _labeled_terms(run, logits_l, aux_l, batch.y)
        total = sup
        unsup = contr = None
        pseudo_u = torch.where(ign_u, IGNORE_INDEX, hard_pseudo_labels(prob_u, cut))
        if weight > 0:
            cw_u = None
            if c.class_weighting:
                cw_u = inverse_frequency_weights(pseudo_u, run.model_config.num_classes)
            unsup = unsupervised_loss(logits_u.float(), prob_u, progress, ignore_mask=ign_u,
                                      drop_start=c.drop_start, class_weights=cw_u,
                                      drop_per_class=c.drop_per_class, crack_threshold=cut)
            total = total + weight * unsup
        if run.use_contrastive:
            feat_s = out_s.features
            assert feat_s is not None and feat_u is not None
            feat_u = apply_cutmix(feat_u.float(), box_t)
            # labelled part: the student's own (detached) outputs stand in for the
            # teacher's, so that the teacher runs once, on the unlabelled batch only
            prob_l = torch.softmax(logits_l.detach().float(), dim=1)
            labels = torch.cat([batch.y, pseudo_u])
            t_prob = torch.cat([prob_l, prob_u])
            t_feat = torch.cat([feat_s[:b_l].detach().float(), feat_u])
            is_lab = torch.arange(labels.shape[0], device=run.device) < b_l
            contr = contrastive_loss(feat_s.float(), t_feat, labels, t_prob, None, is_lab,
                                     progress, run.memory, run.contrastive_config,
                                     generator=run.contrastive_generator)
            total = total + c.contrastive_weight * contr
    return LossTerms(total=total, sup=sup, unsup=unsup, contrastive=contr,
                     labelled_f1=batch_f1(logits_l.detach().float(), batch.y))


def unimatch_losses(run: TrainingRun, batch: LabeledBatch, unlabeled: Sequence[TrainingImage],
                    step: int) -> LossTerms:
    """Losses of a weak-to-strong step with a feature-perturbation stream (UniMatch-style).

    The EMA teacher labels the weakly augmented unlabelled batch (pseudo labels cut at the
    calibrated threshold, class-wise entropy drop as in U2PL); the student learns them on
    (a) a strong view — :func:`~.augment.strong_photometric` then CutMix, forwarded with
    the labelled batch — and (b) the weak view with channel dropout on its encoder
    features (``feature_dropout``). The two unsupervised terms are averaged.
    """
    from .augment import strong_photometric
    from .unsupervised import unsupervised_loss

    c = run.config
    progress = run.progress(step)
    weight = run.unsup_weight(step)
    cut = run.pseudo_threshold if c.calibrated_pseudo_labels else 0.5
    assert run.unlabeled_sampler is not None
    with run.autocast():
        x_np, t_np = make_batch(unlabeled, run.unlabeled_sampler.next(), run.rng, crack_prob=0.0,
                                **_augment_kwargs(run))
        x_w = _to_device(run, x_np, torch.float32)
        ign = _to_device(run, t_np == IGNORE_INDEX, torch.bool)
        with torch.no_grad():
            prob = torch.softmax(run.teacher.module(x_w).logits.float(), dim=1)
        box = cutmix_masks(x_w.shape[0], x_w.shape[2], x_w.shape[3], run.rng,
                           prob=c.cutmix_prob, align=FEATURE_STRIDE)
        box_t = None if box is None else torch.from_numpy(box).to(run.device)
        x_s = apply_cutmix(strong_photometric(x_w, run.rng, strength=c.strong_strength,
                                              ignore=ign), box_t)
        b_l = batch.x.shape[0]
        out = run.forward(torch.cat([batch.x, x_s]))
        logits_l, logits_s = out.logits[:b_l], out.logits[b_l:]
        aux_l = None if out.aux_logits is None else out.aux_logits[:b_l]
        sup = _labeled_terms(run, logits_l, aux_l, batch.y)
        total, unsup = sup, None
        if weight > 0:
            # the student itself (not its DistributedDataParallel wrapper): one wrapped
            # forward per step; the gradients of both still reach the averaging hooks
            logits_fp = run.student(x_w, feature_dropout=c.feature_dropout).logits
            kw = dict(drop_start=c.drop_start, drop_per_class=c.drop_per_class,
                      crack_threshold=cut)
            strong = unsupervised_loss(logits_s.float(), apply_cutmix(prob, box_t), progress,
                                       ignore_mask=apply_cutmix(ign, box_t), **kw)
            perturbed = unsupervised_loss(logits_fp.float(), prob, progress, ignore_mask=ign,
                                          **kw)
            unsup = 0.5 * (strong + perturbed)
            total = total + weight * unsup
    return LossTerms(total=total, sup=sup, unsup=unsup,
                     labelled_f1=batch_f1(logits_l.detach().float(), batch.y))


def set_learning_rate(run: TrainingRun, step: int) -> float:
    """Set the schedule's learning rate of ``step`` on every group; returns the base rate."""
    lr = run.schedule.lr_at(step)
    for group in run.optimizer.param_groups:
        group["lr"] = lr * group["lr_mult"]
    return lr


def apply_gradients(run: TrainingRun, losses: LossTerms, step: int) -> None:
    """Backward and SGD step.

    Raises
    ------
    TrainingDivergedError
        The loss is NaN or infinite.
    """
    run.optimizer.zero_grad(set_to_none=True)
    if not torch.isfinite(losses.total):
        raise TrainingDivergedError(
            f"training diverged at step {step + 1} (loss {float(losses.total)}); lower the "
            "learning rate")
    run.scaler.scale(losses.total).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
