"""What a synthetic image holds that is *not* a crack: sealant bands, joints, sensor dropout.

Sealant bands and joints are look-alike distractors (returned as 0..1 weight maps
that :func:`~napari_crack_al.core.synthetic.generate_range_image` blends into the
surface); dropout marks the pixels where the laser got no return (value 0).
"""

from __future__ import annotations

import math

import numpy as np
from skimage.filters import gaussian

from .config import SyntheticConfig
from .cracks import _stamp, _walk
from .surface import _smooth_1d


# --------------------------------------------------------------------------- distractors
def _sealed(rng: np.random.Generator, cfg: SyntheticConfig) -> np.ndarray:
    """Weight map (0..1) of a sealant band along a random-walk path."""
    h, w = cfg.shape
    band = np.zeros(cfg.shape, dtype=bool)
    dummy = np.zeros(cfg.shape)
    if rng.random() < 0.5:
        start, angle, length = (rng.uniform(-0.1, 0.3) * h, rng.uniform(0.1, 0.9) * w), \
            math.pi / 2 + rng.normal(0, 0.1), rng.uniform(0.6, 1.3) * h
    else:
        start, angle, length = (rng.uniform(0.1, 0.9) * h, rng.uniform(-0.1, 0.3) * w), \
            rng.normal(0, 0.1), rng.uniform(0.6, 1.3) * w
    ys, xs, _ = _walk(rng, start, angle, length, step=1.0, wander=0.15)
    width = min(rng.uniform(12.0, 40.0) / cfg.pixel_size_mm, 60.0, 0.25 * min(h, w))
    widths = np.clip(width * np.exp(0.15 * _smooth_1d(rng, ys.size, 30)), 3.0, None)
    _stamp(cfg.shape, ys, xs, widths, widths, band, dummy)
    return np.clip(gaussian(band.astype(np.float64), sigma=1.0, preserve_range=True) * 1.3, 0, 1)


def _joint(rng: np.random.Generator, cfg: SyntheticConfig) -> tuple[np.ndarray, float]:
    """Weight map (0..1) of a perfectly straight, constant-width joint across the image."""
    h, w = cfg.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    tilt = rng.normal(0, 0.02)
    if rng.random() < 0.7:   # transverse joint
        t = (yy - rng.uniform(0.1, 0.9) * h) * math.cos(tilt) - xx * math.sin(tilt)
    else:
        t = (xx - rng.uniform(0.1, 0.9) * w) * math.cos(tilt) - yy * math.sin(tilt)
    width = rng.uniform(4.0, 8.0)
    weight = np.clip(width / 2.0 - np.abs(t) + 0.5, 0.0, 1.0)
    return weight, rng.uniform(2.0, 6.0)


# --------------------------------------------------------------------------- sensor dropout
def _dropout(rng: np.random.Generator, cfg: SyntheticConfig) -> np.ndarray:
    h, w = cfg.shape
    out = np.zeros(cfg.shape, dtype=bool)
    if cfg.dropout_fraction <= 0:
        return out
    n = max(1, int(round(cfg.dropout_fraction * h * w / 6.0)))
    cy, cx = rng.uniform(0, h, n), rng.uniform(0, w, n)
    m = 4  # each cluster: a tiny random walk of discs
    ys = cy[:, None] + np.cumsum(rng.normal(0, 0.8, (n, m)), axis=1)
    xs = cx[:, None] + np.cumsum(rng.normal(0, 0.8, (n, m)), axis=1)
    widths = rng.uniform(0.5, 2.2, (n, m))
    _stamp(cfg.shape, ys.ravel(), xs.ravel(), widths.ravel(), widths.ravel(), out,
           np.zeros(cfg.shape))
    return out
