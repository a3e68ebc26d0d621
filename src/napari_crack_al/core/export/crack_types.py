"""Value types of crack measurements: one crack (:class:`CrackMeasurement`) and one image.

Plain frozen dataclasses with no computation beyond a count per orientation class;
:mod:`.measurements` fills them and re-exports these names.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ORIENTATIONS", "CrackMeasurement", "ImageCrackSummary"]

#: Orientation classes, in the order summaries list them.
ORIENTATIONS = ("longitudinal", "transverse", "diagonal", "alligator", "irregular")


@dataclass(frozen=True)
class CrackMeasurement:
    """Measurements of one crack (connected component of a mask).

    Attributes
    ----------
    label : int
        1-based crack number (the value of this crack in :func:`label_cracks`).
    area_px : int
        Pixels of the crack.
    length_px : float
        Skeleton length in pixels.
    mean_width_px, max_width_px : float
        Mean and maximum width in pixels along the skeleton.
    n_segments : int
        Skeleton paths between junctions and free ends.
    n_branch_points : int
        Junctions with three or more branches.
    n_cycles : int
        Enclosed holes of at least ``min_area`` pixels.
    orientation : str
        One of :data:`ORIENTATIONS`.
    angle_deg : float
        Angle of the principal axis from the image horizontal axis, in [0, 90]
        (0 = along the columns = transverse, 90 = along the rows = longitudinal).
    bbox : tuple of int
        ``(min_row, min_col, max_row, max_col)``, max exclusive.
    area_mm2, length_mm, mean_width_mm, max_width_mm : float or None
        The same in millimetres (square millimetres for the area) when the pixel
        size is known, else None.
    """

    label: int
    area_px: int
    length_px: float
    mean_width_px: float
    max_width_px: float
    n_segments: int
    n_branch_points: int
    n_cycles: int
    orientation: str
    angle_deg: float
    bbox: tuple[int, int, int, int]
    area_mm2: float | None = None
    length_mm: float | None = None
    mean_width_mm: float | None = None
    max_width_mm: float | None = None


@dataclass(frozen=True)
class ImageCrackSummary:
    """Crack measurements of one image, summed over its cracks.

    Attributes
    ----------
    n_cracks : int
        Number of cracks measured.
    total_area_px : int
        Crack pixels (of the measured cracks).
    total_length_px : float
        Sum of the crack lengths.
    mean_width_px : float
        Length-weighted mean of the cracks' mean widths (0 without cracks).
    max_width_px : float
        Largest crack width (0 without cracks).
    n_longitudinal, n_transverse, n_diagonal, n_alligator, n_irregular : int
        Cracks per orientation class.
    crack_area_fraction : float or None
        ``total_area_px / (H * W)`` when the image shape is given.
    total_length_mm, mean_width_mm, max_width_mm : float or None
        In millimetres when the pixel size is known.
    """

    n_cracks: int
    total_area_px: int
    total_length_px: float
    mean_width_px: float
    max_width_px: float
    n_longitudinal: int
    n_transverse: int
    n_diagonal: int
    n_alligator: int
    n_irregular: int
    crack_area_fraction: float | None = None
    total_length_mm: float | None = None
    mean_width_mm: float | None = None
    max_width_mm: float | None = None

    @property
    def counts(self) -> dict[str, int]:
        """Number of cracks per orientation class (every class of :data:`ORIENTATIONS`)."""
        return {name: int(getattr(self, f"n_{name}")) for name in ORIENTATIONS}
