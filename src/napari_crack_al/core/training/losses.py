"""Supervised segmentation losses (the pseudo-label loss is :mod:`.unsupervised`).

Targets everywhere are ``int64 (B, H, W)`` with 0 = background, 1 = crack and
:data:`IGNORE_INDEX` (255) = ignore (invalid pixels, padding of rotations, crops
and CutMix). Ignored pixels never contribute to a loss, and nothing is ever
turned into a class: there is no OHEM-style rewrite of easy pixels.

* :func:`supervised_loss` -- ``ce_weight * CE + dice_weight * Dice`` (0.5 / 0.5),
  with the soft Dice computed on the crack class only, over the whole batch and
  over non-ignored pixels (Dice over both classes is dominated by the
  background). The smoothing term makes "no crack predicted on a crack-free
  batch" a loss of ~0. CE may be class-weighted (:func:`inverse_frequency_weights`).
* :func:`aux_loss` -- the same criterion on the auxiliary head, times 0.4.
* :func:`~.unsupervised.unsupervised_loss` (in :mod:`.unsupervised`) -- the same
  CE + Dice on the teacher's hard pseudo labels.

The pseudo-label helpers (entropy, exact-rank selection, drop schedule) live in
:mod:`.pseudo_labels` and are re-exported here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .pseudo_labels import (
    _EPS,
    check_progress,
    drop_percent_schedule,
    entropy_map,
    hard_pseudo_labels,
    pseudo_label_mask,
    select_by_rank,
)

logger = logging.getLogger(__name__)

IGNORE_INDEX = 255
CRACK_CLASS = 1

__all__ = [
    "CRACK_CLASS",
    "IGNORE_INDEX",
    "aux_loss",
    "check_progress",
    "cross_entropy_loss",
    "dice_loss",
    "drop_percent_schedule",
    "entropy_map",
    "hard_pseudo_labels",
    "inverse_frequency_weights",
    "pseudo_label_mask",
    "select_by_rank",
    "supervised_loss",
    "zero_like_graph",
]


# --------------------------------------------------------------------------- checks
def _check_logits_target(logits: torch.Tensor, target: torch.Tensor) -> None:
    if logits.ndim != 4:
        raise ValueError(f"logits must be (B, C, H, W), got shape {tuple(logits.shape)}")
    if target.ndim != 3:
        raise ValueError(f"target must be (B, H, W), got shape {tuple(target.shape)}")
    if logits.shape[0] != target.shape[0] or logits.shape[2:] != target.shape[1:]:
        raise ValueError(
            f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in batch or size"
        )
    if target.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"target must be an integer tensor, got {target.dtype}")


def zero_like_graph(t: torch.Tensor) -> torch.Tensor:
    """A scalar 0 attached to ``t``'s graph (so ``backward`` works and gives zero grads)."""
    return t.sum() * 0.0


# --------------------------------------------------------------------------- supervised
def cross_entropy_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    class_weights: torch.Tensor | Sequence[float] | None = None,
    ignore_index: int = IGNORE_INDEX,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pixel-wise cross-entropy averaged over non-ignored pixels.

    Parameters
    ----------
    logits : Tensor
        ``(B, C, H, W)`` raw scores.
    target : Tensor
        ``(B, H, W)`` integer labels; ``ignore_index`` pixels are left out.
    class_weights : Tensor or sequence of float, optional
        One weight per class. As in :func:`torch.nn.functional.cross_entropy`, the
        weighted sum is divided by the sum of the weights of the counted pixels.
    ignore_index : int
        Label value that is ignored (255).
    valid : Tensor, optional
        Extra ``(B, H, W)`` bool mask; only pixels that are True (and not ignored) count.

    Returns
    -------
    Tensor
        Scalar loss; 0 (attached to the graph) when no pixel counts.
    """
    _check_logits_target(logits, target)
    keep = target != ignore_index
    if valid is not None:
        keep = keep & valid.bool()
    if not bool(keep.any()):
        return zero_like_graph(logits)
    safe_target = torch.where(keep, target.long(), torch.zeros_like(target, dtype=torch.long))
    if int(safe_target.max()) >= logits.shape[1] or int(safe_target.min()) < 0:
        raise ValueError(
            f"target holds labels outside [0, {logits.shape[1] - 1}] other than {ignore_index}"
        )
    logp = F.log_softmax(logits.float(), dim=1)
    nll = -logp.gather(1, safe_target.unsqueeze(1)).squeeze(1)
    if class_weights is not None:
        w = torch.as_tensor(class_weights, dtype=nll.dtype, device=nll.device)
        if w.ndim != 1 or w.numel() != logits.shape[1]:
            raise ValueError(f"class_weights needs {logits.shape[1]} values, got {tuple(w.shape)}")
        pw = w[safe_target] * keep
    else:
        pw = keep.to(nll.dtype)
    return (nll * pw).sum() / pw.sum().clamp_min(_EPS)


def dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    ignore_index: int = IGNORE_INDEX,
    smooth: float = 1.0,
    crack_class: int = CRACK_CLASS,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Soft Dice loss of the crack class over the whole batch.

    ``1 - (2 Σ p t + s) / (Σ p + Σ t + s)`` where ``p`` is the softmax probability
    of ``crack_class``, ``t`` the binary crack target, sums run over every
    non-ignored pixel of the batch and ``s = smooth``. With an empty target and
    no crack predicted the loss is ~0; with an empty target and crack predicted
    it grows with the predicted crack mass.

    Parameters
    ----------
    logits : Tensor
        ``(B, C, H, W)`` raw scores.
    target : Tensor
        ``(B, H, W)`` integer labels.
    ignore_index : int
        Label value that is ignored.
    smooth : float
        Additive smoothing (> 0).
    crack_class : int
        Class whose Dice is computed.
    valid : Tensor, optional
        Extra ``(B, H, W)`` bool mask of pixels that count.

    Returns
    -------
    Tensor
        Scalar in [0, 1).
    """
    _check_logits_target(logits, target)
    if smooth <= 0:
        raise ValueError(f"smooth must be > 0, got {smooth}")
    keep = target != ignore_index
    if valid is not None:
        keep = keep & valid.bool()
    keepf = keep.to(torch.float32)
    prob = torch.softmax(logits.float(), dim=1)[:, crack_class] * keepf
    tgt = (target == crack_class).to(torch.float32) * keepf
    inter = (prob * tgt).sum()
    denom = prob.sum() + tgt.sum()
    return 1.0 - (2.0 * inter + smooth) / (denom + smooth)


def supervised_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    ce_weight: float = 0.5,
    dice_weight: float = 0.5,
    class_weights: torch.Tensor | Sequence[float] | None = None,
    ignore_index: int = IGNORE_INDEX,
    smooth: float = 1.0,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """``ce_weight * CE + dice_weight * Dice(crack)`` on non-ignored pixels.

    Parameters
    ----------
    logits : Tensor
        ``(B, C, H, W)`` raw scores at the target's resolution.
    target : Tensor
        ``(B, H, W)`` int64, 0 background, 1 crack, 255 ignore.
    ce_weight, dice_weight : float
        Weights of the two terms (0.5 / 0.5).
    class_weights : Tensor or sequence of float, optional
        Per-class CE weights (see :func:`inverse_frequency_weights`).
    ignore_index : int
        Ignored label.
    smooth : float
        Dice smoothing.
    valid : Tensor, optional
        Extra ``(B, H, W)`` bool mask of pixels that count.

    Returns
    -------
    Tensor
        Scalar loss with gradient w.r.t. ``logits``.
    """
    ce = cross_entropy_loss(
        logits, target, class_weights=class_weights, ignore_index=ignore_index, valid=valid
    )
    dice = dice_loss(logits, target, ignore_index=ignore_index, smooth=smooth, valid=valid)
    return ce_weight * ce + dice_weight * dice


def aux_loss(
    aux_logits: torch.Tensor | None,
    target: torch.Tensor,
    *,
    weight: float = 0.4,
    **kwargs: object,
) -> torch.Tensor | None:
    """Weighted supervised loss of the auxiliary head.

    ``aux_logits`` is upsampled bilinearly to the target size when smaller.
    Returns ``None`` when ``aux_logits`` is ``None`` (model without aux head),
    so a trainer can write ``loss = sup + (aux_loss(...) or 0)``.

    Parameters
    ----------
    aux_logits : Tensor or None
        ``(B, C, h, w)`` auxiliary scores.
    target : Tensor
        ``(B, H, W)`` labels.
    weight : float
        Multiplier (0.4 as in U2PL).
    **kwargs
        Passed to :func:`supervised_loss` (``class_weights``, ``ce_weight`` ...).

    Returns
    -------
    Tensor or None
    """
    if aux_logits is None:
        return None
    if aux_logits.ndim == 4 and aux_logits.shape[2:] != target.shape[-2:]:
        aux_logits = F.interpolate(
            aux_logits, size=tuple(target.shape[-2:]), mode="bilinear", align_corners=False
        )
    return weight * supervised_loss(aux_logits, target, **kwargs)  # type: ignore[arg-type]


def inverse_frequency_weights(
    target: torch.Tensor,
    num_classes: int = 2,
    *,
    ignore_index: int = IGNORE_INDEX,
    max_weight: float = 10.0,
) -> torch.Tensor:
    """Class weights ``w_c ∝ 1 / frequency_c`` normalised so that the mean pixel weight is 1.

    ``w_c = N / (K * n_c)`` with ``N`` non-ignored pixels and ``K`` classes present,
    then clipped to ``[1 / max_weight, max_weight]``; absent classes get weight 1.

    Parameters
    ----------
    target : Tensor
        Integer labels of any shape.
    num_classes : int
        Number of classes.
    ignore_index : int
        Ignored label.
    max_weight : float
        Clip value (> 1) that bounds the weight of very rare classes.

    Returns
    -------
    Tensor
        ``(num_classes,)`` float32 on ``target``'s device.
    """
    if max_weight < 1:
        raise ValueError(f"max_weight must be >= 1, got {max_weight}")
    t = target[target != ignore_index].long()
    counts = torch.bincount(t, minlength=num_classes)[:num_classes].to(torch.float32)
    weights = torch.ones(num_classes, dtype=torch.float32, device=target.device)
    present = counts > 0
    if int(present.sum()) == 0:
        return weights
    n = counts.sum()
    weights[present] = n / (present.sum() * counts[present])
    return weights.clamp(1.0 / max_weight, max_weight)
