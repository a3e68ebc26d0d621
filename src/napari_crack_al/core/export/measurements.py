"""Crack measurements from a binary mask: length, width, topology and orientation per crack.

A *crack* is a connected component of the mask (8-connectivity) with at least
``min_area`` pixels. Each crack is reduced to a one-pixel-wide skeleton (Lee's
thinning), which is read as a graph: skeleton pixels are nodes and 8-neighbour
pixels are joined by an edge of length 1 (horizontal or vertical step) or
sqrt(2) (diagonal step). A diagonal edge whose two pixels also share a 4-neighbour
on the skeleton is left out, so that a staircase is not counted twice.

Definitions (see ``docs/export.md`` for the tolerances measured on test shapes):

* **area** -- pixels of the component.
* **length** -- sum of the skeleton edge lengths (each undirected pair of
  neighbours once), plus ``d - 0.5`` at every free end of the skeleton (``d`` =
  Euclidean distance from the end pixel to the nearest background pixel), so that
  a straight line of N pixels measures N. Side branches shorter than the local
  crack width at their junction (thinning artefacts of a bumpy outline) are left out.
* **width** -- ``2 d - 1`` at every skeleton pixel away from junctions (``d`` from
  the Euclidean distance transform), or ``2 d`` where the ridge of the distance
  transform is two pixels wide (crack of even width); mean and maximum over the
  skeleton. A straight line 3 pixels wide gives exactly 3.0.
* **branch points** -- junctions of the skeleton graph: pixels with 3 or more
  neighbours, adjacent ones merged into one junction, and junctions closer than
  the sum of their local crack radii plus one pixel merged as well. A junction
  left with fewer than 3 branches after dropping short side branches is not a
  branch point.
* **segments** -- skeleton paths between junctions and free ends (a closed loop
  without junction is one segment).
* **cycles** -- holes of the component (background regions it encloses, 4-connected)
  of at least ``min_area`` pixels.
* **orientation** -- from the principal axis of the skeleton pixels: ``alligator``
  when the crack is a network (at least :data:`ALLIGATOR_MIN_CYCLES` cycles, or at
  least :data:`ALLIGATOR_MIN_BRANCH_POINTS` branch points with at most
  :data:`ALLIGATOR_MAX_LENGTH_PER_BRANCH_POINT` pixels of length per branch point);
  otherwise ``irregular`` when the skeleton is not elongated (minor/major variance
  ratio above :data:`IRREGULAR_VARIANCE_RATIO`); otherwise ``longitudinal`` (within
  :data:`ORIENTATION_TOLERANCE_DEG` of the image vertical axis = rows = driving
  direction), ``transverse`` (within the tolerance of the horizontal axis) or
  ``diagonal``.

This module labels the cracks, measures their regions (holes, orientation) and sums them
per image; the skeleton, the distances and the graph analysis are in
:mod:`napari_crack_al.core.skeleton.graph` (shared with the editing tools), the result
types in :mod:`.crack_types` (re-exported here).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from ..errors import ConfigError, MaskError
from .crack_types import ORIENTATIONS, CrackMeasurement, ImageCrackSummary
from ..skeleton.graph import analyse_skeleton, prepare_skeleton

__all__ = [
    "ORIENTATIONS",
    "ORIENTATION_TOLERANCE_DEG",
    "IRREGULAR_VARIANCE_RATIO",
    "ALLIGATOR_MIN_CYCLES",
    "ALLIGATOR_MIN_BRANCH_POINTS",
    "ALLIGATOR_MAX_LENGTH_PER_BRANCH_POINT",
    "CrackMeasurement",
    "ImageCrackSummary",
    "check_pixel_size",
    "label_cracks",
    "measure_cracks",
    "summarize_image",
]

logger = logging.getLogger(__name__)

#: Largest angle (degrees) between the principal axis and the image axis of a class.
ORIENTATION_TOLERANCE_DEG = 20.0
#: Minor/major variance ratio of the skeleton above which a crack is "irregular".
IRREGULAR_VARIANCE_RATIO = 0.25
#: A crack with at least this many cycles (enclosed holes) is "alligator".
ALLIGATOR_MIN_CYCLES = 2
#: ... or with at least this many branch points ...
ALLIGATOR_MIN_BRANCH_POINTS = 4
#: ... and at most this many pixels of length per branch point.
ALLIGATOR_MAX_LENGTH_PER_BRANCH_POINT = 50.0

_EIGHT = np.ones((3, 3), dtype=bool)


def check_pixel_size(pixel_size_mm: float | None) -> float | None:
    """The pixel size as a float (None stays None); ConfigError unless positive and finite."""
    if pixel_size_mm is None:
        return None
    try:
        value = float(pixel_size_mm)
    except (TypeError, ValueError):
        raise ConfigError("pixel size must be a positive number of millimetres; "
                          f"got {pixel_size_mm!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError("pixel size must be a positive number of millimetres; "
                          f"got {pixel_size_mm!r}")
    return value


def label_cracks(mask: np.ndarray, *, min_area: int = 5) -> tuple[np.ndarray, int]:
    """Label the cracks of a mask (8-connectivity), dropping components under ``min_area``.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)
        True = crack (integer arrays: > 0 is crack).
    min_area : int
        Smallest component kept, in pixels.

    Returns
    -------
    labels : ndarray of int32, shape (H, W)
        0 = background, 1..n = cracks in raster order of their first pixel.
    n : int
        Number of cracks.

    Raises
    ------
    MaskError
        ``mask`` is not a 2-D bool or integer array.
    ConfigError
        ``min_area`` is negative.
    """
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise MaskError(None, f"a mask must be a 2-D array, got shape {arr.shape}")
    if arr.dtype != bool and not np.issubdtype(arr.dtype, np.integer):
        raise MaskError(None, f"a mask must be bool or integer, got dtype {arr.dtype}")
    if int(min_area) < 0:
        raise ConfigError(f"min_area must be >= 0; got {min_area!r}")
    labels, n = ndi.label(arr > 0 if arr.dtype != bool else arr, structure=_EIGHT)
    labels = labels.astype(np.int32, copy=False)
    if n == 0:
        return labels, 0
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    keep = areas >= max(int(min_area), 1)
    keep[0] = False
    remap = np.zeros(n + 1, dtype=np.int32)
    remap[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return remap[labels], int(keep.sum())


def _count_holes(labels: np.ndarray, slices: list, n: int, min_area: int) -> np.ndarray:
    """Holes (enclosed 4-connected background regions >= min_area px) per crack label.

    ``labels`` must have a background border. The crack enclosing a hole is the one
    next to it whose bounding box holds the hole's (cracks inside the hole have smaller boxes).
    """
    cycles = np.zeros(n + 1, dtype=np.int64)
    bg_labels, n_bg = ndi.label(labels == 0)
    if n_bg <= 1:
        return cycles
    outside = bg_labels[0, 0]
    areas = np.bincount(bg_labels.ravel(), minlength=n_bg + 1)
    hole_slices = ndi.find_objects(bg_labels)
    for hole in range(1, n_bg + 1):
        if hole == outside or areas[hole] < max(min_area, 1):
            continue
        hs = hole_slices[hole - 1]
        box = (slice(hs[0].start - 1, hs[0].stop + 1), slice(hs[1].start - 1, hs[1].stop + 1))
        ring = ndi.binary_dilation(bg_labels[box] == hole, structure=_EIGHT)
        for lab in np.unique(labels[box][ring]).tolist():
            if lab == 0:
                continue
            ls = slices[lab - 1]
            if (ls[0].start <= hs[0].start and ls[0].stop >= hs[0].stop
                    and ls[1].start <= hs[1].start and ls[1].stop >= hs[1].stop):
                cycles[lab] += 1
                break
    return cycles


def _orientation(rows: np.ndarray, cols: np.ndarray) -> tuple[str, float]:
    """Orientation class (without the alligator rule) and angle from the horizontal axis."""
    if rows.size < 2:
        return "irregular", 0.0
    cov = np.cov(np.stack([cols.astype(float), rows.astype(float)]))
    evals, evecs = np.linalg.eigh(cov)
    major = evecs[:, 1]
    angle = math.degrees(math.atan2(abs(major[1]), abs(major[0])))  # 0 = horizontal, 90 = vertical
    if evals[1] <= 0 or evals[0] / evals[1] > IRREGULAR_VARIANCE_RATIO:
        return "irregular", angle
    if angle >= 90.0 - ORIENTATION_TOLERANCE_DEG:
        return "longitudinal", angle
    if angle <= ORIENTATION_TOLERANCE_DEG:
        return "transverse", angle
    return "diagonal", angle


def measure_cracks(mask: np.ndarray, *, pixel_size_mm: float | None = None,
                   min_area: int = 5) -> list[CrackMeasurement]:
    """Measure every crack of a mask.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)
        True = crack (integer arrays: > 0 is crack).
    pixel_size_mm : float or None
        Size of a pixel in millimetres; when given the ``*_mm`` fields are filled.
    min_area : int
        Components smaller than this (pixels) are not cracks.

    Returns
    -------
    list of CrackMeasurement
        One per crack, ordered by label (raster order of the first pixel).

    Raises
    ------
    MaskError
        ``mask`` is not a 2-D bool or integer array.
    ConfigError
        ``pixel_size_mm`` is not a positive number or ``min_area`` is negative.
    """
    size = check_pixel_size(pixel_size_mm)
    labels, n = label_cracks(mask, min_area=min_area)
    if n == 0:
        return []
    full_slices = ndi.find_objects(labels)
    prep = prepare_skeleton(labels, n)
    areas = np.bincount(prep.labels.ravel(), minlength=n + 1)
    cycles = _count_holes(prep.labels, prep.slices, n, min_area)
    stats = analyse_skeleton(prep.labels, prep.fg, prep.skel, prep.dist, n)
    rows, cols, node_lab = stats.rows, stats.cols, stats.node_lab
    length, mean_w, max_w = stats.length, stats.mean_w, stats.max_w
    n_branch, n_segments = stats.n_branch, stats.n_segments

    order = np.argsort(node_lab, kind="stable")
    bounds = np.searchsorted(node_lab[order], np.arange(n + 2))
    out: list[CrackMeasurement] = []
    for lab in range(1, n + 1):
        sel = order[bounds[lab]:bounds[lab + 1]]
        orientation, angle = _orientation(rows[sel], cols[sel])
        nb = int(n_branch[lab])
        if cycles[lab] >= ALLIGATOR_MIN_CYCLES or (
                nb >= ALLIGATOR_MIN_BRANCH_POINTS
                and length[lab] <= ALLIGATOR_MAX_LENGTH_PER_BRANCH_POINT * nb):
            orientation = "alligator"
        sl = full_slices[lab - 1]
        out.append(_make(lab, int(areas[lab]), float(length[lab]), float(mean_w[lab]),
                         float(max_w[lab]), max(int(n_segments[lab]), 1), nb, int(cycles[lab]),
                         orientation, angle, (sl[0].start, sl[1].start, sl[0].stop, sl[1].stop),
                         size))
    logger.debug("measured %d cracks", len(out))
    return out


def _make(label: int, area: int, length: float, mean_w: float, max_w: float, n_seg: int,
          n_branch: int, n_cycles: int, orientation: str, angle: float,
          bbox: tuple[int, int, int, int],
          size: float | None) -> CrackMeasurement:
    mm = {}
    if size is not None:
        mm = {"area_mm2": area * size * size, "length_mm": length * size,
              "mean_width_mm": mean_w * size, "max_width_mm": max_w * size}
    return CrackMeasurement(label=label, area_px=area, length_px=length, mean_width_px=mean_w,
                            max_width_px=max_w, n_segments=n_seg, n_branch_points=n_branch,
                            n_cycles=n_cycles, orientation=orientation, angle_deg=round(angle, 3),
                            bbox=tuple(int(x) for x in bbox), **mm)


def summarize_image(measurements: Sequence[CrackMeasurement], *,
                    image_shape: tuple[int, int] | None = None,
                    pixel_size_mm: float | None = None) -> ImageCrackSummary:
    """Sum the crack measurements of one image.

    Parameters
    ----------
    measurements : sequence of CrackMeasurement
        The cracks of the image (from :func:`measure_cracks`).
    image_shape : (int, int) or None
        ``(H, W)`` of the image, for the crack area fraction.
    pixel_size_mm : float or None
        Pixel size for the millimetre fields; None takes it from the measurements
        when they carry millimetre values.

    Returns
    -------
    ImageCrackSummary
    """
    size = check_pixel_size(pixel_size_mm)
    ms = list(measurements)
    if size is None and ms and all(m.area_mm2 is not None for m in ms):
        size = math.sqrt(ms[0].area_mm2 / ms[0].area_px)
    total_len = float(sum(m.length_px for m in ms))
    total_area = int(sum(m.area_px for m in ms))
    if total_len > 0:
        mean_w = float(sum(m.mean_width_px * m.length_px for m in ms) / total_len)
    else:
        mean_w = float(np.mean([m.mean_width_px for m in ms])) if ms else 0.0
    max_w = float(max((m.max_width_px for m in ms), default=0.0))
    counts = {name: 0 for name in ORIENTATIONS}
    for m in ms:
        counts[m.orientation] += 1
    fraction = None
    if image_shape is not None:
        h, w = (int(s) for s in image_shape)
        fraction = total_area / max(1, h * w)
    mm = {}
    if size is not None:
        mm = {"total_length_mm": total_len * size, "mean_width_mm": mean_w * size,
              "max_width_mm": max_w * size}
    return ImageCrackSummary(n_cracks=len(ms), total_area_px=total_area, total_length_px=total_len,
                             mean_width_px=mean_w, max_width_px=max_w,
                             **{f"n_{k}": v for k, v in counts.items()},
                             crack_area_fraction=fraction, **mm)
