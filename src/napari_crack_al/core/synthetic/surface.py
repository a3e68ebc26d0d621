"""The crack-free road surface of a synthetic range image, and the random fields it is made of.

Heights are in millimetres: a transverse profile (cross-slope, wheel-path ruts),
scan-line bounce and long undulation (:func:`_profile`), plus asphalt macrotexture
(stones, voids, worn patches; :func:`_texture`). The smooth random fields
(:func:`_smooth_1d`, :func:`_low_freq`, :func:`_band_noise`) are shared with the
crack and distractor drawing. Every draw comes from the caller's generator, in a
fixed order, so an image is deterministic for its seed.
"""

from __future__ import annotations

import numpy as np
from skimage.filters import gaussian

from .config import SyntheticConfig


# --------------------------------------------------------------------------- random fields
def _smooth_1d(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    """Zero-mean, unit-std correlated noise of length ``n`` with correlation length ``scale``."""
    scale = max(float(scale), 0.5)
    half = int(3 * scale) + 1
    pad = rng.standard_normal(n + 2 * half)
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / scale) ** 2)
    out = np.convolve(pad, k / k.sum(), mode="valid")[:n]
    return (out - out.mean()) / (out.std() + 1e-12) if n > 1 else out * 0


def _basis(n: int, scale: float) -> np.ndarray:
    centres = np.arange(-2, n / scale + 3) * scale
    return np.exp(-0.5 * ((np.arange(n)[:, None] - centres[None, :]) / scale) ** 2
                  ).astype(np.float32)


def _low_freq(rng: np.random.Generator, shape: tuple[int, int], scale_px: float) -> np.ndarray:
    """Smooth unit-std 2-D field with features of about ``scale_px`` pixels (separable basis)."""
    scale = max(float(scale_px), 1.0)
    by, bx = _basis(shape[0], scale), _basis(shape[1], scale)
    out = by @ rng.standard_normal((by.shape[1], bx.shape[1]), dtype=np.float32) @ bx.T
    return (out - out.mean()) / (out.std() + 1e-12)


def _band_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    out = gaussian(rng.standard_normal(shape, dtype=np.float32), sigma=max(sigma, 0.3), mode="reflect",
                   preserve_range=True)
    return (out - out.mean()) / (out.std() + 1e-12)


# --------------------------------------------------------------------------- road shape and texture
def _profile(rng: np.random.Generator, cfg: SyntheticConfig) -> np.ndarray:
    h, w = cfg.shape
    x = np.arange(w) * cfg.pixel_size_mm
    xf = np.linspace(0.0, 1.0, w)
    slope = rng.uniform(*cfg.cross_slope_percent) / 100.0 * rng.choice([-1.0, 1.0])
    trans = slope * (x - x.mean())
    rut = np.zeros((h, w), dtype=np.float32)
    for centre in (0.25, 0.75):
        c = centre + rng.uniform(-0.06, 0.06)
        sigma = rng.uniform(0.06, 0.11)
        depth = rng.uniform(*cfg.rut_depth_mm)
        along = 1.0 + 0.15 * _smooth_1d(rng, h, h / 4)
        rut -= depth * along[:, None] * np.exp(-0.5 * ((xf - c) / sigma) ** 2)[None, :]
    # scan-line bounce: each row is one laser profile; the vehicle moves up and down
    bounce = 0.6 * _smooth_1d(rng, h, h / 6) + 0.05 * rng.standard_normal(h)
    grade = rng.uniform(-0.01, 0.01) * np.arange(h) * cfg.pixel_size_mm
    undulation = 0.4 * _low_freq(rng, (h, w), max(h, w) / 3)
    rows = (bounce + grade - grade.mean()).astype(np.float32)
    return trans.astype(np.float32)[None, :] + rut + rows[:, None] + undulation


def _texture(rng: np.random.Generator, cfg: SyntheticConfig) -> np.ndarray:
    shape = cfg.shape
    px = cfg.pixel_size_mm
    amp = cfg.texture_mm * rng.uniform(0.6, 1.4)
    stone = rng.uniform(*cfg.stone_size_mm) / px
    a = _band_noise(rng, shape, stone / 4)
    coverage_thr = rng.uniform(0.1, 0.6)
    stones = np.sqrt(np.clip((a - coverage_thr) / 0.8, 0.0, 1.0))          # flat-topped aggregate
    b = _band_noise(rng, shape, max(0.6, stone / 10))
    voids = np.clip((-b - 1.8) / 0.6, 0.0, 1.0)                             # pits between stones
    fine = _band_noise(rng, shape, 0.6)
    patch = 1.0 + 0.3 * _low_freq(rng, shape, max(shape) / 3)   # worn / ravelled patches
    tex = amp * patch * (stones - 1.2 * voids + 0.2 * fine)
    return tex - tex.mean()                                     # the profile is the mean surface
