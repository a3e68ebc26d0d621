"""The unsupervised (pseudo-label) loss of the U2PL semi-supervised step.

:func:`unsupervised_loss` is the supervised criterion (CE + Dice, :mod:`.losses`) on the
teacher's hard pseudo labels, after dropping the most uncertain pixels by the U2PL
entropy schedule (:func:`~.pseudo_labels.drop_percent_schedule`,
:func:`~.pseudo_labels.pseudo_label_mask`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from .losses import CRACK_CLASS, IGNORE_INDEX, cross_entropy_loss, dice_loss, zero_like_graph
from .pseudo_labels import _as_class_prob, drop_percent_schedule, hard_pseudo_labels, pseudo_label_mask

__all__ = ["unsupervised_loss"]

logger = logging.getLogger(__name__)


def unsupervised_loss(
    student_logits: torch.Tensor,
    teacher_prob: torch.Tensor,
    progress: float,
    *,
    ignore_mask: torch.Tensor | None = None,
    drop_start: float = 20.0,
    ce_weight: float = 0.5,
    dice_weight: float = 0.5,
    class_weights: torch.Tensor | Sequence[float] | None = None,
    rescale: bool = True,
    smooth: float = 1.0,
    drop_per_class: bool = False,
    crack_threshold: float = 0.5,
) -> torch.Tensor:
    """CE + Dice of the student on the teacher's pseudo labels, uncertain pixels dropped.

    Pseudo labels are :func:`hard_pseudo_labels` (crack where the teacher's crack
    probability exceeds ``crack_threshold``; the argmax at 0.5); the ``drop_percent_schedule(progress,
    drop_start)`` % highest-entropy non-ignored pixels are dropped (20 % at the
    start, none at ``progress = 1``), as are ``ignore_mask`` pixels.

    The CE term is the mean over kept pixels and, with ``rescale=True`` (U2PL), is
    multiplied by ``n_valid / n_kept`` where ``n_valid`` counts the non-ignored pixels
    before dropping. (U2PL multiplies its mean CE by ``all / kept``; counting only
    non-ignored pixels keeps the factor at ``1 / (1 - drop share)`` whatever the
    padding.) ``rescale=False`` gives the plain mean over kept pixels. The Dice
    term is computed over the kept pixels and is not rescaled; it is left out (0)
    when the kept pseudo labels hold no crack pixel at all. On such a batch the crack
    Dice ``1 - s / (Σp + s)`` would only say "predict no crack anywhere", which is the
    teacher's bias on a rare class rather than evidence -- together with the
    batch-wide entropy drop it made the student collapse to all-background
    (docs/model.md, "Ablation"). The CE term still covers those pixels.

    Parameters
    ----------
    student_logits : Tensor
        ``(B, C, H, W)`` student scores on the strongly augmented batch.
    teacher_prob : Tensor
        ``(B, C, H, W)`` teacher probabilities (detached here), mixed like the input.
    progress : float
        Training progress in [0, 1] (epoch / E or step / total).
    ignore_mask : Tensor, optional
        ``(B, H, W)`` bool, True = ignore.
    drop_start : float
        Percent dropped at ``progress = 0`` (20).
    ce_weight, dice_weight : float
        Term weights (0.5 / 0.5).
    class_weights : Tensor or sequence of float, optional
        Per-class CE weights.
    rescale : bool
        Apply U2PL's ``n_valid / n_kept`` factor to the CE term.
    smooth : float
        Dice smoothing.
    drop_per_class : bool
        Drop the most uncertain pixels within each pseudo class (see
        :func:`pseudo_label_mask`) instead of over the whole batch.
    crack_threshold : float
        The teacher's decision threshold for the crack class.

    Returns
    -------
    Tensor
        Scalar with gradient w.r.t. ``student_logits`` only; 0 when nothing is kept.
    """
    teacher_prob = _checked_teacher_prob(teacher_prob, student_logits)
    drop = drop_percent_schedule(progress, drop_start)
    return _pseudo_label_loss(student_logits, teacher_prob, drop, ignore_mask, drop_per_class,
                              ce_weight, dice_weight, class_weights, rescale, smooth,
                              crack_threshold)


def _checked_teacher_prob(teacher_prob: torch.Tensor, student_logits: torch.Tensor,
                          ) -> torch.Tensor:
    """The detached teacher probabilities as classes, checked against the student's shape.

    Parameters
    ----------
    teacher_prob : Tensor
        Teacher probabilities (see :func:`unsupervised_loss`).
    student_logits : Tensor
        ``(B, C, H, W)`` student scores.

    Returns
    -------
    Tensor
        ``(B, C, H, W)`` detached class probabilities.

    Raises
    ------
    ValueError
        The shapes differ.
    """
    teacher_prob = _as_class_prob(teacher_prob.detach())
    if teacher_prob.shape != student_logits.shape:
        raise ValueError(
            f"teacher_prob {tuple(teacher_prob.shape)} does not match student logits "
            f"{tuple(student_logits.shape)}"
        )
    return teacher_prob


def _pseudo_label_loss(
    student_logits: torch.Tensor,
    teacher_prob: torch.Tensor,
    drop: float,
    ignore_mask: torch.Tensor | None,
    drop_per_class: bool,
    ce_weight: float,
    dice_weight: float,
    class_weights: torch.Tensor | Sequence[float] | None,
    rescale: bool,
    smooth: float,
    crack_threshold: float,
) -> torch.Tensor:
    """CE + Dice of the student on the teacher's hard pseudo labels, ``drop`` % dropped.

    Parameters
    ----------
    student_logits, teacher_prob : Tensor
        As in :func:`unsupervised_loss` (``teacher_prob`` already checked).
    drop : float
        Percent of the most uncertain non-ignored pixels dropped
        (:func:`pseudo_label_mask`).
    ignore_mask : Tensor or None
        ``(B, H, W)`` bool, True = ignore.
    drop_per_class, ce_weight, dice_weight, class_weights, rescale, smooth, crack_threshold
        As in :func:`unsupervised_loss`.

    Returns
    -------
    Tensor
        Scalar loss; 0 (attached to the graph) when no pixel is kept.
    """
    keep = pseudo_label_mask(teacher_prob, drop, ignore_mask, per_class=drop_per_class,
                             crack_threshold=crack_threshold)
    n_kept = int(keep.sum())
    if n_kept == 0:
        return zero_like_graph(student_logits)
    n_valid = keep.numel() if ignore_mask is None else int((~ignore_mask.bool()).sum())
    pseudo = hard_pseudo_labels(teacher_prob, crack_threshold)
    target = torch.where(keep, pseudo, torch.full_like(pseudo, IGNORE_INDEX))
    ce = cross_entropy_loss(student_logits, target, class_weights=class_weights)
    if rescale:
        ce = ce * (n_valid / n_kept)
    if dice_weight > 0 and bool((target == CRACK_CLASS).any()):
        dice = dice_loss(student_logits, target, smooth=smooth)
    else:
        dice = zero_like_graph(student_logits)
    logger.debug("unsupervised loss: dropped %.2f %%, kept %d of %d", drop, n_kept, n_valid)
    return ce_weight * ce + dice_weight * dice
