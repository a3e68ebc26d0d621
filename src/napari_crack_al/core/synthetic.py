"""Deterministic synthetic pavement range images with a ground-truth crack mask.

The generator builds a surface height map in millimetres from a few physical
components and encodes it like a laser (LCMS-style) range image:

``height = transverse profile + scan-line bounce + macrotexture - crack depressions``,
then sealant bands and joints (look-alike distractors that are *not* cracks),
sensor noise, and dropout pixels (value 0 = no laser return). The result is
``uint16`` with ``1 unit = 1 / units_per_mm`` mm around ``base_value``.

Rows are the driving direction (longitudinal), columns the transverse direction.
Everything is vectorised numpy plus a few scikit-image filters; one 512 x 512
image takes a few tens of milliseconds. See ``docs/synthetic-data.md``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from skimage.filters import gaussian
from skimage.morphology import dilation

from .errors import ConfigError

__all__ = [
    "CRACK_KINDS",
    "DISTRACTOR_KINDS",
    "SyntheticConfig",
    "SyntheticSample",
    "generate_range_image",
]

log = logging.getLogger(__name__)

CRACK_KINDS: tuple[str, ...] = ("longitudinal", "transverse", "branching", "alligator")
DISTRACTOR_KINDS: tuple[str, ...] = ("sealed", "joint")
_FOOT3 = np.ones((3, 3), dtype=bool)


def _pair(value: object, name: str, *, low: float, high: float = math.inf,
          integer: bool = False, ordered: bool = True) -> tuple:
    what = "(min, max)" if ordered else "(height, width)"
    try:
        lo, hi = value  # type: ignore[misc]
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a {what} pair, got {value!r}") from None
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must hold two numbers, got {value!r}") from None
    if integer:
        if not (lo.is_integer() and hi.is_integer()):
            raise ConfigError(f"{name} must hold integers, got {value!r}")
        lo, hi = int(lo), int(hi)
    if ordered and not (low <= lo <= hi <= high):
        raise ConfigError(f"{name} must satisfy {low} <= min <= max <= {high}, got {value!r}")
    if not ordered and not (low <= min(lo, hi) and max(lo, hi) <= high):
        raise ConfigError(f"{name} must lie between {low} and {high} pixels, got {value!r}")
    return lo, hi


def _fraction(value: float, name: str, high: float = 1.0) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number in [0, {high}], got {value!r}") from None
    if not (0.0 <= value <= high):
        raise ConfigError(f"{name} must lie in [0, {high}], got {value!r}")
    return value


@dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of the synthetic range-image generator (all validated).

    Parameters
    ----------
    size : int or (int, int)
        Image shape ``(height, width)`` in pixels; an int gives a square image (>= 32).
    pixel_size_mm : float
        Ground sampling distance; physical scales (stones, blocks, sealant) are given in mm.
    crack_kinds : tuple of str
        Crack kinds to draw from, a subset of ``CRACK_KINDS``. Empty means negatives only.
    n_cracks : (int, int)
        Inclusive range of the number of cracks in an image that has cracks.
    no_crack_fraction : float
        Probability that an image has no crack at all (texture and distractors only).
    width_px : (float, float)
        Crack width range in pixels (1-10 by default), varying along each crack.
    depth_mm : (float, float)
        Crack depth range in mm, varying along each crack.
    distractors : bool
        Whether distractors may appear at all.
    distractor_kinds : tuple of str
        Distractor kinds to draw from, a subset of ``DISTRACTOR_KINDS``.
    distractor_probability : float
        Probability of each distractor kind appearing in an image.
    dropout_fraction : float
        Approximate fraction of pixels set to 0 (no laser return), in small clusters.
    noise_mm : float
        Standard deviation of the white sensor noise in mm.
    texture_mm : float
        Amplitude of the asphalt macrotexture (stones and voids) in mm.
    stone_size_mm : (float, float)
        Range of the typical aggregate size in mm.
    cross_slope_percent : (float, float)
        Range of the transverse cross-slope in percent.
    rut_depth_mm : (float, float)
        Range of the depth of the two wheel-path ruts in mm.
    base_value : int
        Range value of a flat surface at height 0.
    units_per_mm : float
        Range units per mm (100 means 1 unit = 0.01 mm).
    """

    size: int | tuple[int, int] = (512, 512)
    pixel_size_mm: float = 1.0
    crack_kinds: tuple[str, ...] = CRACK_KINDS
    n_cracks: tuple[int, int] = (1, 4)
    no_crack_fraction: float = 0.15
    width_px: tuple[float, float] = (1.0, 10.0)
    depth_mm: tuple[float, float] = (0.5, 5.0)
    distractors: bool = True
    distractor_kinds: tuple[str, ...] = DISTRACTOR_KINDS
    distractor_probability: float = 0.3
    dropout_fraction: float = 0.002
    noise_mm: float = 0.05
    texture_mm: float = 0.6
    stone_size_mm: tuple[float, float] = (4.0, 12.0)
    cross_slope_percent: tuple[float, float] = (0.5, 3.0)
    rut_depth_mm: tuple[float, float] = (0.0, 10.0)
    base_value: int = 30000
    units_per_mm: float = 100.0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        size = (self.size, self.size) if isinstance(self.size, (int, np.integer)) else self.size
        size = _pair(size, "size", low=32, high=20_000, integer=True, ordered=False)
        set_(self, "size", size)
        if not (float(self.pixel_size_mm) > 0 and math.isfinite(float(self.pixel_size_mm))):
            raise ConfigError(f"pixel_size_mm must be a positive number, "
                              f"got {self.pixel_size_mm!r}")
        set_(self, "pixel_size_mm", float(self.pixel_size_mm))
        kinds = ((self.crack_kinds,) if isinstance(self.crack_kinds, str)
                 else tuple(self.crack_kinds))
        bad = [k for k in kinds if k not in CRACK_KINDS]
        if bad:
            raise ConfigError(f"unknown crack kind(s) {bad}; valid kinds: {', '.join(CRACK_KINDS)}")
        set_(self, "crack_kinds", kinds)
        set_(self, "n_cracks", _pair(self.n_cracks, "n_cracks", low=0, high=200, integer=True))
        set_(self, "no_crack_fraction", _fraction(self.no_crack_fraction, "no_crack_fraction"))
        set_(self, "width_px", _pair(self.width_px, "width_px", low=1.0, high=50.0))
        set_(self, "depth_mm", _pair(self.depth_mm, "depth_mm", low=0.01, high=100.0))
        set_(self, "distractors", bool(self.distractors))
        dkinds = ((self.distractor_kinds,) if isinstance(self.distractor_kinds, str)
                  else tuple(self.distractor_kinds))
        bad = [k for k in dkinds if k not in DISTRACTOR_KINDS]
        if bad:
            raise ConfigError(f"unknown distractor kind(s) {bad}; valid kinds: "
                              f"{', '.join(DISTRACTOR_KINDS)}")
        set_(self, "distractor_kinds", dkinds)
        set_(self, "distractor_probability",
             _fraction(self.distractor_probability, "distractor_probability"))
        set_(self, "dropout_fraction", _fraction(self.dropout_fraction, "dropout_fraction", 0.5))
        for name in ("noise_mm", "texture_mm"):
            set_(self, name, _fraction(getattr(self, name), name, high=100.0))
        set_(self, "stone_size_mm", _pair(self.stone_size_mm, "stone_size_mm", low=0.5, high=100.0))
        set_(self, "cross_slope_percent",
             _pair(self.cross_slope_percent, "cross_slope_percent", low=-10.0, high=10.0))
        set_(self, "rut_depth_mm", _pair(self.rut_depth_mm, "rut_depth_mm", low=0.0, high=100.0))
        if not (float(self.units_per_mm) > 0):
            raise ConfigError(f"units_per_mm must be positive, got {self.units_per_mm!r}")
        set_(self, "units_per_mm", float(self.units_per_mm))
        if not (1 <= int(self.base_value) <= 65535):
            raise ConfigError(f"base_value must lie in [1, 65535], got {self.base_value!r}")
        set_(self, "base_value", int(self.base_value))

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape ``(height, width)``."""
        return self.size  # type: ignore[return-value]

    def to_dict(self) -> dict:
        """JSON-able representation (tuples become lists)."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, data: dict) -> SyntheticConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError`."""
        names = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown SyntheticConfig key(s) {unknown}; "
                              f"valid keys: {sorted(names)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass(frozen=True)
class SyntheticSample:
    """One generated image.

    Attributes
    ----------
    range_image : ndarray of uint16, (H, W)
        The range image; 0 marks dropout (no return).
    mask : ndarray of bool, (H, W)
        Ground truth, True = crack.
    kinds : tuple of str
        Crack kind of each crack drawn (empty for a crack-free image).
    distractors : tuple of str
        Distractors drawn ("sealed", "joint").
    distractor_mask : ndarray of bool, (H, W)
        Where the distractors are (never overlaps ``mask``).
    height_mm : ndarray of float32, (H, W)
        Noise-free surface height in mm relative to ``base_value`` (before encoding).
    profile_mm : ndarray of float32, (H, W)
        The smooth road shape (cross-slope, ruts, bounce, offset) included in ``height_mm``:
        ``range_image / units_per_mm`` minus it leaves texture, cracks, distractors and noise.
    """

    range_image: np.ndarray
    mask: np.ndarray
    kinds: tuple[str, ...]
    distractors: tuple[str, ...]
    distractor_mask: np.ndarray
    height_mm: np.ndarray
    profile_mm: np.ndarray


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


# --------------------------------------------------------------------------- crack geometry
def _walk(rng: np.random.Generator, start: tuple[float, float], angle: float, length: float,
          step: float = 0.7, wander: float = 0.25) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random-walk centreline: persistent direction plus meander and small-scale zigzag."""
    n = max(2, int(length / step))
    dev = wander * _smooth_1d(rng, n, 40 / step) + 0.25 * _smooth_1d(rng, n, 6 / step)
    dev += 0.35 * rng.standard_normal(n)
    theta = angle + dev
    ys = start[0] + np.cumsum(step * np.sin(theta))
    xs = start[1] + np.cumsum(step * np.cos(theta))
    return ys, xs, theta


def _along(rng: np.random.Generator, n: int, lo: float, hi: float, base: float, spread: float,
           taper: int) -> np.ndarray:
    """A positive quantity varying along a crack, tapered at both tips, clipped to [lo, hi]."""
    v = base * np.exp(spread * _smooth_1d(rng, n, 25))
    s = np.arange(n)
    t = np.minimum(1.0, np.minimum(s + 1, n - s) / max(taper, 1)) ** 0.7
    return np.clip(lo + (v - lo) * t, lo, hi)


def _stamp(shape: tuple[int, int], ys: np.ndarray, xs: np.ndarray, widths: np.ndarray,
           values: np.ndarray, mask: np.ndarray, depth: np.ndarray) -> None:
    """Paint discs of diameter ``widths`` centred on the polyline into ``mask`` and ``depth``."""
    h, w = shape
    inside = (ys > -12) & (ys < h + 12) & (xs > -12) & (xs < w + 12)
    ys, xs, widths, values = ys[inside], xs[inside], widths[inside], values[inside]
    if ys.size == 0:
        return
    r = int(math.ceil(widths.max() / 2.0))
    off = np.arange(-r, r + 1)
    oy, ox = (a.ravel() for a in np.meshgrid(off, off, indexing="ij"))
    cy, cx = np.rint(ys).astype(np.int64), np.rint(xs).astype(np.int64)
    py, px = cy[:, None] + oy[None, :], cx[:, None] + ox[None, :]
    d2 = (py - ys[:, None]) ** 2 + (px - xs[:, None]) ** 2
    keep = (d2 < (widths[:, None] / 2.0) ** 2) | ((oy == 0) & (ox == 0))[None, :]
    keep &= (py >= 0) & (py < h) & (px >= 0) & (px < w)
    vals = np.broadcast_to(values[:, None], keep.shape)[keep]
    py, px = py[keep], px[keep]
    mask[py, px] = True
    depth[py, px] = vals


def _draw_crack(rng: np.random.Generator, cfg: SyntheticConfig, start: tuple[float, float],
                angle: float, length: float, mask: np.ndarray, depth: np.ndarray,
                width_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ys, xs, theta = _walk(rng, start, angle, length)
    lo, hi = cfg.width_px
    base_w = lo + (hi - lo) * rng.beta(1.2, 3.0) * width_scale
    widths = _along(rng, ys.size, lo, hi, base_w, 0.35, taper=int(30 / 0.7))
    dlo, dhi = cfg.depth_mm
    base_d = dlo + (dhi - dlo) * rng.beta(1.5, 2.5) * width_scale
    depths = _along(rng, ys.size, dlo, dhi, max(base_d, dlo), 0.3, taper=int(20 / 0.7))
    _stamp(cfg.shape, ys, xs, widths, depths, mask, depth)
    return ys, xs, theta, widths


def _line_crack(rng: np.random.Generator, cfg: SyntheticConfig, kind: str,
                mask: np.ndarray, depth: np.ndarray) -> None:
    h, w = cfg.shape
    if kind == "longitudinal":
        length = rng.uniform(0.4, 1.2) * h
        x0 = (rng.choice([0.25, 0.75, rng.uniform(0.05, 0.95)]) + rng.normal(0, 0.05)) * w
        angle = math.pi / 2 + rng.normal(0, 0.12)
        y0 = rng.uniform(-0.2, 1.0 - min(length / h, 1.0) * 0.8) * h
        start = (y0, x0)
    else:  # transverse
        length = rng.uniform(0.3, 1.2) * w
        angle = rng.normal(0, 0.15) + (math.pi if rng.random() < 0.5 else 0.0)
        x0 = rng.uniform(0.0, 0.4) * w if angle < math.pi / 2 else rng.uniform(0.6, 1.0) * w
        start = (rng.uniform(0.05, 0.95) * h, x0)
    _draw_crack(rng, cfg, start, angle, length, mask, depth)


def _branching_crack(rng: np.random.Generator, cfg: SyntheticConfig,
                     mask: np.ndarray, depth: np.ndarray) -> None:
    h, w = cfg.shape
    angle = rng.uniform(0, 2 * math.pi)
    length = rng.uniform(0.5, 1.0) * max(h, w)
    # start so that the middle of the crack is near the image centre region
    cy, cx = rng.uniform(0.25, 0.75) * h, rng.uniform(0.25, 0.75) * w
    start = (cy - 0.5 * length * math.sin(angle), cx - 0.5 * length * math.cos(angle))
    ys, xs, theta, widths = _draw_crack(rng, cfg, start, angle, length, mask, depth)
    for _ in range(rng.integers(1, 4)):
        i = int(rng.integers(ys.size // 8, max(ys.size // 8 + 1, 7 * ys.size // 8)))
        side = rng.choice([-1.0, 1.0])
        a = theta[i] + side * rng.uniform(0.4, 1.2)
        sub_len = rng.uniform(0.2, 0.5) * length
        _draw_crack(rng, cfg, (ys[i], xs[i]), a, sub_len, mask, depth,
                    width_scale=min(1.0, widths[i] / max(cfg.width_px[1], 1.0)) * 0.8)


def _alligator(rng: np.random.Generator, cfg: SyntheticConfig,
               mask: np.ndarray, depth: np.ndarray) -> None:
    """Block network: boundaries of a warped jittered-grid Voronoi tessellation inside a blob."""
    h, w = cfg.shape
    rh = int(rng.uniform(0.35, 0.8) * h)
    rw = int(rng.uniform(0.25, 0.5) * w)
    y0 = int(rng.uniform(-0.1, 1.0) * h - rh / 2)
    x0 = int((rng.choice([0.25, 0.75]) + rng.normal(0, 0.05)) * w - rw / 2)
    ya, xa = max(y0, 0), max(x0, 0)
    yb, xb = min(y0 + rh, h), min(x0 + rw, w)
    if yb - ya < 8 or xb - xa < 8:
        return
    shape = (yb - ya, xb - xa)
    cell = max(rng.uniform(30.0, 70.0) / cfg.pixel_size_mm, 6.0)
    gy, gx = int(math.ceil(shape[0] / cell)) + 3, int(math.ceil(shape[1] / cell)) + 3
    seeds_y = (np.arange(gy)[:, None] - 1 + 0.5 + rng.uniform(-0.3, 0.3, (gy, gx))) * cell
    seeds_x = (np.arange(gx)[None, :] - 1 + 0.5 + rng.uniform(-0.3, 0.3, (gy, gx))) * cell
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    # a gentle large-scale warp bends the block edges; a fine one makes them ragged
    warp = 0.06 * cell
    wy = yy + warp * _low_freq(rng, shape, cell / 1.5) + 0.7 * _band_noise(rng, shape, 1.5)
    wx = xx + warp * _low_freq(rng, shape, cell / 1.5) + 0.7 * _band_noise(rng, shape, 1.5)
    iy = np.clip((wy / cell).astype(np.int64) + 1, 1, gy - 2)
    ix = np.clip((wx / cell).astype(np.int64) + 1, 1, gx - 2)
    # nearest (d1, i1) and second-nearest (d2, i2) seed among the 3 x 3 neighbouring cells
    d1 = np.full(shape, np.inf)
    d2 = np.full(shape, np.inf)
    i1 = np.zeros(shape, dtype=np.int64)
    i2 = np.zeros(shape, dtype=np.int64)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            sy, sx = iy + dy, ix + dx
            d = np.hypot(wy - seeds_y[sy, sx], wx - seeds_x[sy, sx])
            ids = sy * gx + sx
            first = d < d1
            second = ~first & (d < d2)
            d2 = np.where(first, d1, np.where(second, d, d2))
            i2 = np.where(first, i1, np.where(second, ids, i2))
            d1 = np.where(first, d, d1)
            i1 = np.where(first, ids, i1)
    n_seeds = gy * gx
    edge = np.minimum(i1, i2) * n_seeds + np.maximum(i1, i2)
    # a deterministic pseudo-random number per edge: width, depth and whether it exists
    edge_rand = rng.random(4096)
    e = edge_rand[(edge * 2654435761) % 4096]
    lo, hi = cfg.width_px
    whi = min(hi, max(lo, 3.5))
    width = lo + (whi - lo) * e * np.clip(1.0 + 0.3 * _low_freq(rng, shape, cell / 2), 0.3, 1.7)
    width = np.clip(width, lo, whi)
    present = edge_rand[(edge * 40503 + 7) % 4096] > 0.12
    # the region: an irregular blob
    ny = (yy - (y0 + rh / 2 - ya)) / (rh / 2)
    nx = (xx - (x0 + rw / 2 - xa)) / (rw / 2)
    blob = np.hypot(ny, nx) + 0.25 * _low_freq(rng, shape, min(shape) / 3) < 0.95
    net = ((d2 - d1) < width) & present & blob
    dlo, dhi = cfg.depth_mm
    dd = dlo + (min(dhi, 3.0) - dlo) * edge_rand[(edge * 97 + 13) % 4096]
    dd = np.clip(dd * (1.0 + 0.25 * _low_freq(rng, shape, cell / 2)), dlo, dhi)
    sub_m = mask[ya:yb, xa:xb]
    sub_d = depth[ya:yb, xa:xb]
    sub_d[net] = dd[net]
    sub_m |= net


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


# --------------------------------------------------------------------------- main entry
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


def generate_range_image(seed: int | Sequence[int], config: SyntheticConfig | None = None
                         ) -> SyntheticSample:
    """Generate one synthetic range image and its crack mask, deterministically.

    Parameters
    ----------
    seed : int or sequence of int
        Seed of ``numpy.random.default_rng``; ``(seed, i)`` gives the i-th image of a series.
    config : SyntheticConfig, optional
        Generator parameters (defaults: 512 x 512, 1 mm pixels).

    Returns
    -------
    SyntheticSample
        ``range_image`` (uint16), ``mask`` (bool) and what was drawn.
    """
    cfg = config if config is not None else SyntheticConfig()
    seq = [int(seed)] if isinstance(seed, (int, np.integer)) else [int(s) for s in seed]
    if any(s < 0 for s in seq):
        raise ConfigError(f"seed must be non-negative integer(s), got {seed!r}")
    rng = np.random.default_rng(seq)
    shape = cfg.shape

    profile = _profile(rng, cfg)
    height = profile + _texture(rng, cfg)

    mask = np.zeros(shape, dtype=bool)
    depth = np.zeros(shape)
    kinds: list[str] = []
    if cfg.crack_kinds and cfg.n_cracks[1] > 0 and rng.random() >= cfg.no_crack_fraction:
        n = int(rng.integers(cfg.n_cracks[0], cfg.n_cracks[1] + 1))
        for _ in range(n):
            kind = str(rng.choice(cfg.crack_kinds))
            kinds.append(kind)
            if kind == "alligator":
                _alligator(rng, cfg, mask, depth)
            elif kind == "branching":
                _branching_crack(rng, cfg, mask, depth)
            else:
                _line_crack(rng, cfg, kind, mask, depth)
    if mask.any():
        # steep but rounded walls; walls spill half a pixel beyond the mask, rough bottom
        soft = gaussian(mask.astype(np.float64), sigma=0.6, preserve_range=True)
        shape_w = np.clip(soft * 1.6, 0.0, 1.0)
        bottom = 1.0 + 0.15 * _band_noise(rng, shape, 1.5)
        height -= shape_w * dilation(depth, _FOOT3) * bottom

    distractors: list[str] = []
    distractor_mask = np.zeros(shape, dtype=bool)
    if cfg.distractors:
        if rng.random() < cfg.distractor_probability and "sealed" in cfg.distractor_kinds:
            bw = _sealed(rng, cfg)
            fill = profile + rng.uniform(0.1, 1.0) + 0.1 * _band_noise(rng, shape, 2.0)
            height = height * (1.0 - bw) + fill * bw
            distractors.append("sealed")
            distractor_mask |= bw > 0.5
        if rng.random() < cfg.distractor_probability and "joint" in cfg.distractor_kinds:
            jw, jdepth = _joint(rng, cfg)
            height -= jdepth * jw
            distractors.append("joint")
            distractor_mask |= jw > 0.5
    mask &= ~distractor_mask

    noisy = height + np.float32(cfg.noise_mm) * rng.standard_normal(shape, dtype=np.float32)
    offset = rng.uniform(-20.0, 20.0)
    values = np.rint(cfg.base_value + (noisy + offset) * cfg.units_per_mm)
    image = np.clip(values, 1, 65535).astype(np.uint16)

    drop = _dropout(rng, cfg)
    if cfg.dropout_fraction > 0 and mask.any():
        # deep narrow cracks often return no light
        deep = mask & (depth > 0.7 * cfg.depth_mm[1])
        drop |= deep & (rng.random(shape) < 0.1)
    image[drop] = 0
    log.debug("synthetic image seed=%s kinds=%s distractors=%s crack=%.4f", seq, kinds,
              distractors, mask.mean())
    return SyntheticSample(range_image=image, mask=mask, kinds=tuple(kinds),
                           distractors=tuple(distractors), distractor_mask=distractor_mask,
                           height_mm=(height + offset).astype(np.float32),
                           profile_mm=(profile + offset).astype(np.float32))
