"""A training-free crack detector: multi-scale dark-ridge filtering, hysteresis, clean-up.

A crack is a thin line darker than the surface around it, in a range image (a
depression) as in a photograph (a shadow). The detector

1. normalises the image robustly (median / MAD of its valid pixels) and removes the
   slowly varying background (a wide Gaussian), so lighting gradients and the
   road's profile do not count;
2. computes a multi-scale Hessian dark-ridge response (:func:`skimage.filters.sato`,
   ``black_ridges=True``) at the scales of 1–10 px wide cracks;
3. expresses the response in units of its own robust spread on this image (how many
   "sigmas" above the typical texture a pixel responds), so the thresholds adapt to
   each image instead of being fixed grey levels;
4. keeps hysteresis components (strong seeds grown through weaker pixels), drops
   small and compact (non-line) components, and keeps only the pixels darker than
   their surroundings, so the mask has the crack's width rather than the filter's.

Every threshold is relative to the image's own statistics; the constants in
:class:`DetectorConfig` were chosen on synthetic range images and on the training
split of the uav75 photographs (docs/model.md), never on the images they are
measured on.

numpy + scikit-image; no torch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..checks import Problems
from ..config_io import ConfigIO
from ..normalize import robust_stats

__all__ = ["DetectorConfig", "Detection", "flatten_background", "ridge_response",
           "detection_from_response", "detect_cracks"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectorConfig(ConfigIO):
    """Settings of :func:`detect_cracks` (every threshold is relative to the image).

    Parameters
    ----------
    sigmas : tuple of float
        Scales (px) of the ridge filter; a crack of width w responds most near w / 2.
    background_sigma : float
        Scale (px) of the background removed first.
    high, low : float
        Hysteresis thresholds in robust spreads of the ridge response above its median:
        a component needs a pixel above ``high`` and grows through pixels above ``low``.
    darker : float
        A kept pixel is at least this many robust spreads of the flattened image darker
        than its surroundings (0 keeps every hysteresis pixel).
    min_length : int
        Smallest component kept, in pixels of its skeleton (a crack is long).
    min_elongation : float
        Smallest ratio of a component's skeleton length to its mean width (lines, not blobs).
    max_side : int
        Images larger than this (either side) are analysed at a reduced scale and the
        mask is brought back to full size (bounds the time on very large images).
    """

    sigmas: tuple[float, ...] = (1.0, 2.0)
    background_sigma: float = 12.0
    high: float = 10.0
    low: float = 3.0
    darker: float = 1.0
    min_length: int = 32
    min_elongation: float = 12.0
    max_side: int = 4096

    def __post_init__(self) -> None:
        check = Problems(self)
        sigmas = check.numbers("sigmas", 0.0, low_open=True)
        for name in ("background_sigma", "high", "low", "min_elongation"):
            check.number(name, 0.0, low_open=True)
        check.number("darker", 0.0)
        check.integer("min_length", 1)
        check.integer("max_side", 64)
        if not check.messages and self.low > self.high:
            check.add(f"low ({self.low}) must not exceed high ({self.high})")
        check.raise_if_any("DetectorConfig")
        object.__setattr__(self, "sigmas", sigmas)


@dataclass(frozen=True)
class Detection:
    """What :func:`detect_cracks` finds in one image.

    Attributes
    ----------
    mask : ndarray
        bool (H, W) crack mask.
    score : ndarray
        float32 (H, W) crack evidence in [0, 1] (the ridge response mapped through the
        hysteresis thresholds: 0.5 at ``low``, 1 well above ``high``), for an overlay.
    """

    mask: np.ndarray
    score: np.ndarray


def flatten_background(image: np.ndarray, valid: np.ndarray,
                       background_sigma: float) -> np.ndarray:
    """Robust unit-scale image with its slowly varying background removed (invalid: 0)."""
    med, scale = robust_stats(image, valid)
    z = np.where(valid, (image - med) / scale, 0.0).astype(np.float32)
    np.clip(z, -10.0, 10.0, out=z)
    w = ndimage.gaussian_filter(valid.astype(np.float32), background_sigma)
    bg = ndimage.gaussian_filter(z, background_sigma) / np.maximum(w, 1e-3)
    flat = np.where(valid, z - bg, 0.0).astype(np.float32)
    _, spread = robust_stats(flat, valid)
    return flat / np.float32(spread)


def ridge_response(image: np.ndarray, valid: np.ndarray | None = None,
                   config: DetectorConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Dark-ridge response in robust spreads above its median, and the flattened image.

    Parameters
    ----------
    image : ndarray
        (H, W) float image (range values or grey levels; cracks darker).
    valid : ndarray, optional
        bool (H, W) valid pixels (default all).
    config : DetectorConfig, optional

    Returns
    -------
    (ndarray, ndarray)
        float32 (H, W) response (0 at the typical pixel, invalid pixels 0) and the
        flattened image (robust unit scale, background removed).
    """
    from skimage.filters import sato

    cfg = config or DetectorConfig()
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {img.shape}")
    ok = np.ones(img.shape, bool) if valid is None else np.asarray(valid, dtype=bool)
    flat = flatten_background(img, ok, cfg.background_sigma)
    resp = sato(flat, sigmas=cfg.sigmas, black_ridges=True, mode="reflect").astype(np.float32)
    resp[~ok] = 0.0
    med, spread = robust_stats(resp, ok)
    return np.where(ok, (resp - med) / np.float32(spread), 0.0).astype(np.float32), flat


def _keep_lines(mask: np.ndarray, cfg: DetectorConfig) -> np.ndarray:
    """Components with a long enough skeleton that are elongated (length / width)."""
    from skimage.morphology import skeletonize

    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return mask
    area = np.bincount(labels.ravel(), minlength=n + 1)
    length = np.bincount(labels[skeletonize(mask)].ravel(), minlength=n + 1)
    width = area / np.maximum(length, 1)
    keep = (length >= cfg.min_length) & (length >= cfg.min_elongation * width)
    keep[0] = False
    return keep[labels]


def detection_from_response(response: np.ndarray, flat: np.ndarray, valid: np.ndarray,
                            config: DetectorConfig | None = None) -> Detection:
    """Hysteresis, darkness and line clean-up of a :func:`ridge_response` (steps 3-4).

    Parameters
    ----------
    response, flat : ndarray
        The two outputs of :func:`ridge_response`.
    valid : ndarray
        bool (H, W) valid pixels.
    config : DetectorConfig, optional
        Only its thresholds and clean-up sizes are used here.
    """
    from skimage.filters import apply_hysteresis_threshold

    cfg = config or DetectorConfig()
    resp = response
    strong = apply_hysteresis_threshold(resp, cfg.low, cfg.high) & valid
    if cfg.darker > 0:
        strong &= flat < -cfg.darker
    mask = _keep_lines(strong, cfg)
    from scipy.special import expit

    score = expit((resp - cfg.low) * (4.0 / max(cfg.high - cfg.low, 1e-3)))
    score = np.where(valid, score, 0.0).astype(np.float32)
    return Detection(mask=mask, score=score)


def _detect_same_size(image: np.ndarray, valid: np.ndarray, cfg: DetectorConfig) -> Detection:
    resp, flat = ridge_response(image, valid, cfg)
    return detection_from_response(resp, flat, valid, cfg)


def detect_cracks(image: np.ndarray, valid: np.ndarray | None = None,
                  config: DetectorConfig | None = None) -> Detection:
    """Find cracks without a model (see the module docstring).

    Parameters
    ----------
    image : ndarray
        (H, W) range image or grey photograph (float or integer; cracks darker).
    valid : ndarray, optional
        bool (H, W) valid pixels; invalid pixels are never crack.
    config : DetectorConfig, optional

    Returns
    -------
    Detection
        The mask and a [0, 1] evidence map, both at the image's size.
    """
    cfg = config or DetectorConfig()
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2 or min(img.shape) < 8:
        raise ValueError(f"expected a 2-D image of at least 8 x 8 pixels, got {img.shape}")
    ok = np.isfinite(img) if valid is None else np.asarray(valid, dtype=bool) & np.isfinite(img)
    img = np.where(ok, img, 0.0).astype(np.float32)
    factor = max(img.shape) / cfg.max_side
    if factor <= 1.0:
        return _detect_same_size(img, ok, cfg)
    from skimage.transform import resize

    small = resize(img, [round(s / factor) for s in img.shape], order=1, anti_aliasing=True,
                   preserve_range=True).astype(np.float32)
    small_ok = resize(ok.astype(np.float32), small.shape, order=0) > 0.5
    found = _detect_same_size(small, small_ok, cfg)
    mask = resize(found.mask.astype(np.float32), img.shape, order=0) > 0.5
    score = resize(found.score, img.shape, order=1).astype(np.float32)
    logger.info("detector ran at 1/%.1f scale on a %d x %d image", factor, *img.shape)
    return Detection(mask=mask & ok, score=np.where(ok, score, 0.0).astype(np.float32))
