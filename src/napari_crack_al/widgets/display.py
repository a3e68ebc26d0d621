"""How a range image and its crack mask look in napari.

The display data of a range image — exactly what the model sees: the project's
normalisation (:func:`~napari_crack_al.core.normalize.normalize_for_model`, with the
profile setting stored with the model) —, the names of the mask layer, and the
colours, brush size and layer names the
:class:`~napari_crack_al.widgets.session.AnnotationSession` uses. Re-exported by
:mod:`napari_crack_al.widgets.session`.

This module uses neither napari nor Qt.
"""

from __future__ import annotations

import numpy as np

from ..core.normalize import display_data
from ..core.io.range_io import RangeImage

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

MASK_SOURCE_WORDS = {"annotation": "accepted", "suggestion": "suggestion", "draft": "draft", "empty": "new"}
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
        e.g. ``"crack mask (accepted)"``; an empty start is called ``"crack mask (new)"``.
    """
    return f"crack mask ({MASK_SOURCE_WORDS.get(source, source)})"


def display_image(image: RangeImage, profile: str = "auto") -> tuple[np.ndarray, tuple[float, float]]:
    """The pixels to show for a range image — the model's input — and their contrast limits.

    See :func:`~napari_crack_al.core.normalize.display_data` (this is that function).

    Parameters
    ----------
    image : RangeImage
        The image.
    profile : {"auto", "none", "column", "row"}
        The normalisation's profile setting (the model's; see
        :func:`~napari_crack_al.core.normalize.normalize_for_model`).

    Returns
    -------
    (ndarray of float32, (float, float))
        Display data (robust unit scale, invalid pixels 0) and contrast limits
        (1st and 99th percentiles of the valid pixels).

    Raises
    ------
    ConfigError
        ``profile`` is not a valid setting.
    """
    return display_data(image, profile)
