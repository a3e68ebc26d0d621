"""Held-out validation: probabilities, the calibrated threshold, metrics, and the no-worse guard.

:class:`HeldOut` runs a model (tiled, eval mode) on the held-out images, picks the
threshold that maximises their pixel F1 (:func:`~napari_crack_al.core.calibration.
calibrate_threshold`; without a crack pixel among them, the fallback threshold) and
measures the masks at that threshold. :func:`worse_beyond_noise` decides whether a
warm-started round made the held-out F1 worse than the previous model's by more than
the noise of the comparison.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .data import TrainingImage

__all__ = ["HeldOutResult", "HeldOut", "worse_beyond_noise"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeldOutResult:
    """A model measured on the held-out images.

    Attributes
    ----------
    threshold : float
        The cut used (calibrated on these images unless ``threshold_source`` says otherwise).
    threshold_source : str
        ``"heldout"`` (calibrated here) or ``"fallback"`` (no crack pixel to calibrate on).
    metrics : dict
        :func:`~napari_crack_al.core.metrics.evaluate_masks` at that threshold, plus
        ``"threshold"``.
    image_f1 : tuple of float
        Pixel F1 of every held-out image at that threshold (for paired comparisons).
    """

    threshold: float
    threshold_source: str
    metrics: dict[str, float]
    image_f1: tuple[float, ...]

    @property
    def f1(self) -> float:
        """Micro pixel F1 of the held-out set."""
        return float(self.metrics.get("f1", 0.0))


def _image_f1(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> float:
    p, g = pred & valid, truth & valid
    tp = int(np.count_nonzero(p & g))
    den = int(np.count_nonzero(p)) + int(np.count_nonzero(g))
    return 1.0 if den == 0 else 2.0 * tp / den


class HeldOut:
    """The held-out images of a round, and how a model does on them.

    Parameters
    ----------
    images : sequence of TrainingImage
        Labelled images never trained on.
    tile : int
        Inference tile.

    Raises
    ------
    InputError
        An image has no mask.
    """

    def __init__(self, images: Sequence[TrainingImage], tile: int = 512) -> None:
        self.images = [t for t in images if t.mask is not None]
        if len(self.images) != len(images):
            raise InputError(None, "validation images need masks")
        self.tile = tile

    def __len__(self) -> int:
        return len(self.images)

    def probabilities(self, model: object) -> list[np.ndarray]:
        """Crack probability of every held-out image (tiled inference, eval mode)."""
        from ..inference import predict_image

        return [predict_image(model, t.image, tile=self.tile).probability for t in self.images]

    def evaluate(self, model: object, fallback_threshold: float) -> HeldOutResult:
        """Predict, calibrate the threshold and measure (see the module docstring)."""
        return self.measure(self.probabilities(model), fallback_threshold)

    def measure(self, probabilities: Sequence[np.ndarray],
                fallback_threshold: float) -> HeldOutResult:
        """Calibrate and measure given probability maps (one per held-out image)."""
        from ..calibration import calibrate_threshold
        from ..metrics import evaluate_masks

        truths = [t.mask for t in self.images]
        valids = [t.valid for t in self.images]
        choice = calibrate_threshold(probabilities, truths, valid=valids)
        threshold = fallback_threshold if choice is None else choice.threshold
        preds = [p > threshold for p in probabilities]
        metrics = {k: float(v) for k, v in evaluate_masks(preds, truths, valid=valids).items()}
        metrics["threshold"] = float(threshold)
        per_image = tuple(_image_f1(p, g, v) for p, g, v in zip(preds, truths, valids))
        return HeldOutResult(threshold=float(threshold),
                             threshold_source="fallback" if choice is None else "heldout",
                             metrics=metrics, image_f1=per_image)


def worse_beyond_noise(new: HeldOutResult, old: HeldOutResult, margin: float,
                       ) -> tuple[bool, float]:
    """Whether ``new`` is worse than ``old`` on the same held-out images beyond noise.

    The noise is the larger of ``margin`` and the standard error of the per-image F1
    differences (paired: both were measured on the same images).

    Returns
    -------
    (bool, float)
        Whether to reject ``new``, and the tolerance used.
    """
    d = np.asarray(new.image_f1, dtype=np.float64) - np.asarray(old.image_f1, dtype=np.float64)
    se = float(np.std(d, ddof=1) / math.sqrt(d.size)) if d.size > 1 else 0.0
    tolerance = max(float(margin), se)
    return new.f1 < old.f1 - tolerance, tolerance
