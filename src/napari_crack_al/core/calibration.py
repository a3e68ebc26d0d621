"""Threshold calibration: the crack-probability cut that maximises F1 on held-out images.

A model trained on thin cracks (a few percent of the pixels) is rarely calibrated so
that 0.5 is its best cut; its best pixel F1 is usually at a far lower probability.
:func:`calibrate_threshold` picks, for a set of held-out probability maps and masks,
the threshold with the highest micro-averaged pixel F1 (counts summed over the
images, as :func:`~napari_crack_al.core.metrics.evaluate_masks` does), on a grid of
thresholds. The counts of every threshold come from one sort of each image's crack
and background probabilities, so the grid size hardly matters and the counts are
exactly those of ``probability > threshold``.

A pixel is crack when ``probability > threshold``, everywhere in this package.

numpy only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DEFAULT_THRESHOLD",
    "model_threshold",
    "CALIBRATION_GRID",
    "ThresholdChoice",
    "threshold_counts",
    "calibrate_threshold",
    "choose_threshold",
]

logger = logging.getLogger(__name__)

#: The cut used when nothing better is known (no held-out image, no previous model).
DEFAULT_THRESHOLD = 0.5
#: Candidate thresholds: 0.01, 0.02, ..., 0.99.
CALIBRATION_GRID = np.round(np.arange(0.01, 1.0, 0.01), 2)


def model_threshold(metadata: object) -> float:
    """The threshold a model stored in its checkpoint metadata, else :data:`DEFAULT_THRESHOLD`.

    Parameters
    ----------
    metadata : mapping
        Checkpoint metadata (``"threshold"``: a number in (0, 1)); anything else, or a
        missing or invalid value, gives the default.
    """
    value = metadata.get("threshold") if isinstance(metadata, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 < value < 1.0:
        return float(value)
    return DEFAULT_THRESHOLD


@dataclass(frozen=True)
class ThresholdChoice:
    """The outcome of :func:`calibrate_threshold`.

    Attributes
    ----------
    threshold : float
        The chosen cut.
    f1 : float
        Micro pixel F1 of the held-out images at that cut.
    thresholds, f1s : tuple of float
        The grid and the F1 at every threshold of it.
    n_images : int
        Held-out images used.
    """

    threshold: float
    f1: float
    thresholds: tuple[float, ...]
    f1s: tuple[float, ...]
    n_images: int


def threshold_counts(probability: np.ndarray, truth: np.ndarray, thresholds: np.ndarray,
                     valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """True and false positives of ``probability > t`` for every ``t``, and the crack pixels.

    Parameters
    ----------
    probability : ndarray
        (H, W) crack probabilities in [0, 1].
    truth : ndarray
        (H, W) bool crack mask.
    thresholds : ndarray
        Increasing cuts in [0, 1).
    valid : ndarray, optional
        (H, W) bool; only these pixels count.

    Returns
    -------
    (ndarray, ndarray, int)
        ``tp`` and ``fp`` (int64, one per threshold) and the number of crack pixels.
    """
    p = np.asarray(probability, dtype=np.float32)
    g = np.asarray(truth, dtype=bool)
    if p.shape != g.shape:
        raise ValueError(f"probability {p.shape} and mask {g.shape} differ in shape")
    if valid is not None:
        v = np.asarray(valid, dtype=bool)
        p, g = p[v], g[v]
    else:
        p, g = p.ravel(), g.ravel()
    t = np.asarray(thresholds, dtype=np.float64)
    # compared as ``probability > t`` does: float32 values promoted to float64
    pos = np.sort(p[g].astype(np.float64))
    neg = np.sort(p[~g].astype(np.float64))
    tp = pos.size - np.searchsorted(pos, t, side="right")
    fp = neg.size - np.searchsorted(neg, t, side="right")
    return tp.astype(np.int64), fp.astype(np.int64), int(pos.size)


def calibrate_threshold(probabilities: Sequence[np.ndarray], truths: Sequence[np.ndarray], *,
                        valid: Sequence[np.ndarray | None] | None = None,
                        thresholds: Sequence[float] | np.ndarray | None = None,
                        ) -> ThresholdChoice | None:
    """The threshold that maximises the micro pixel F1 of held-out images.

    Ties (a plateau of equal F1) are broken towards the threshold nearest 0.5.

    Parameters
    ----------
    probabilities : sequence of ndarray
        (H, W) crack probabilities, one per held-out image.
    truths : sequence of ndarray
        Their crack masks.
    valid : sequence of ndarray or None, optional
        Per-image valid masks.
    thresholds : sequence of float, optional
        Candidates (default :data:`CALIBRATION_GRID`, 0.01 ... 0.99).

    Returns
    -------
    ThresholdChoice or None
        None when there is no image or the masks hold no crack pixel (F1 is
        undefined: nothing to calibrate on).
    """
    if len(probabilities) != len(truths):
        raise ValueError(f"{len(probabilities)} probability maps but {len(truths)} masks")
    grid = np.asarray(CALIBRATION_GRID if thresholds is None else thresholds, dtype=np.float64)
    if grid.ndim != 1 or grid.size == 0 or np.any(np.diff(grid) <= 0):
        raise ValueError("thresholds must be a non-empty increasing 1-D sequence")
    valids = [None] * len(truths) if valid is None else list(valid)
    tp = np.zeros(grid.size, dtype=np.int64)
    fp = np.zeros(grid.size, dtype=np.int64)
    cracks = 0
    for p, g, v in zip(probabilities, truths, valids, strict=True):
        t, f, c = threshold_counts(p, g, grid, v)
        tp += t
        fp += f
        cracks += c
    choice = choose_threshold(tp, fp, cracks, grid, n_images=len(probabilities))
    if choice is not None:
        logger.debug("calibrated threshold %.2f (F1 %.3f) on %d images", choice.threshold,
                     choice.f1, len(probabilities))
    return choice


def choose_threshold(tp: np.ndarray, fp: np.ndarray, cracks: int,
                     thresholds: Sequence[float] | np.ndarray | None = None, *,
                     n_images: int = 0) -> ThresholdChoice | None:
    """The F1-maximising threshold from counts (see :func:`threshold_counts`, summed).

    Ties (a plateau of equal F1) are broken towards the threshold nearest 0.5.

    Returns
    -------
    ThresholdChoice or None
        None without a crack pixel.
    """
    if cracks == 0:
        return None
    grid = np.asarray(CALIBRATION_GRID if thresholds is None else thresholds, dtype=np.float64)
    f1s = 2.0 * np.asarray(tp) / np.maximum(1, 2 * np.asarray(tp) + np.asarray(fp)
                                            + (cracks - np.asarray(tp)))
    best = float(f1s.max())
    ties = np.flatnonzero(f1s >= best - 1e-12)
    k = int(ties[np.argmin(np.abs(grid[ties] - 0.5))])
    return ThresholdChoice(threshold=float(grid[k]), f1=best,
                           thresholds=tuple(float(t) for t in grid),
                           f1s=tuple(float(f) for f in f1s), n_images=n_images)
