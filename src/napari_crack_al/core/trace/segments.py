"""Crack segments of a mask: the pieces between junctions, for one-click removal.

A crack mask is split into *segments*, those of the skeleton graph that also serves the
measurements (:mod:`napari_crack_al.core.skeleton.graph`): the skeleton between branch
points, short side branches (thinning artefacts) left out, and every crack pixel in the
segment of its nearest skeleton pixel, so a segment carries the crack's width with it. :func:`segment_at`
picks the segment (or, with ``whole=True``, the connected crack) under a click; only
the connected crack under the click is analysed, so a click costs little on a large
image.

numpy + scipy + scikit-image; no napari.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

__all__ = ["crack_segments", "segment_at", "SNAP_RADIUS"]

logger = logging.getLogger(__name__)

#: A click this close to a crack (pixels) picks it.
SNAP_RADIUS = 4
_EIGHT = np.ones((3, 3), dtype=bool)


def crack_segments(mask: np.ndarray) -> np.ndarray:
    """Label every crack pixel with its segment (0 = background).

    The segments of the skeleton graph the measurements use
    (:func:`~napari_crack_al.core.skeleton.graph.label_segments`): pieces of the skeleton
    between branch points, short side branches left out, each crack pixel with the
    segment of its nearest segment pixel.

    Parameters
    ----------
    mask : ndarray
        (H, W) bool crack mask.

    Returns
    -------
    ndarray
        int32 (H, W) segment labels 1..n; a crack without a branch point is one segment.
    """
    from ..skeleton.graph import label_segments

    return label_segments(np.asarray(mask, dtype=bool))


def _crop(shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray,
          pad: int) -> tuple[slice, slice]:
    return (slice(max(0, rows.min() - pad), min(shape[0], rows.max() + pad + 1)),
            slice(max(0, cols.min() - pad), min(shape[1], cols.max() + pad + 1)))


def segment_at(mask: np.ndarray, point: Sequence[float], *, whole: bool = False,
               snap: int = SNAP_RADIUS) -> np.ndarray:
    """The pixels of the crack segment under ``point`` (empty when no crack is near).

    Parameters
    ----------
    mask : ndarray
        (H, W) bool crack mask.
    point : (row, col)
        The click.
    whole : bool
        The whole connected crack instead of one segment.
    snap : int
        A click within this many pixels of a crack picks its nearest crack pixel.

    Returns
    -------
    ndarray
        (H, W) bool: what to remove.
    """
    m = np.asarray(mask, dtype=bool)
    out = np.zeros(m.shape, dtype=bool)
    h, w = m.shape
    r, c = int(round(float(point[0]))), int(round(float(point[1])))
    if not (0 <= r < h and 0 <= c < w):
        return out
    win = (slice(max(0, r - snap), min(h, r + snap + 1)),
           slice(max(0, c - snap), min(w, c + snap + 1)))
    near_r, near_c = np.nonzero(m[win])
    if near_r.size == 0:
        return out
    k = int(np.argmin((near_r + win[0].start - r) ** 2 + (near_c + win[1].start - c) ** 2))
    hit = (int(near_r[k] + win[0].start), int(near_c[k] + win[1].start))
    comp, _ = ndimage.label(m, structure=_EIGHT)
    crack = comp == comp[hit]
    if whole:
        return crack
    rows, cols = np.nonzero(crack)
    sl = _crop(m.shape, rows, cols, 2)
    seg = crack_segments(crack[sl])
    label = seg[hit[0] - sl[0].start, hit[1] - sl[1].start]
    out[sl] = seg == label
    return out
