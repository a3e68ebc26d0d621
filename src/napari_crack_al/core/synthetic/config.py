"""Parameters of the synthetic range-image generator: :class:`SyntheticConfig` (validated).

Also the crack and distractor kinds it can draw. :mod:`.synthetic` re-exports these
names; the generator itself is :func:`~napari_crack_al.core.synthetic.generate_range_image`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..config_io import ConfigIO
from ..errors import ConfigError

__all__ = ["CRACK_KINDS", "DISTRACTOR_KINDS", "SyntheticConfig"]

CRACK_KINDS: tuple[str, ...] = ("longitudinal", "transverse", "branching", "alligator")
DISTRACTOR_KINDS: tuple[str, ...] = ("sealed", "joint")


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
