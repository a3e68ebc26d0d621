"""Pseudo-label selection of U2PL: pixel entropy, exact-rank percentiles and the drop schedule.

The teacher's pseudo labels are kept only where it is confident: the entropy of its
probabilities (:func:`entropy_map`) ranks the non-ignored pixels of the whole batch,
and the ``drop_percent_schedule`` % most uncertain are dropped (:func:`pseudo_label_mask`,
by exact rank with :func:`select_by_rank`). :mod:`.losses` re-exports these names and
builds its unsupervised loss on them; :mod:`.contrastive` uses them too.
"""

from __future__ import annotations

import math

import torch

_EPS = 1e-10

__all__ = [
    "check_progress",
    "drop_percent_schedule",
    "entropy_map",
    "hard_pseudo_labels",
    "pseudo_label_mask",
    "select_by_rank",
]


def check_progress(progress: float) -> float:
    """Validate a training progress value (epoch / E or step / total) and return it as float.

    Raises
    ------
    ValueError
        If ``progress`` is NaN or outside [0, 1].
    """
    p = float(progress)
    if not (0.0 <= p <= 1.0):
        raise ValueError(f"progress must be in [0, 1], got {progress!r}")
    return p


# --------------------------------------------------------------------------- entropy / ranks
def entropy_map(prob: torch.Tensor) -> torch.Tensor:
    """Per-pixel entropy ``H = -Σ_c p_c log p_c`` (natural log) of ``(B, C, H, W)`` probabilities.

    A ``(B, H, W)`` input is read as the crack probability of a 2-class problem.
    """
    prob = _as_class_prob(prob)
    return -(prob * torch.log(prob + _EPS)).sum(dim=1)


def _as_class_prob(prob: torch.Tensor) -> torch.Tensor:
    if prob.ndim == 3:
        return torch.stack([1.0 - prob, prob], dim=1)
    if prob.ndim != 4:
        raise ValueError(
            f"probabilities must be (B, C, H, W) or (B, H, W), got {tuple(prob.shape)}"
        )
    return prob


def select_by_rank(
    values: torch.Tensor,
    percent: float,
    *,
    candidates: torch.Tensor | None = None,
    largest: bool = True,
) -> torch.Tensor:
    """Mask of exactly ``round(percent / 100 * n)`` candidates with the largest (smallest) values.

    This is the rank form of "above the (100 - percent)-th percentile": it selects
    an exact count even with ties (ties broken by position, deterministically).

    Parameters
    ----------
    values : Tensor
        Any shape.
    percent : float
        Share of the candidates to select, in [0, 100].
    candidates : Tensor, optional
        Bool mask (same shape) of the pixels that may be selected and that make ``n``;
        all pixels by default.
    largest : bool
        Select the largest values (True) or the smallest.

    Returns
    -------
    Tensor
        Bool mask, same shape as ``values``.
    """
    if not (0.0 <= float(percent) <= 100.0):
        raise ValueError(f"percent must be in [0, 100], got {percent}")
    flat = values.detach().reshape(-1).float()
    cand = (
        torch.ones_like(flat, dtype=torch.bool)
        if candidates is None
        else candidates.reshape(-1).bool()
    )
    out = torch.zeros_like(flat, dtype=torch.bool)
    idx = torch.nonzero(cand, as_tuple=False).squeeze(1)
    k = int(math.floor(float(percent) / 100.0 * idx.numel() + 0.5))
    if k > 0:
        # stable sort: ties resolved by position, so the result is deterministic
        order = torch.sort(flat[idx], descending=largest, stable=True).indices[:k]
        out[idx[order]] = True
    return out.reshape(values.shape)


def hard_pseudo_labels(prob: torch.Tensor, crack_threshold: float = 0.5) -> torch.Tensor:
    """The teacher's hard labels: crack where ``p(crack) > crack_threshold`` (2 classes).

    A calibrated threshold (the model's, chosen on held-out images) makes the pseudo
    labels follow the same decision as the suggestions; at 0.5 this is the argmax. With
    more than 2 classes it is always the argmax.
    """
    prob = _as_class_prob(prob)
    if prob.shape[1] != 2:
        return prob.argmax(dim=1)
    return (prob[:, 1] > float(crack_threshold)).long()


# --------------------------------------------------------------------------- schedule and mask
def drop_percent_schedule(progress: float, start: float = 20.0) -> float:
    """Percent of the most uncertain pixels dropped: ``start * (1 - progress)``.

    This is ``100 - p_t`` with U2PL's ``p_t = 100 - 20 (1 - epoch / E)``.
    """
    if not (0.0 <= start <= 100.0):
        raise ValueError(f"drop start must be in [0, 100], got {start}")
    return float(start) * (1.0 - check_progress(progress))


def pseudo_label_mask(
    teacher_prob: torch.Tensor,
    drop_percent: float,
    ignore_mask: torch.Tensor | None = None,
    *,
    per_class: bool = False,
    crack_threshold: float = 0.5,
) -> torch.Tensor:
    """Pixels whose pseudo label is kept: all but the ``drop_percent`` % most uncertain.

    The entropy of the teacher's probabilities ranks the non-ignored pixels of the
    whole batch (as U2PL's batch-wide percentile); exactly
    ``round(drop_percent / 100 * n_valid)`` of them are dropped.

    With ``per_class=True`` the ranking is done separately within each pseudo class
    (the teacher's argmax): ``drop_percent`` % of the background pseudo labels and
    ``drop_percent`` % of the crack pseudo labels are dropped. Thin cracks are the
    rare, uncertain class, so the batch-wide ranking drops *every* crack pseudo label
    early in training (measured: 100 % of them at a 20 % drop, see docs/model.md);
    the class-wise ranking keeps the most confident ones.

    Parameters
    ----------
    teacher_prob : Tensor
        ``(B, C, H, W)`` teacher probabilities (or ``(B, H, W)`` crack probability).
    drop_percent : float
        Percent of the non-ignored pixels to drop, in [0, 100].
    ignore_mask : Tensor, optional
        ``(B, H, W)`` bool, True where the pixel must be ignored (CutMix padding,
        invalid pixels); such pixels are never kept and do not count in ``n_valid``.
    per_class : bool
        Rank and drop within each pseudo class instead of over the whole batch.
    crack_threshold : float
        Pseudo class of a pixel (see :func:`hard_pseudo_labels`).

    Returns
    -------
    Tensor
        ``(B, H, W)`` bool, True = use this pseudo label.
    """
    with torch.no_grad():
        ent = entropy_map(teacher_prob.detach())
        valid = torch.ones_like(ent, dtype=torch.bool)
        if ignore_mask is not None:
            if ignore_mask.shape != ent.shape:
                raise ValueError(
                    f"ignore_mask {tuple(ignore_mask.shape)} does not match {tuple(ent.shape)}"
                )
            valid = ~ignore_mask.bool()
        if not per_class:
            dropped = select_by_rank(ent, drop_percent, candidates=valid, largest=True)
            return valid & ~dropped
        pseudo = hard_pseudo_labels(teacher_prob.detach(), crack_threshold)
        keep = torch.zeros_like(valid)
        for c in torch.unique(pseudo[valid]).tolist():
            members = valid & (pseudo == c)
            dropped = select_by_rank(ent, drop_percent, candidates=members, largest=True)
            keep |= members & ~dropped
        return keep
