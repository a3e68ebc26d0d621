"""The inputs of the skeleton graph: a labelled crack mask cropped, thinned and measured.

:func:`prepare_skeleton` crops a labelled mask to its cracks with a one-pixel background
margin, computes each crack pixel's distance to the background and Lee's skeleton; the
result feeds :func:`~napari_crack_al.core.skeleton.graph.analyse_skeleton`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi

__all__ = ["SkeletonInput", "prepare_skeleton"]


class SkeletonInput(NamedTuple):
    """A labelled mask cropped to its cracks, ready for :func:`analyse_skeleton`.

    Attributes
    ----------
    labels : ndarray of int
        Crack labels 1..n in the bounding box of all cracks, with a background margin of
        one pixel (the image border counts as background for thinning and distances).
    fg : ndarray of bool
        ``labels > 0``.
    skel : ndarray of bool
        Lee's one-pixel-wide skeleton of ``fg``.
    dist : ndarray of float
        Euclidean distance of each crack pixel to the background.
    n : int
        Number of cracks.
    origin : (int, int)
        Where ``labels[1, 1]`` lies in the full image.
    slices : list of tuple of slice
        Bounding box of each crack in ``labels``.
    """

    labels: np.ndarray
    fg: np.ndarray
    skel: np.ndarray
    dist: np.ndarray
    n: int
    origin: tuple[int, int]
    slices: list


def _distance(labels: np.ndarray, slices: list) -> np.ndarray:
    """Euclidean distance to the background, per crack bounding box when that is cheaper.

    Exact either way: the background pixel nearest to a crack pixel is always next
    to that crack, so a box with a one-pixel margin holds it.
    """
    boxes = [(slice(sl[0].start - 1, sl[0].stop + 1), slice(sl[1].start - 1, sl[1].stop + 1))
             for sl in slices]
    if sum((b[0].stop - b[0].start) * (b[1].stop - b[1].start) for b in boxes) * 2 >= labels.size:
        return ndi.distance_transform_edt(labels > 0)
    dist = np.zeros(labels.shape)
    for lab, box in enumerate(boxes, start=1):
        comp = labels[box] == lab
        dist[box][comp] = ndi.distance_transform_edt(comp)[comp]
    return dist


def prepare_skeleton(labels: np.ndarray, n: int) -> SkeletonInput:
    """Crop a labelled crack mask to its cracks, thin it and measure its distances.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Crack labels 1..n (0 = background), at least one crack.
    n : int
        Number of cracks.

    Returns
    -------
    SkeletonInput
    """
    from skimage.morphology import skeletonize

    full = ndi.find_objects(labels)
    r0 = min(sl[0].start for sl in full if sl is not None)
    c0 = min(sl[1].start for sl in full if sl is not None)
    r1 = max(sl[0].stop for sl in full if sl is not None)
    c1 = max(sl[1].stop for sl in full if sl is not None)
    cropped = np.pad(labels[r0:r1, c0:c1], 1)
    slices = ndi.find_objects(cropped)
    fg = cropped > 0
    dist = _distance(cropped, slices)
    skel = skeletonize(fg, method="lee").astype(bool) & fg
    return SkeletonInput(cropped, fg, skel, dist, n, (r0, c0), slices)
