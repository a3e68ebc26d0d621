"""Editing tools for thin cracks: trace a crack between clicks, split a mask into segments.

napari-free: the widgets only translate clicks into calls of these functions.
"""

from __future__ import annotations

from .path import (
    DEFAULT_MARGIN,
    measure_path,
    path_mask,
    path_width,
    trace_between,
    trace_cost,
    trace_on_image,
)
from .plan import trace_plan
from .segments import SNAP_RADIUS, crack_segments, segment_at

__all__ = [
    "DEFAULT_MARGIN",
    "SNAP_RADIUS",
    "crack_segments",
    "measure_path",
    "path_mask",
    "path_width",
    "segment_at",
    "trace_between",
    "trace_cost",
    "trace_on_image",
    "trace_plan",
]
