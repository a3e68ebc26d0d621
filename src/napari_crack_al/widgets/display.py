"""How a range image and its crack mask look in napari.

The display data of a range image (its transverse road profile removed so
cracks stand out), the names of the mask layer, and the colours, brush size and
layer names the :class:`~napari_crack_al.widgets.session.AnnotationSession`
uses. Re-exported by :mod:`napari_crack_al.widgets.session`.

This module uses neither napari nor Qt.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import ConfigError
from ..core.normalize import PROFILE_MODES, display_contrast_limits, remove_transverse_profile
from ..core.range_io import RangeImage

__all__ = [
    "labels_layer_name",
    "display_image",
    "DEFAULT_BRUSH_SIZE",
    "MASK_COLORMAP",
    "MASK_SOURCE_WORDS",
    "OVERLAY_NAME",
]

#: Brush diameter in pixels when a mask is first shown (cracks are 1-10 px wide).
DEFAULT_BRUSH_SIZE = 5
#: Label 1 (crack) in a colour that stands out on a gray range image.
MASK_COLORMAP = {None: "transparent", 0: "transparent", 1: "#ff3030"}

MASK_SOURCE_WORDS = {"annotation": "annotation", "suggestion": "suggestion", "draft": "draft", "empty": "new"}
#: Name of the optional layer showing the model's crack probability (below the mask).
OVERLAY_NAME = "crack probability"


def labels_layer_name(source: str) -> str:
    """Name of the mask layer for a mask that came from ``source``.

    Parameters
    ----------
    source : {"annotation", "suggestion", "draft", "empty"}
        Where :meth:`Project.mask_for_editing` found the mask.

    Returns
    -------
    str
        e.g. ``"crack mask (annotation)"``; an empty start is called ``"crack mask (new)"``.
    """
    return f"crack mask ({MASK_SOURCE_WORDS.get(source, source)})"


def display_image(image: RangeImage, profile: str = "column") -> tuple[np.ndarray, tuple[float, float]]:
    """The pixels to show for a range image, and their contrast limits.

    For a one-channel range image the transverse road profile (cross-slope,
    ruts) is removed first, so cracks stand out instead of the road's shape;
    colour photographs converted to gray are shown as they are.

    Parameters
    ----------
    image : RangeImage
        The image.
    profile : {"column", "row", "none"}
        Which transverse profile to remove (see
        :func:`~napari_crack_al.core.normalize.remove_transverse_profile`).

    Returns
    -------
    (ndarray of float32, (float, float))
        Display data and contrast limits over the valid pixels.
    """
    if profile not in PROFILE_MODES:
        raise ConfigError(f"display profile must be one of {', '.join(PROFILE_MODES)}; got {profile!r}")
    if profile == "none" or getattr(image, "channels", 1) != 1:
        return image.data, display_contrast_limits(image)
    data = remove_transverse_profile(image.data, image.valid, axis=profile)
    shown = RangeImage(data=data, valid=image.valid, path=image.path, source_dtype=image.source_dtype)
    return data, display_contrast_limits(shown)
