"""Parameters of the synthetic range-image generator: :class:`SyntheticConfig` (validated).

Also the crack and distractor kinds it can draw. :mod:`.synthetic` re-exports these
names; the generator itself is :func:`~napari_crack_al.core.synthetic.generate_range_image`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config_io import ConfigIO
from ..checks import Problems

__all__ = ["CRACK_KINDS", "DISTRACTOR_KINDS", "SyntheticConfig"]

CRACK_KINDS: tuple[str, ...] = ("longitudinal", "transverse", "branching", "alligator")
DISTRACTOR_KINDS: tuple[str, ...] = ("sealed", "joint")


#: (min, max) ranges of the generator and their bounds.
_RANGES = (("width_px", 1.0, 50.0), ("depth_mm", 0.01, 100.0), ("stone_size_mm", 0.5, 100.0),
           ("cross_slope_percent", -10.0, 10.0), ("rut_depth_mm", 0.0, 100.0))
#: Shares and amplitudes in [0, high].
_FRACTIONS = (("no_crack_fraction", 1.0), ("distractor_probability", 1.0),
              ("dropout_fraction", 0.5), ("noise_mm", 100.0), ("texture_mm", 100.0))


@dataclass(frozen=True)
class SyntheticConfig(ConfigIO):
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
        check = Problems(self)
        size = (self.size, self.size) if isinstance(self.size, (int, np.integer)) else self.size
        values: dict[str, Any] = {
            "size": check.pair("size", 32, 20_000, integer=True, ordered=False, value=size),
            "crack_kinds": check.members("crack_kinds", CRACK_KINDS),
            "distractor_kinds": check.members("distractor_kinds", DISTRACTOR_KINDS),
            "n_cracks": check.pair("n_cracks", 0, 200, integer=True),
        }
        for name, low, high in _RANGES:
            values[name] = check.pair(name, low, high)
        check.number("pixel_size_mm", 0.0, low_open=True)
        check.number("units_per_mm", 0.0, low_open=True)
        for name, high in _FRACTIONS:
            check.number(name, 0.0, high)
        check.integer("base_value", 1, 65535)
        check.raise_if_any("SyntheticConfig")
        for name, value in values.items():
            object.__setattr__(self, name, value)
        for name in ("pixel_size_mm", "units_per_mm", *(n for n, _ in _FRACTIONS)):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "distractors", bool(self.distractors))

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape ``(height, width)``."""
        return self.size  # type: ignore[return-value]
