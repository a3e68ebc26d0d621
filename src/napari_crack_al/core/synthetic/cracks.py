"""Drawing the cracks of a synthetic range image: line, branching and alligator cracks.

A crack is a random-walk centreline (:func:`_walk`) whose width and depth vary
along it (:func:`_along`), painted as discs into the ground-truth mask and a depth
map (:func:`_stamp`); alligator cracking is the edge network of a warped Voronoi
tessellation inside a blob. The drawers write into the caller's ``mask`` and
``depth`` arrays; :func:`~napari_crack_al.core.synthetic.generate_range_image`
carves the depth into the surface.
"""

from __future__ import annotations

import math

import numpy as np

from .config import SyntheticConfig
from .surface import _band_noise, _low_freq, _smooth_1d


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
