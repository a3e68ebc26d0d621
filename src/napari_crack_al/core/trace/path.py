"""Trace a crack between two clicks: the cheapest path on a cost image, painted at the crack's width.

* :func:`trace_cost` makes the cost image of an image once: low along dark ridges (the
  training-free detector's multi-scale ridge response), lower still where a model sees a
  crack (its probability, when there is one), never zero;
* :func:`trace_between` finds the minimal-cost 8-connected path between two points with
  scikit-image's ``route_through_array``, searching only a window around them (so a click
  costs the same on a 1024² or a 4096 x 2048 image);
* :func:`measure_path` estimates the crack's width across the path from the image (the
  run of dark pixels perpendicular to the path), with a fallback the caller chooses
  (the brush size), and moves the path onto the crack's centre line;
* :func:`path_mask` rasterises a path at a width, for painting into a Labels layer.

numpy + scikit-image; no torch, no napari.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

__all__ = ["trace_cost", "trace_between", "trace_on_image", "measure_path", "path_width",
           "path_mask", "DEFAULT_MARGIN"]

logger = logging.getLogger(__name__)

#: Pixels searched around the bounding box of the two points.
DEFAULT_MARGIN = 24
#: Extra pixels around the search window whose filters feed its cost (the ridge filter's reach).
_FILTER_PAD = 40
_FLOOR = 0.02  # the cheapest pixel still costs this (a path never runs for free)


def trace_cost(image: np.ndarray, valid: np.ndarray | None = None,
               probability: np.ndarray | None = None) -> np.ndarray:
    """The cost image of tracing: cheap along dark ridges and where a model sees cracks.

    Parameters
    ----------
    image : ndarray
        (H, W) range image or grey photograph (cracks darker).
    valid : ndarray, optional
        (H, W) bool; invalid pixels are expensive.
    probability : ndarray, optional
        (H, W) a model's crack probability; averaged in with the ridge evidence.

    Returns
    -------
    ndarray
        float32 (H, W) costs in [_FLOOR, 1].
    """
    from ..detector.ridge import ridge_response

    img = np.asarray(image, dtype=np.float32)
    ok = np.ones(img.shape, bool) if valid is None else np.asarray(valid, dtype=bool)
    resp, _ = ridge_response(img, ok)
    evidence = np.clip(resp / 10.0, 0.0, 1.0)  # 10 robust spreads: surely a ridge
    if probability is not None:
        p = np.asarray(probability, dtype=np.float32)
        if p.shape != img.shape:
            raise ValueError(f"probability {p.shape} does not match the image {img.shape}")
        evidence = 0.5 * evidence + 0.5 * np.clip(p, 0.0, 1.0)
    cost = 1.0 - (1.0 - _FLOOR) * evidence
    cost[~ok] = 1.0
    return cost.astype(np.float32)


def _window(a: Sequence[int], b: Sequence[int], shape: tuple[int, int],
            margin: int) -> tuple[int, int, int, int]:
    r0 = max(0, min(a[0], b[0]) - margin)
    c0 = max(0, min(a[1], b[1]) - margin)
    r1 = min(shape[0], max(a[0], b[0]) + margin + 1)
    c1 = min(shape[1], max(a[1], b[1]) + margin + 1)
    return r0, r1, c0, c1


def trace_between(cost: np.ndarray, start: Sequence[float], end: Sequence[float], *,
                  margin: int = DEFAULT_MARGIN) -> np.ndarray:
    """The minimal-cost path from ``start`` to ``end`` (both included), pixel by pixel.

    Parameters
    ----------
    cost : ndarray
        (H, W) from :func:`trace_cost`.
    start, end : (row, col)
        The two clicks (rounded to pixels and clipped to the image).
    margin : int
        The search window is the two points' bounding box grown by this many pixels.

    Returns
    -------
    ndarray
        int (N, 2) row, column of every pixel of the path, 8-connected, from start to end.
    """
    from skimage.graph import route_through_array

    c = np.asarray(cost)
    if c.ndim != 2:
        raise ValueError(f"cost must be 2-D, got shape {c.shape}")
    h, w = c.shape

    def pixel(p: Sequence[float]) -> tuple[int, int]:
        return (int(np.clip(round(float(p[0])), 0, h - 1)),
                int(np.clip(round(float(p[1])), 0, w - 1)))

    a, b = pixel(start), pixel(end)
    if a == b:
        return np.asarray([a], dtype=np.int64)
    r0, r1, c0, c1 = _window(a, b, (h, w), max(0, int(margin)))
    sub = np.asarray(c[r0:r1, c0:c1], dtype=np.float64)
    path, _ = route_through_array(sub, (a[0] - r0, a[1] - c0), (b[0] - r0, b[1] - c0),
                                  fully_connected=True, geometric=True)
    return np.asarray(path, dtype=np.int64) + np.asarray([r0, c0])


def trace_on_image(image: np.ndarray, start: Sequence[float], end: Sequence[float], *,
                   valid: np.ndarray | None = None, probability: np.ndarray | None = None,
                   margin: int = DEFAULT_MARGIN) -> np.ndarray:
    """:func:`trace_between` on the cost of a window of ``image`` around the two points.

    The cost (:func:`trace_cost`) is computed only for the search window and a border the
    ridge filter needs, so a click costs the same on any image size.

    Returns
    -------
    ndarray
        int (N, 2) the path in image coordinates.
    """
    img = np.asarray(image)
    h, w = img.shape
    a = (int(np.clip(round(float(start[0])), 0, h - 1)), int(np.clip(round(float(start[1])), 0, w - 1)))
    b = (int(np.clip(round(float(end[0])), 0, h - 1)), int(np.clip(round(float(end[1])), 0, w - 1)))
    r0, r1, c0, c1 = _window(a, b, (h, w), max(0, int(margin)) + _FILTER_PAD)
    win = (slice(r0, r1), slice(c0, c1))
    cost = trace_cost(img[win], None if valid is None else np.asarray(valid)[win],
                      None if probability is None else np.asarray(probability)[win])
    path = trace_between(cost, (a[0] - r0, a[1] - c0), (b[0] - r0, b[1] - c0), margin=margin)
    return path + np.asarray([r0, c0])


def _normals(path: np.ndarray) -> np.ndarray:
    """Unit normals of a pixel path (direction from the neighbours two steps away)."""
    p = path.astype(np.float64)
    ahead = p[np.minimum(np.arange(len(p)) + 2, len(p) - 1)]
    behind = p[np.maximum(np.arange(len(p)) - 2, 0)]
    d = ahead - behind
    norm = np.hypot(d[:, 0], d[:, 1])
    norm[norm == 0] = 1.0
    d /= norm[:, None]
    return np.stack([-d[:, 1], d[:, 0]], axis=1)


def measure_path(image: np.ndarray, path: np.ndarray, *, fallback: float, max_width: int = 15,
                 valid: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """The crack's width across ``path`` and the path moved onto the crack's centre line.

    The image is flattened (background removed, robust unit scale, as the detector
    does); across each path pixel, the run of pixels darker than the local background by
    one robust spread, contiguous with the path, is found: its length is the width there
    and its middle the centre of the crack (a cheapest path may hug one edge of a wide
    crack). The width is the median over the points where a run ends on both sides; with
    fewer than a third of the points measured, ``fallback`` (and the path unchanged).

    Parameters
    ----------
    image : ndarray
        (H, W) the image.
    path : ndarray
        (N, 2) pixels of the path.
    fallback : float
        The width when the image does not show one (the brush size).
    max_width : int
        Widths are measured up to this (pixels).
    valid : ndarray, optional
        (H, W) bool valid pixels.

    Returns
    -------
    (float, ndarray)
        Width in pixels (at least 1) and the centred path (N, 2), int.
    """
    from ..detector.ridge import flatten_background

    path = np.asarray(path)
    if path.ndim != 2 or len(path) == 0:
        return float(fallback), path
    img = np.asarray(image, dtype=np.float32)
    r0, r1, c0, c1 = _window(path.min(axis=0), path.max(axis=0), img.shape, max_width + 16)
    ok = (np.ones(img.shape, bool) if valid is None else np.asarray(valid, bool))[r0:r1, c0:c1]
    flat = flatten_background(img[r0:r1, c0:c1], ok, 8.0)
    local = path - np.asarray([r0, c0])
    normals = _normals(local)
    half = max_width // 2 + 1
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    widths = []
    centred = path.astype(np.float64).copy()
    for k, ((r, c), n) in enumerate(zip(local, normals)):
        prof = ndimage.map_coordinates(flat, [r + offsets * n[0], c + offsets * n[1]], order=1,
                                       mode="nearest")
        dark = prof < -1.0
        if not dark[half]:
            continue
        left = half
        while left > 0 and dark[left - 1]:
            left -= 1
        right = half
        while right < len(dark) - 1 and dark[right + 1]:
            right += 1
        if left > 0 and right < len(dark) - 1:  # the run ends on both sides: a width
            widths.append(right - left + 1)
            centred[k] += ((left + right) / 2.0 - half) * n
    if len(widths) < max(1, len(path) // 3):
        return float(fallback), path
    h, w = img.shape
    out = np.stack([np.clip(np.round(centred[:, 0]), 0, h - 1),
                    np.clip(np.round(centred[:, 1]), 0, w - 1)], axis=1).astype(np.int64)
    return float(max(1.0, np.median(widths))), out


def path_width(image: np.ndarray, path: np.ndarray, *, fallback: float,
               max_width: int = 15, valid: np.ndarray | None = None) -> float:
    """The crack's width across ``path`` (see :func:`measure_path`)."""
    return measure_path(image, path, fallback=fallback, max_width=max_width, valid=valid)[0]


def path_mask(shape: tuple[int, int], path: np.ndarray, width: float) -> np.ndarray:
    """A bool mask of ``path`` drawn ``width`` pixels wide (a disc at every pixel)."""
    out = np.zeros(shape, dtype=bool)
    path = np.asarray(path, dtype=np.int64)
    if len(path) == 0:
        return out
    out[path[:, 0], path[:, 1]] = True
    radius = max(0.0, (float(width) - 1.0) / 2.0)
    if radius < 0.5:
        return out
    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disc = yy ** 2 + xx ** 2 <= radius ** 2 + 0.25
    r0, r1, c0, c1 = _window(path.min(axis=0), path.max(axis=0), shape, r + 1)
    out[r0:r1, c0:c1] = ndimage.binary_dilation(out[r0:r1, c0:c1], structure=disc)
    return out
