"""U2PL contrastive loss: unreliable pixels as negatives, with a per-class memory bank.

For each class ``c`` (all indexing is by class id, never by list position):

* **reliable pixels**: every non-ignored labelled pixel, plus the unlabelled
  non-ignored pixels with the lowest ``α_t`` % entropy (``α_t = alpha_start (1 - progress)``,
  ranked over all unlabelled pixels of the batch);
  **unreliable pixels**: the unlabelled non-ignored pixels with the highest ``α_t`` %.
* **anchors**: student features of reliable pixels labelled ``c`` (ground truth
  for labelled images, pseudo label for unlabelled) whose teacher probability of
  ``c`` exceeds ``anchor_threshold``; up to ``num_anchors`` sampled without replacement.
  At the feature resolution (1/4) a cell is labelled crack when ANY of its pixels is
  (``label_mode="max"``) and its probability of ``c`` is the cell's MAXIMUM, so a
  confident 1-px crack gives anchors at every alignment (the area average of a 1-px
  crack in a 4x4 cell is 1/4 of its probability, and a top-left sample misses it
  three times in four).
* **positive**: the prototype of ``c``, the mean teacher feature of the reliable
  pixels labelled ``c`` in this batch (detached).
* **negatives**: teacher features of unreliable unlabelled pixels for which ``c``
  ranks in ``[low_rank, high_rank)`` among the classes by teacher probability
  (rank 0 = top class), plus the HARD labelled pixels: ground truth not ``c`` but
  ``c`` among the teacher's top ``labelled_negative_rank`` classes (default 1: the
  teacher wrongly calls them ``c``), as the reference's r_l rule says. With 2 classes
  and the defaults ``low_rank=1, high_rank=2``: the unreliable unlabelled pixels whose
  pseudo label is not ``c``, and the labelled pixels of the other class that the
  teacher assigns to ``c``. (Upstream required ``label == c`` and ``label != c`` at
  once, so its labelled negatives were always empty; taking every labelled pixel of
  the other class instead swamps the memory with easy background.)
  Negatives go into a FIFO :class:`ContrastiveMemory` per class (detached,
  L2-normalised), and ``num_negatives`` are drawn from it for every anchor
  (with replacement), after this batch's negatives are enqueued.
* **loss**: InfoNCE, ``CE(cos(anchor, [positive, negatives]) / τ, target 0)``,
  averaged over the classes that have anchors, a prototype and a non-empty bank.

Features are ``(B, D, h, w)`` at 1/4 resolution; labels / probabilities /
entropy at another size are reduced by :func:`downsample_targets`. The loss has a
gradient w.r.t. the student features only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from napari_crack_al.core.checks import Problems, is_int
from napari_crack_al.core.config_io import ConfigIO
from napari_crack_al.core.errors import ConfigError
from napari_crack_al.core.training.contrastive_memory import ContrastiveMemory
from napari_crack_al.core.training.losses import (
    IGNORE_INDEX,
    check_progress,
    entropy_map,
    select_by_rank,
)

logger = logging.getLogger(__name__)

__all__ = [
    "ContrastiveConfig",
    "ContrastiveMemory",
    "ContrastiveSets",
    "DownsampledTargets",
    "contrastive_sets",
    "contrastive_loss",
    "downsample_targets",
]

LABEL_MODES = ("nearest", "max")


@dataclass(frozen=True)
class ContrastiveConfig(ConfigIO):
    """Settings of the U2PL contrastive loss (defaults suit background / crack).

    Parameters
    ----------
    temperature : float
        InfoNCE temperature τ (> 0).
    num_anchors : int
        Anchors sampled per class and step (upper bound).
    num_negatives : int
        Negatives drawn from the memory bank per anchor.
    memory_size : int
        FIFO capacity of the memory bank, per class.
    low_rank, high_rank : int
        Rank window ``[low_rank, high_rank)`` of the unreliable-negative rule; must
        satisfy ``1 <= low_rank < high_rank`` (with 2 classes: 1 and 2).
    anchor_threshold : float
        Minimum teacher probability of the class for an anchor, in [0, 1).
    alpha_start : float
        Reliable / unreliable share in percent at ``progress = 0``, in (0, 50].
    labelled_negative_rank : int or None
        Labelled pixels of another class are negatives for ``c`` when ``c`` ranks
        below this value (1: the hard ones, which the teacher assigns to ``c``);
        ``None`` means ``high_rank`` (every labelled pixel of another class).
    label_mode : {"max", "nearest"}
        How labels are reduced to the feature resolution (see :func:`downsample_targets`).
    """

    temperature: float = 0.5
    num_anchors: int = 256
    num_negatives: int = 50
    memory_size: int = 30000
    low_rank: int = 1
    high_rank: int = 2
    anchor_threshold: float = 0.3
    alpha_start: float = 20.0
    labelled_negative_rank: int | None = 1
    label_mode: str = "max"

    def __post_init__(self) -> None:
        check = Problems(self)
        check.number("temperature", 0.0, low_open=True)
        for name in ("num_anchors", "num_negatives", "memory_size"):
            check.integer(name, 1)
        check.integer("low_rank", 1)
        check.integer("high_rank", 2)
        if is_int(self.low_rank) and is_int(self.high_rank) and self.low_rank >= self.high_rank:
            check.add(f"ranks must satisfy 1 <= low_rank < high_rank (got {self.low_rank}, "
                      f"{self.high_rank}); for 2 classes use low_rank=1, high_rank=2")
        check.number("anchor_threshold", 0.0, 1.0, high_open=True)
        check.number("alpha_start", 0.0, 50.0, low_open=True)
        check.integer("labelled_negative_rank", 1, none_ok=True)
        check.choice("label_mode", LABEL_MODES)
        check.raise_if_any("ContrastiveConfig")

    @property
    def labelled_rank(self) -> int:
        """The effective labelled-negative rank bound."""
        lnr = self.labelled_negative_rank
        return self.high_rank if lnr is None else lnr

    def alpha(self, progress: float) -> float:
        """Reliable / unreliable share in percent: ``alpha_start * (1 - progress)``."""
        return self.alpha_start * (1.0 - check_progress(progress))


class DownsampledTargets(NamedTuple):
    """Targets reduced to the feature resolution."""

    labels: torch.Tensor  # (B, h, w) int64
    prob: torch.Tensor  # (B, C, h, w), area average
    entropy: torch.Tensor  # (B, h, w)
    prob_max: torch.Tensor  # (B, C, h, w), the largest probability of each class in the cell


def downsample_targets(
    labels: torch.Tensor,
    prob: torch.Tensor,
    size: tuple[int, int],
    *,
    entropy: torch.Tensor | None = None,
    label_mode: str = "nearest",
) -> DownsampledTargets:
    """Reduce labels, teacher probabilities and entropy to the feature size.

    Parameters
    ----------
    labels : Tensor
        ``(B, H, W)`` integer labels, 255 = ignore.
    prob : Tensor
        ``(B, C, H, W)`` teacher probabilities; area-averaged.
    size : tuple of int
        Target ``(h, w)``.
    entropy : Tensor, optional
        ``(B, H, W)`` per-pixel entropy; computed from ``prob`` at full resolution
        when omitted, then area-averaged.
    label_mode : {"nearest", "max"}
        ``"nearest"`` samples one pixel per cell; ``"max"`` takes the largest
        non-ignored label of the cell (for background / crack: a cell touched by
        a crack is crack, so thin cracks survive), ignore when all are ignored.

    Returns
    -------
    DownsampledTargets
    """
    if label_mode not in LABEL_MODES:
        raise ConfigError(f"label_mode must be one of {LABEL_MODES}, got {label_mode!r}")
    size = (int(size[0]), int(size[1]))
    with torch.no_grad():
        prob = prob.detach()
        if entropy is None:
            entropy = entropy_map(prob)
        lab = labels.detach().unsqueeze(1).to(torch.float32)
        if label_mode == "nearest":
            small = F.interpolate(lab, size=size, mode="nearest")
        else:
            lab = torch.where(lab == IGNORE_INDEX, torch.full_like(lab, -1.0), lab)
            small = F.adaptive_max_pool2d(lab, size)
            small = torch.where(small < 0, torch.full_like(small, float(IGNORE_INDEX)), small)
        prob_s = F.interpolate(prob.float(), size=size, mode="area")
        prob_m = F.adaptive_max_pool2d(prob.float(), size)
        ent_s = F.interpolate(entropy.detach().unsqueeze(1).float(), size=size, mode="area")
    return DownsampledTargets(small.squeeze(1).long(), prob_s, ent_s.squeeze(1), prob_m)


def _class_ranks(prob: torch.Tensor) -> torch.Tensor:
    """``(B, C, h, w)`` rank of every class per pixel (0 = most probable; ties by class id)."""
    order = torch.sort(prob, dim=1, descending=True, stable=True).indices
    return torch.argsort(order, dim=1)


class ContrastiveSets(NamedTuple):
    """Which feature cells play which part, for one batch (all ``(B, h, w)`` bool, per class)."""

    labels: torch.Tensor  # (B, h, w) int64 at the feature resolution
    reliable: torch.Tensor  # (B, h, w): labelled cells and the reliable unlabelled cells
    anchors: dict[int, torch.Tensor]  # class -> reliable cells labelled c, confident enough
    negatives: dict[int, torch.Tensor]  # class -> unreliable and hard labelled cells for c


def contrastive_sets(labels: torch.Tensor, teacher_prob: torch.Tensor,
                     entropy: torch.Tensor | None, is_labelled: torch.Tensor, progress: float,
                     size: tuple[int, int], config: ContrastiveConfig | None = None,
                     ) -> ContrastiveSets:
    """Anchors, reliable cells and negatives of every class (see the module docstring).

    Parameters
    ----------
    labels, teacher_prob, entropy, is_labelled, progress
        As :func:`contrastive_loss`.
    size : (int, int)
        The feature resolution ``(h, w)``; labels at another size are reduced with
        :func:`downsample_targets` (``config.label_mode``), and the anchor test uses
        each cell's largest probability.
    config : ContrastiveConfig, optional
    """
    cfg = config if config is not None else ContrastiveConfig()
    num_classes = teacher_prob.shape[1]
    bsz, (h, w) = labels.shape[0], size
    with torch.no_grad():
        if labels.shape[1:] != (h, w):
            small = downsample_targets(labels, teacher_prob, (h, w), entropy=entropy,
                                       label_mode=cfg.label_mode)
            labels, prob, ent, prob_max = small.labels, small.prob, small.entropy, small.prob_max
        else:
            prob = teacher_prob.detach().float()
            ent = entropy_map(prob) if entropy is None else entropy.detach().float()
            prob_max = prob
        alpha = cfg.alpha(progress)
        valid = (labels != IGNORE_INDEX) & (labels >= 0) & (labels < num_classes)
        lab_px = is_labelled.to(labels.device).bool().view(bsz, 1, 1).expand(bsz, h, w)
        unl_valid = valid & ~lab_px
        reliable = (valid & lab_px) | select_by_rank(ent, alpha, candidates=unl_valid,
                                                     largest=False)
        unreliable = select_by_rank(ent, alpha, candidates=unl_valid, largest=True)
        ranks = _class_ranks(prob)
        anchors, negatives = {}, {}
        for c in range(num_classes):
            is_c = labels == c
            anchors[c] = reliable & is_c & (prob_max[:, c] > cfg.anchor_threshold)
            rank_c = ranks[:, c]
            negatives[c] = ((unreliable & (rank_c >= cfg.low_rank) & (rank_c < cfg.high_rank))
                            | (valid & lab_px & ~is_c & (rank_c < cfg.labelled_rank)))
    return ContrastiveSets(labels, reliable, anchors, negatives)


def contrastive_loss(
    student_features: torch.Tensor,
    teacher_features: torch.Tensor,
    labels: torch.Tensor,
    teacher_prob: torch.Tensor,
    entropy: torch.Tensor | None,
    is_labelled: torch.Tensor,
    progress: float,
    memory: ContrastiveMemory,
    config: ContrastiveConfig | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """U2PL contrastive loss of one batch (labelled and unlabelled images together).

    Parameters
    ----------
    student_features : Tensor
        ``(B, D, h, w)`` student representation (gradient flows here only).
    teacher_features : Tensor
        ``(B, D, h, w)`` teacher representation of the same (augmented) images.
    labels : Tensor
        ``(B, H, W)`` int64: ground truth for labelled images, pseudo labels for
        unlabelled ones, 255 = ignore. At another size than the features it is
        reduced with :func:`downsample_targets` (``config.label_mode``), as are
        ``teacher_prob`` and ``entropy``.
    teacher_prob : Tensor
        ``(B, C, H, W)`` teacher probabilities for every image (the teacher is run on
        labelled images too).
    entropy : Tensor or None
        ``(B, H, W)`` teacher entropy; computed from ``teacher_prob`` when ``None``.
    is_labelled : Tensor
        ``(B,)`` bool, True for images whose ``labels`` are ground truth.
    progress : float
        Training progress in [0, 1].
    memory : ContrastiveMemory
        Per-class negative banks, updated in place (must have ``C`` classes).
    config : ContrastiveConfig, optional
        Settings; defaults when ``None``.
    generator : torch.Generator, optional
        Source of randomness for anchor and negative sampling (CPU or the features'
        device); the global generator when ``None``.

    Returns
    -------
    Tensor
        Scalar. When no class has anchors, a prototype and negatives, a zero
        attached to ``student_features`` (``backward`` works, gradients are 0).
    """
    cfg = config if config is not None else ContrastiveConfig()
    _check_inputs(student_features, teacher_features, labels, teacher_prob, is_labelled, memory,
                  cfg)
    _, dim, h, w = student_features.shape
    device = student_features.device
    sets = contrastive_sets(labels.to(device), teacher_prob.to(device),
                            None if entropy is None else entropy.to(device),
                            is_labelled.to(device), progress, (h, w), cfg)
    with torch.no_grad():
        teacher = F.normalize(teacher_features.detach().float(), dim=1)
        teacher = teacher.permute(0, 2, 3, 1).reshape(-1, dim)
    student = F.normalize(student_features.float(), dim=1).permute(0, 2, 3, 1).reshape(-1, dim)
    terms: dict[int, torch.Tensor] = {}
    for c in range(teacher_prob.shape[1]):
        term = _class_term(c, sets, teacher, student, memory, cfg, generator)
        if term is not None:
            terms[c] = term
    if not terms:
        logger.debug("contrastive loss: no class with anchors and negatives")
        return student_features.sum() * 0.0
    logger.debug("contrastive loss over classes %s (alpha %.2f %%)", sorted(terms),
                 cfg.alpha(progress))
    return torch.stack(list(terms.values())).mean()


def _check_inputs(student_features: torch.Tensor, teacher_features: torch.Tensor,
                  labels: torch.Tensor, teacher_prob: torch.Tensor, is_labelled: torch.Tensor,
                  memory: ContrastiveMemory, cfg: ContrastiveConfig) -> None:
    """Shapes that fit together, a memory of as many classes, a usable rank window."""
    if student_features.ndim != 4 or teacher_features.shape != student_features.shape:
        raise ValueError(
            f"student {tuple(student_features.shape)} and teacher {tuple(teacher_features.shape)} "
            "features must both be (B, D, h, w)"
        )
    bsz = student_features.shape[0]
    if teacher_prob.ndim != 4 or teacher_prob.shape[0] != bsz:
        raise ValueError(f"teacher_prob must be (B, C, H, W), got {tuple(teacher_prob.shape)}")
    if labels.ndim != 3 or labels.shape[0] != bsz or labels.shape[1:] != teacher_prob.shape[2:]:
        raise ValueError(f"labels {tuple(labels.shape)} do not match {tuple(teacher_prob.shape)}")
    if is_labelled.shape != (bsz,):
        raise ValueError(f"is_labelled must be ({bsz},), got {tuple(is_labelled.shape)}")
    num_classes = teacher_prob.shape[1]
    if memory.num_classes != num_classes:
        raise ValueError(f"memory has {memory.num_classes} classes, probabilities {num_classes}")
    if cfg.low_rank >= num_classes:
        raise ConfigError(
            f"low_rank={cfg.low_rank} leaves no negative rank window for {num_classes} classes; "
            f"use 1 <= low_rank < {num_classes}"
        )


def _class_term(c: int, sets: ContrastiveSets, teacher: torch.Tensor, student: torch.Tensor,
                memory: ContrastiveMemory, cfg: ContrastiveConfig,
                generator: torch.Generator | None) -> torch.Tensor | None:
    """InfoNCE of class ``c``'s anchors against its prototype and sampled negatives (after
    pushing this batch's negatives into the memory); None without anchors or negatives."""
    device, dim = student.device, student.shape[1]
    gen_device = generator.device if generator is not None else torch.device("cpu")
    with torch.no_grad():
        rel_c = (sets.reliable & (sets.labels == c)).reshape(-1)
        anchor_idx = torch.nonzero(sets.anchors[c].reshape(-1), as_tuple=False).squeeze(1)
        negatives = sets.negatives[c].reshape(-1)
        if memory.shared or bool(negatives.any()):  # shared: every rank pushes, even 0 rows
            memory.push(c, teacher[negatives])
        if anchor_idx.numel() == 0 or memory.size(c) == 0:
            return None
        proto = F.normalize(teacher[rel_c].mean(dim=0), dim=0)
        n_anchor = min(cfg.num_anchors, anchor_idx.numel())
        pick = torch.randperm(anchor_idx.numel(), generator=generator, device=gen_device)
        anchor_idx = anchor_idx[pick[:n_anchor].to(device)]
        negs = memory.sample(c, n_anchor * cfg.num_negatives, generator)
        negs = F.normalize(negs.to(device).float(), dim=1).view(n_anchor, cfg.num_negatives, dim)
    anchors = student[anchor_idx]  # (n, D), carries the gradient
    pos = anchors @ proto  # (n,)
    neg = torch.einsum("nd,nkd->nk", anchors, negs)
    logits = torch.cat([pos.unsqueeze(1), neg], dim=1) / cfg.temperature
    target = torch.zeros(n_anchor, dtype=torch.long, device=device)
    return F.cross_entropy(logits, target)
