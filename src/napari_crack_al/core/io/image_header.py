"""The pixel count of an image file, from its header only (no pixel is decoded).

The napari session opens small images at once and large ones in a worker thread;
:func:`image_pixels` tells which without reading the image: it costs one small read,
whatever the image size.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import ImageReadError, InputError
from .image_decode import _layout, _read_npy_header, check_file

__all__ = ["image_pixels"]

logger = logging.getLogger(__name__)


def image_pixels(path: str | Path) -> int | None:
    """Height x width of the image in ``path``, read from its header.

    Parameters
    ----------
    path : str or Path
        A ``.png``, ``.tif``, ``.tiff`` or ``.npy`` file.

    Returns
    -------
    int or None
        The number of pixels (channels not counted); None when the header cannot be
        read (a missing, unsupported or corrupt file: reading it fails at once).
    """
    try:
        path, head = check_file(path)
        suffix = path.suffix.lower()
        if suffix == ".png":
            if head[12:16] != b"IHDR" or len(head) < 24:
                return None
            w, h = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
            return h * w
        if suffix in (".tif", ".tiff"):
            return _tiff_pixels(path)
        shape, _fortran, _dtype = _read_npy_header(path, ImageReadError)
        h, w, _ = _layout(tuple(shape), path, ImageReadError)
        return h * w
    except (InputError, OSError, ValueError) as exc:
        logger.debug("no image size in the header of %s: %s", path, exc)
        return None


def _tiff_pixels(path: Path) -> int | None:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            shape = tuple(tif.pages[0].shape)
    except Exception as exc:  # noqa: BLE001 - tifffile raises many types for a bad header
        logger.debug("no TIFF header in %s: %s", path, exc)
        return None
    h, w, _ = _layout(shape, path, ImageReadError)
    return h * w
