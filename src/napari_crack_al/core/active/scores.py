"""Per-image informativeness scores, from a model's probability map (no torch).

Every score is a float where **higher means more worth annotating**. Invalid pixels
(``valid == False``) never count. Entropies are normalised to [0, 1] (divided by
``ln 2`` for the two classes), as in :mod:`napari_crack_al.core.inference`.

Score kinds (:data:`SCORE_KINDS`)
---------------------------------
``entropy``
    Mean pixel entropy over the valid pixels (the course project's criterion). It is
    dominated by the easy background: a thin uncertain crack barely moves it.
``crack_entropy``
    Mean entropy over the *crack region*: pixels whose crack probability exceeds
    ``crack_threshold`` (0.1), dilated by ``dilation_px`` (3) pixels. 0 when the model
    sees no crack at all. Not diluted by the background.
``topk_entropy``
    Mean of the ``topk_fraction`` (1 %) most uncertain valid pixels.
``margin``
    ``1 - |p(crack) - p(background)|`` averaged over the crack region.
``least_confidence``
    ``1 - max(p(crack), p(background))`` averaged over the top-k pixels.
    (For two classes both per-pixel quantities are proportional to ``min(p, 1 - p)``;
    the two kinds differ by where they are averaged: crack region vs top-k.)
``disagreement``
    With a second model (the student): pixels where the two argmaxes differ, divided
    by the pixels predicted crack by either model (``1 - IoU`` of the two masks).
``disagreement_kl``
    Mean symmetric KL divergence between the two models over the union of their
    crack regions (in nats).
``bald``
    MC-dropout mutual information (see :mod:`.mc_dropout`) averaged over the top-k
    pixels. Costs ``mc_passes`` extra forward passes per image.

Running a model over a pool of images to get these scores, from one forward pass per
image, is :mod:`.scoring`. This module does not import torch.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..checks import Problems
from ..entropy import binary_entropy

__all__ = [
    "SCORE_KINDS",
    "UNCERTAINTY_KINDS",
    "ScoreConfig",
    "ImageScores",
    "binary_entropy",
    "crack_region",
    "topk_mean",
    "region_mean",
    "uncertainty_scores",
    "disagreement_scores",
]

log = logging.getLogger(__name__)

#: Scores computed from one model's single forward pass.
UNCERTAINTY_KINDS = ("entropy", "crack_entropy", "topk_entropy", "margin", "least_confidence")
#: Every score kind this module can produce.
SCORE_KINDS = UNCERTAINTY_KINDS + ("disagreement", "disagreement_kl", "bald")

_EPS = 1e-7


@dataclass(frozen=True)
class ScoreConfig:
    """How pixel uncertainties are aggregated into image scores.

    Parameters
    ----------
    crack_threshold : float
        Crack probability above which a pixel belongs to the crack region, in (0, 1).
    dilation_px : int
        The crack region is dilated by this many pixels (square neighbourhood).
    topk_fraction : float
        Share of the valid pixels averaged by the top-k scores, in (0, 1].
    """

    crack_threshold: float = 0.1
    dilation_px: int = 3
    topk_fraction: float = 0.01

    def __post_init__(self) -> None:
        check = Problems(self)
        check.number("crack_threshold", 0.0, 1.0, low_open=True, high_open=True)
        check.integer("dilation_px", 0)
        check.number("topk_fraction", 0.0, 1.0, low_open=True)
        check.raise_if_any("ScoreConfig")


@dataclass(frozen=True)
class ImageScores:
    """Scores of one image (one item yielded by :func:`iter_score_images`).

    Attributes
    ----------
    index : int
        Position of the image in the input sequence.
    name : str
        Image name.
    scores : dict of str to float
        ``{kind: value}`` (see :data:`SCORE_KINDS`).
    embedding : ndarray or None
        float32 (C,) L2-normalised global average pool of the encoder's deepest stage.
    probability : ndarray or None
        float32 (H, W) crack probability of the main model (None once the pool has
        stored what it needed: a pool keeps the scores, not the maps).
    """

    index: int
    name: str
    scores: dict[str, float]
    embedding: np.ndarray | None = field(repr=False)
    probability: np.ndarray | None = field(repr=False)


# ---------------------------------------------------------------------------- pixel maps
def _valid_or_all(valid: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if valid is None:
        return np.ones(shape, dtype=bool)
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != shape:
        raise ValueError(f"valid mask {valid.shape} does not match the map {shape}")
    return valid


def crack_region(probability: np.ndarray, valid: np.ndarray | None = None, *,
                 threshold: float = 0.1, dilation_px: int = 3) -> np.ndarray:
    """Pixels near a possible crack: ``probability > threshold`` dilated, restricted to ``valid``.

    Parameters
    ----------
    probability : ndarray
        (H, W) crack probability.
    valid : ndarray or None
        bool (H, W); None means every pixel is valid.
    threshold : float
        Probability above which a pixel is a crack candidate.
    dilation_px : int
        Dilation radius (square structuring element of side ``2 * dilation_px + 1``).

    Returns
    -------
    ndarray
        bool (H, W).
    """
    prob = np.asarray(probability)
    valid = _valid_or_all(valid, prob.shape)
    region = (prob > threshold) & valid
    if dilation_px > 0 and region.any():
        region = ndimage.maximum_filter(region, size=2 * int(dilation_px) + 1)
    return region & valid


def region_mean(values: np.ndarray, region: np.ndarray) -> float:
    """Mean of ``values`` over ``region`` (0.0 for an empty region)."""
    n = int(np.count_nonzero(region))
    if n == 0:
        return 0.0
    return float(np.sum(values, where=region, dtype=np.float64) / n)


def topk_mean(values: np.ndarray, valid: np.ndarray | None = None, *,
              fraction: float = 0.01) -> float:
    """Mean of the ``ceil(fraction * n_valid)`` largest valid values (0.0 without valid pixels)."""
    vals = np.asarray(values)
    valid = _valid_or_all(valid, vals.shape)
    flat = vals[valid] if not valid.all() else vals.ravel()
    n = flat.size
    if n == 0:
        return 0.0
    k = min(n, max(1, int(math.ceil(fraction * n))))
    top = np.partition(flat, n - k)[n - k:]
    return float(np.mean(top, dtype=np.float64))


# ---------------------------------------------------------------------------- image scores
def uncertainty_scores(probability: np.ndarray, entropy: np.ndarray | None = None,
                       valid: np.ndarray | None = None,
                       config: ScoreConfig | None = None) -> dict[str, float]:
    """The single-model scores of one image (:data:`UNCERTAINTY_KINDS`).

    Parameters
    ----------
    probability : ndarray
        float (H, W) crack probability.
    entropy : ndarray or None
        Normalised entropy map (computed from ``probability`` when None).
    valid : ndarray or None
        bool (H, W) valid pixels; None means all.
    config : ScoreConfig or None
        Aggregation settings (defaults when None).

    Returns
    -------
    dict of str to float
    """
    cfg = config if config is not None else ScoreConfig()
    prob = np.asarray(probability, dtype=np.float32)
    if prob.ndim != 2:
        raise ValueError(f"probability must be 2-D, got shape {prob.shape}")
    valid = _valid_or_all(valid, prob.shape)
    ent = binary_entropy(prob) if entropy is None else np.asarray(entropy, dtype=np.float32)
    if ent.shape != prob.shape:
        raise ValueError(f"entropy {ent.shape} does not match probability {prob.shape}")
    if not valid.any():
        return {k: 0.0 for k in UNCERTAINTY_KINDS}
    region = crack_region(prob, valid, threshold=cfg.crack_threshold, dilation_px=cfg.dilation_px)
    minority = np.minimum(prob, 1.0 - prob)  # min(p, 1 - p)
    return {
        "entropy": region_mean(ent, valid),
        "crack_entropy": region_mean(ent, region),
        "topk_entropy": topk_mean(ent, valid, fraction=cfg.topk_fraction),
        "margin": region_mean(2.0 * minority, region),          # 1 - |p1 - p0|
        "least_confidence": topk_mean(minority, valid, fraction=cfg.topk_fraction),  # 1 - max p
    }


def disagreement_scores(teacher: np.ndarray, student: np.ndarray, valid: np.ndarray | None = None,
                        config: ScoreConfig | None = None) -> dict[str, float]:
    """Teacher-student disagreement of one image.

    Parameters
    ----------
    teacher, student : ndarray
        float (H, W) crack probabilities of the two models.
    valid : ndarray or None
        bool (H, W) valid pixels.
    config : ScoreConfig or None
        For the crack region of the KL average.

    Returns
    -------
    dict
        ``disagreement``: pixels whose argmax differs / pixels predicted crack by either
        model (0 when neither predicts a crack); ``disagreement_kl``: mean symmetric KL
        (nats) over the union of both models' crack regions.
    """
    cfg = config if config is not None else ScoreConfig()
    pt = np.asarray(teacher, dtype=np.float32)
    ps = np.asarray(student, dtype=np.float32)
    if pt.shape != ps.shape or pt.ndim != 2:
        raise ValueError(f"teacher {pt.shape} and student {ps.shape} must be equal 2-D shapes")
    valid = _valid_or_all(valid, pt.shape)
    mt, ms = (pt > 0.5) & valid, (ps > 0.5) & valid
    union = int(np.count_nonzero(mt | ms))
    differ = int(np.count_nonzero(mt ^ ms))
    frac = differ / union if union else 0.0
    a = np.clip(pt, _EPS, 1.0 - _EPS)
    b = np.clip(ps, _EPS, 1.0 - _EPS)
    # KL(a||b) + KL(b||a) = (a - b) * (log a - log b) + ((1-a) - (1-b)) * (log(1-a) - log(1-b))
    skl = (a - b) * (np.log(a) - np.log(b)) + (b - a) * (np.log1p(-a) - np.log1p(-b))
    region = crack_region(np.maximum(pt, ps), valid, threshold=cfg.crack_threshold,
                          dilation_px=cfg.dilation_px)
    return {"disagreement": float(frac), "disagreement_kl": region_mean(skl, region)}
