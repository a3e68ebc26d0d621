"""Crack segmentation metrics: pixel IoU / P / R / F1, tolerance F1, ODS / OIS.

numpy + scikit-image (+ scipy.ndimage, a dependency of scikit-image); no torch.

Conventions
-----------
* Masks are ``bool (H, W)`` arrays (True = crack); an optional ``valid`` mask
  restricts every count to valid pixels (prediction and ground truth are ANDed
  with it first).
* Set-level numbers are **micro-averaged**: counts are summed over the images,
  then the ratios are taken.
* Empty cases: when the ground truth *and* the prediction are empty over the
  whole set, every score is 1.0 (nothing to find, nothing wrongly found);
  otherwise a ratio with a zero denominator is 0.0 (e.g. precision of an empty
  prediction against a non-empty ground truth).
* Tolerance matching (``tolerance`` px, Euclidean distance, default 2): both the
  prediction and the ground truth are thinned to one-pixel skeletons
  (``skimage.morphology.skeletonize``). A predicted skeleton pixel is correct if
  it lies within ``tolerance`` of a ground-truth pixel (of the full, unthinned
  mask, so a wide crack is not penalised for where its skeleton runs); a
  ground-truth skeleton pixel is found if it lies within ``tolerance`` of the
  predicted skeleton. ``precision_tol = correct / predicted skeleton pixels``,
  ``recall_tol = found / ground-truth skeleton pixels``. Matching is not
  one-to-one (no bipartite assignment as in the BSDS benchmark code).
* ODS / OIS: a pixel is predicted crack when ``probability > threshold``;
  ODS is the best tolerance F1 over thresholds with one threshold for the set
  (micro sums per threshold), OIS the mean over images of each image's best F1.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "PixelMetrics",
    "ToleranceMetrics",
    "confusion",
    "effort_lengths",
    "evaluate_masks",
    "f1_score",
    "ods_ois",
    "tolerance_counts",
]

#: 50 thresholds 0.01, 0.03, ..., 0.99.
DEFAULT_THRESHOLDS = np.round(np.arange(0.01, 1.0, 0.02), 2)


def _ratio(num: float, den: float, *, all_empty: bool) -> float:
    if all_empty:
        return 1.0
    return float(num) / float(den) if den > 0 else 0.0


def f1_score(precision: float, recall: float) -> float:
    """Harmonic mean of precision and recall (0 when both are 0)."""
    s = precision + recall
    return 2.0 * precision * recall / s if s > 0 else 0.0


def _as_mask(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D mask, got shape {a.shape}")
    return a.astype(bool, copy=False)


def _prepare(
    pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    p = _as_mask(pred, "prediction")
    g = _as_mask(gt, "ground truth")
    if p.shape != g.shape:
        raise ValueError(f"prediction {p.shape} and ground truth {g.shape} differ in shape")
    if valid is not None:
        v = _as_mask(valid, "valid mask")
        if v.shape != p.shape:
            raise ValueError(f"valid mask {v.shape} does not match the masks {p.shape}")
        p, g = p & v, g & v
    return p, g


def confusion(
    pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None
) -> tuple[int, int, int, int]:
    """Pixel counts ``(tp, fp, fn, tn)`` of the crack class.

    Parameters
    ----------
    pred, gt : ndarray
        ``(H, W)`` masks (anything that casts to bool).
    valid : ndarray, optional
        ``(H, W)`` bool; only valid pixels are counted (tn included).

    Returns
    -------
    tuple of int
    """
    p, g = _prepare(pred, gt, valid)
    tp = int(np.count_nonzero(p & g))
    fp = int(np.count_nonzero(p & ~g))
    fn = int(np.count_nonzero(~p & g))
    total = p.size if valid is None else int(np.count_nonzero(valid))
    return tp, fp, fn, total - tp - fp - fn


@dataclass
class PixelMetrics:
    """Micro-averaged pixel-exact metrics of the crack class over a set of images."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    n_images: int = 0

    def update(self, pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Add one image's counts (see :func:`confusion`)."""
        tp, fp, fn, tn = confusion(pred, gt, valid)
        self.tp += tp
        self.fp += fp
        self.fn += fn
        self.tn += tn
        self.n_images += 1

    @property
    def _empty(self) -> bool:
        return self.tp + self.fp + self.fn == 0

    @property
    def precision(self) -> float:
        """``tp / (tp + fp)``."""
        return _ratio(self.tp, self.tp + self.fp, all_empty=self._empty)

    @property
    def recall(self) -> float:
        """``tp / (tp + fn)``."""
        return _ratio(self.tp, self.tp + self.fn, all_empty=self._empty)

    @property
    def f1(self) -> float:
        """``2 tp / (2 tp + fp + fn)`` (equals the harmonic mean of P and R)."""
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn, all_empty=self._empty)

    @property
    def iou(self) -> float:
        """Crack IoU ``tp / (tp + fp + fn)``."""
        return _ratio(self.tp, self.tp + self.fp + self.fn, all_empty=self._empty)

    def as_dict(self) -> dict[str, float]:
        """``{"crack_iou", "precision", "recall", "f1"}``."""
        return {"crack_iou": self.iou, "precision": self.precision, "recall": self.recall,
                "f1": self.f1}


def _skeleton(mask: np.ndarray) -> np.ndarray:
    return skeletonize(mask) if mask.any() else mask.copy()


def _disk_offsets(tolerance: float) -> list[tuple[int, int]]:
    r = int(np.floor(tolerance))
    return [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)
            if dy * dy + dx * dx <= tolerance * tolerance]


def _near(mask: np.ndarray, tolerance: float) -> np.ndarray:
    """Pixels within ``tolerance`` (Euclidean) of a True pixel of ``mask``."""
    if not mask.any():
        return np.zeros_like(mask)
    if tolerance > 8:
        return ndimage.distance_transform_edt(~mask) <= tolerance
    # a dilation by the Euclidean disk, done with shifted ORs: much faster than an EDT
    r = int(np.floor(tolerance))
    h, w = mask.shape
    padded = np.pad(mask, r)
    out = np.zeros_like(mask)
    for dy, dx in _disk_offsets(tolerance):
        out |= padded[r + dy : r + dy + h, r + dx : r + dx + w]
    return out


def _gt_tolerance_maps(gt: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """(pixels near the full ground truth, ground-truth skeleton)."""
    return _near(gt, tolerance), _skeleton(gt)


def _counts_from_maps(
    pred: np.ndarray, gt_near: np.ndarray, gt_skel: np.ndarray, tolerance: float
) -> tuple[int, int, int, int]:
    pred_skel = _skeleton(pred)
    n_pred = int(np.count_nonzero(pred_skel))
    n_gt = int(np.count_nonzero(gt_skel))
    correct = int(np.count_nonzero(pred_skel & gt_near))
    if n_pred == 0 or n_gt == 0:
        return correct, n_pred, 0, n_gt
    # the distance transform only needs the region around the ground-truth skeleton
    rows, cols = np.nonzero(gt_skel)
    m = int(np.ceil(tolerance)) + 1
    r0, r1 = max(rows.min() - m, 0), rows.max() + m + 1
    c0, c1 = max(cols.min() - m, 0), cols.max() + m + 1
    found = int(np.count_nonzero(gt_skel[r0:r1, c0:c1] & _near(pred_skel[r0:r1, c0:c1], tolerance)))
    return correct, n_pred, found, n_gt


def tolerance_counts(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    tolerance: float = 2.0,
    valid: np.ndarray | None = None,
) -> tuple[int, int, int, int]:
    """Counts of tolerance matching for one image.

    Returns
    -------
    tuple of int
        ``(pred_correct, pred_total, gt_found, gt_total)``: correct predicted
        skeleton pixels, predicted skeleton pixels, found ground-truth skeleton
        pixels, ground-truth skeleton pixels (see the module docstring).
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    p, g = _prepare(pred, gt, valid)
    gt_near, gt_skel = _gt_tolerance_maps(g, tolerance)
    return _counts_from_maps(p, gt_near, gt_skel, tolerance)


@dataclass
class ToleranceMetrics:
    """Micro-averaged tolerance precision / recall / F1 over a set of images."""

    tolerance: float = 2.0
    pred_correct: int = 0
    pred_total: int = 0
    gt_found: int = 0
    gt_total: int = 0
    n_images: int = 0

    def update(self, pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Add one image (see :func:`tolerance_counts`)."""
        self.add_counts(*tolerance_counts(pred, gt, tolerance=self.tolerance, valid=valid))

    def add_counts(self, pred_correct: int, pred_total: int, gt_found: int, gt_total: int) -> None:
        """Add precomputed counts of one image."""
        self.pred_correct += pred_correct
        self.pred_total += pred_total
        self.gt_found += gt_found
        self.gt_total += gt_total
        self.n_images += 1

    @property
    def _empty(self) -> bool:
        return self.pred_total == 0 and self.gt_total == 0

    @property
    def precision(self) -> float:
        """Correct predicted skeleton pixels / predicted skeleton pixels."""
        return _ratio(self.pred_correct, self.pred_total, all_empty=self._empty)

    @property
    def recall(self) -> float:
        """Found ground-truth skeleton pixels / ground-truth skeleton pixels."""
        return _ratio(self.gt_found, self.gt_total, all_empty=self._empty)

    @property
    def f1(self) -> float:
        """Harmonic mean of the tolerance precision and recall."""
        return 1.0 if self._empty else f1_score(self.precision, self.recall)


def ods_ois(
    probabilities: Sequence[np.ndarray],
    gts: Sequence[np.ndarray],
    thresholds: Sequence[float] | np.ndarray | None = None,
    tolerance: float = 2.0,
    valid: Sequence[np.ndarray | None] | None = None,
) -> dict[str, float | list[float]]:
    """ODS and OIS tolerance F1 of crack probability maps.

    Parameters
    ----------
    probabilities : sequence of ndarray
        ``(H, W)`` crack probabilities in [0, 1], one per image.
    gts : sequence of ndarray
        Ground-truth masks, same shapes.
    thresholds : sequence of float, optional
        Thresholds (a pixel is crack when ``prob > t``); :data:`DEFAULT_THRESHOLDS`
        (0.01, 0.03, ..., 0.99) by default.
    tolerance : float
        Matching distance in pixels.
    valid : sequence of ndarray or None, optional
        Per-image valid masks.

    Returns
    -------
    dict
        ``ods``, ``ods_threshold``, ``ods_precision``, ``ods_recall``, ``ois``,
        ``f1_per_threshold`` (list) and ``thresholds`` (list).
    """
    if len(probabilities) != len(gts):
        raise ValueError(f"{len(probabilities)} probability maps but {len(gts)} ground truths")
    if len(probabilities) == 0:
        raise ValueError("ods_ois needs at least one image")
    ths = np.asarray(DEFAULT_THRESHOLDS if thresholds is None else thresholds, dtype=np.float64)
    if ths.ndim != 1 or ths.size == 0:
        raise ValueError("thresholds must be a non-empty 1-D sequence")
    valids = [None] * len(gts) if valid is None else list(valid)
    per_threshold = [ToleranceMetrics(tolerance) for _ in ths]
    best_per_image = []
    for prob, gt, v in zip(probabilities, gts, valids, strict=True):
        prob = np.asarray(prob, dtype=np.float32)
        if prob.ndim != 2:
            raise ValueError(f"probability map must be 2-D, got shape {prob.shape}")
        _, g = _prepare(np.zeros(prob.shape, bool), gt, v)
        if v is not None:
            prob = np.where(np.asarray(v, bool), prob, 0.0)
        gt_near, gt_skel = _gt_tolerance_maps(g, tolerance)
        best = 0.0
        for k, t in enumerate(ths):
            counts = _counts_from_maps(prob > t, gt_near, gt_skel, tolerance)
            per_threshold[k].add_counts(*counts)
            one = ToleranceMetrics(tolerance)
            one.add_counts(*counts)
            best = max(best, one.f1)
        best_per_image.append(best)
    f1s = [m.f1 for m in per_threshold]
    k = int(np.argmax(f1s))
    return {
        "ods": float(f1s[k]),
        "ods_threshold": float(ths[k]),
        "ods_precision": per_threshold[k].precision,
        "ods_recall": per_threshold[k].recall,
        "ois": float(np.mean(best_per_image)),
        "f1_per_threshold": [float(f) for f in f1s],
        "thresholds": [float(t) for t in ths],
    }


def evaluate_masks(
    preds: Sequence[np.ndarray],
    gts: Sequence[np.ndarray],
    *,
    tolerance: float = 2.0,
    valid: Sequence[np.ndarray | None] | None = None,
) -> dict[str, float]:
    """Pixel and tolerance metrics of binary predictions over a set (micro-averaged).

    Returns
    -------
    dict
        ``crack_iou``, ``precision``, ``recall``, ``f1``, ``f1_tol2``,
        ``precision_tol2``, ``recall_tol2`` (the ``tol2`` keys hold the tolerance
        metrics at ``tolerance`` px, 2 by default), ``width_pred`` and ``width_true``
        (mean crack width in pixels: crack area / skeleton length, over the set; NaN
        without any crack), ``width_error`` (``width_pred - width_true``) and ``n_images``.
    """
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions but {len(gts)} ground truths")
    valids = [None] * len(gts) if valid is None else list(valid)
    pix = PixelMetrics()
    tol = ToleranceMetrics(tolerance)
    for p, g, v in zip(preds, gts, valids, strict=True):
        pix.update(p, g, v)
        tol.update(p, g, v)
    out: dict[str, float] = pix.as_dict()
    width_pred = (pix.tp + pix.fp) / tol.pred_total if tol.pred_total else float("nan")
    width_true = (pix.tp + pix.fn) / tol.gt_total if tol.gt_total else float("nan")
    out.update(
        {"f1_tol2": tol.f1, "precision_tol2": tol.precision, "recall_tol2": tol.recall,
         "width_pred": width_pred, "width_true": width_true,
         "width_error": width_pred - width_true, "n_images": len(gts)}
    )
    return out


def effort_lengths(suggestion: np.ndarray | None, truth: np.ndarray, *,
                   tolerance: float = 2.0) -> tuple[int, int]:
    """The annotator's work on one image: crack length to draw and to erase.

    Pixel edit fraction punishes a 1-px boundary shift like a missed crack; this counts
    length instead, with the tolerance matching of the module docstring: the *missed*
    length is the ground-truth skeleton farther than ``tolerance`` from the suggestion
    (to draw), the *false* length the suggestion's skeleton farther than ``tolerance``
    from the ground truth (to erase). Only the bounding box of the two masks is
    skeletonised, so a large sparse image costs little.

    Parameters
    ----------
    suggestion : ndarray or None
        (H, W) the mask the annotator started from (None: empty).
    truth : ndarray
        (H, W) the accepted mask.
    tolerance : float
        Matching distance in pixels.

    Returns
    -------
    (int, int)
        ``(missed_length, false_length)`` in skeleton pixels.
    """
    t = _as_mask(truth, "ground truth")
    s = np.zeros_like(t) if suggestion is None else _as_mask(suggestion, "suggestion")
    if s.shape != t.shape:
        raise ValueError(f"suggestion {s.shape} and ground truth {t.shape} differ in shape")
    union = s | t
    if not union.any():
        return 0, 0
    rows, cols = np.nonzero(union)
    pad = int(np.ceil(tolerance)) + 2
    r0, r1 = max(rows.min() - pad, 0), rows.max() + pad + 1
    c0, c1 = max(cols.min() - pad, 0), cols.max() + pad + 1
    correct, n_pred, found, n_gt = tolerance_counts(s[r0:r1, c0:c1], t[r0:r1, c0:c1],
                                                    tolerance=tolerance)
    return n_gt - found, n_pred - correct
