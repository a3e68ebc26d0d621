"""The clicks an annotator makes to trace a mask: the ends and branch points of its cracks.

:func:`trace_plan` turns a crack mask (a ground truth) into polylines of clicks: each
piece of its skeleton between junctions and free ends is one polyline, from one end to
the other, with a click every ``spacing`` pixels along long or curved pieces (an
annotator clicks further along a crack, not across a whole image). Polylines start and
end on the junction they meet, so traced pieces join. Used by the benchmark of the
trace tool (clicks per image vs pixels a brush would cover) and by its tests.

numpy + scipy + scikit-image; no napari.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from scipy import ndimage

__all__ = ["trace_plan"]

_EIGHT = np.ones((3, 3), dtype=bool)


def _order(piece: np.ndarray, start: tuple[int, int]) -> list[tuple[int, int]]:
    """Pixels of a skeleton piece in breadth-first order from ``start`` (a path: its order)."""
    seen = {start}
    order = [start]
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                q = (r + dr, c + dc)
                if q not in seen and 0 <= q[0] < piece.shape[0] and 0 <= q[1] < piece.shape[1] \
                        and piece[q]:
                    seen.add(q)
                    order.append(q)
                    queue.append(q)
    return order


def _snap(point: tuple[int, int], nodes: np.ndarray) -> tuple[int, int]:
    """The nearest junction pixel within 2 px of ``point``, else the point."""
    r, c = point
    win = nodes[max(0, r - 2):r + 3, max(0, c - 2):c + 3]
    rr, cc = np.nonzero(win)
    if rr.size == 0:
        return point
    k = int(np.argmin((rr + max(0, r - 2) - r) ** 2 + (cc + max(0, c - 2) - c) ** 2))
    return int(rr[k] + max(0, r - 2)), int(cc[k] + max(0, c - 2))


def trace_plan(mask: np.ndarray, *, spacing: int = 100,
               min_length: int = 3) -> list[list[tuple[int, int]]]:
    """Polylines of clicks that trace every crack of ``mask``.

    Parameters
    ----------
    mask : ndarray
        (H, W) bool crack mask.
    spacing : int
        A click at least every this many pixels along a piece.
    min_length : int
        Pieces of fewer skeleton pixels are left out (spurs of the skeleton).

    Returns
    -------
    list of list of (row, col)
        One polyline per skeleton piece; consecutive clicks are traced between.
    """
    from skimage.morphology import skeletonize

    skel = skeletonize(np.asarray(mask, dtype=bool))
    neighbours = ndimage.convolve(skel.astype(np.uint8), _EIGHT.astype(np.uint8),
                                  mode="constant") - skel
    junctions = skel & (neighbours >= 3)
    pieces, n = ndimage.label(skel & ~junctions, structure=_EIGHT)
    plans = []
    for i, sl in enumerate(ndimage.find_objects(pieces), start=1):
        if sl is None:
            continue
        piece = pieces == i
        count = int(piece[sl].sum())
        if count < min_length:
            continue
        inner = ndimage.convolve(piece.astype(np.uint8), _EIGHT.astype(np.uint8),
                                 mode="constant") - piece
        ends = np.argwhere(piece & (inner <= 1))
        first = tuple(int(v) for v in (ends[0] if len(ends) else np.argwhere(piece)[0]))
        order = _order(piece, first)
        picks = [order[0]] + order[spacing:-1:spacing] + [order[-1]]
        picks[0], picks[-1] = _snap(picks[0], junctions), _snap(picks[-1], junctions)
        plans.append([(int(r), int(c)) for r, c in dict.fromkeys(picks)])
    return plans
