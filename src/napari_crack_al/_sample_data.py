"""npe2 sample data: a synthetic crack range image with its ground-truth mask."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["make_sample_data", "SAMPLE_SEED"]

#: Seed of the sample image (the first seed from here whose image has cracks is used).
SAMPLE_SEED = 3


def make_sample_data(seed: int = SAMPLE_SEED, size: int = 512) -> list[tuple[Any, dict[str, Any], str]]:
    """A 512 x 512 synthetic range image (uint16, 0 = no return) and its crack mask.

    Parameters
    ----------
    seed : int
        Generator seed; if that image has no crack the next seeds are tried.
    size : int
        Image side in pixels.

    Returns
    -------
    list of napari layer data
        ``(range image, {...}, "image")`` with contrast limits over the valid pixels,
        then ``(mask uint8, {"name": "crack ground truth"}, "labels")``.
    """
    from .core.normalize import display_contrast_limits
    from .core.io.range_io import RangeImage
    from .core.synthetic import SyntheticConfig, generate_range_image

    config = SyntheticConfig(size=size)
    for offset in range(100):
        sample = generate_range_image(seed + offset, config)
        if sample.mask.any():
            break
    valid = sample.range_image != 0
    image = RangeImage(data=sample.range_image.astype(np.float32), valid=valid, path=None,
                       source_dtype="uint16")
    limits = display_contrast_limits(image)
    return [
        (sample.range_image, {"name": "synthetic range image", "colormap": "gray",
                              "contrast_limits": list(limits), "metadata": {"valid": valid}}, "image"),
        (sample.mask.astype(np.uint8), {"name": "crack ground truth", "opacity": 0.6}, "labels"),
    ]
