"""npe2 writer: a Labels layer as a crack mask file (0/255 8-bit PNG or TIFF).

The format follows the suffix (``.png`` when there is none, ``.tif``/``.tiff``);
crack pixels are written as 255 unless the layer's metadata (or the writer's
meta) says ``"values": 1``. A multi-class Labels layer (values other than 0 and 1)
keeps its label values: an 8-bit file when they fit, else 16-bit (both PNG and
TIFF hold them). Files are written atomically by :mod:`napari_crack_al.core.io.mask_io`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from .core.errors import MaskError

__all__ = ["write_labels", "MASK_WRITE_SUFFIXES"]

logger = logging.getLogger(__name__)

MASK_WRITE_SUFFIXES = (".png", ".tif", ".tiff")


def _values(meta: dict[str, Any]) -> int:
    if "values" in meta:
        return int(meta["values"])
    metadata = meta.get("metadata") or {}
    for key in ("values", "mask_values"):
        if key in metadata:
            return int(metadata[key])
    return 255


def write_labels(path: str | Path, data: Any, meta: dict[str, Any]) -> list[str]:
    """npe2 writer hook for one Labels layer.

    Parameters
    ----------
    path : str or Path
        Destination; ``.png`` (default when no suffix), ``.tif`` or ``.tiff``.
    data : array-like
        The labels (> 0 is crack; values other than 0 and 1 are kept as they are);
        leading singleton dimensions are dropped.
    meta : dict
        Layer attributes (napari passes ``name``, ``metadata``...); an optional
        ``values`` (255 or 1) chooses the crack pixel value.

    Returns
    -------
    list of str
        The file written.

    Raises
    ------
    MaskError
        The labels are not 2-D, the suffix is unsupported or the file cannot be written.
    """
    from .core.io.mask_io import write_mask

    path = Path(path)
    if path.suffix == "":
        path = path.with_suffix(".png")
    if path.suffix.lower() not in MASK_WRITE_SUFFIXES:
        raise MaskError(path, f"unsupported mask format {path.suffix!r}; use one of "
                              f"{', '.join(MASK_WRITE_SUFFIXES)}")
    arr = np.asarray(data)
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise MaskError(path, f"a crack mask must be 2-D, the layer has shape {np.shape(data)}")
    if arr.dtype.kind in "iu" and arr.size and (int(arr.max()) > 1 or int(arr.min()) < 0):
        from .core.io.mask_io import write_label_image

        write_label_image(path, arr)  # several classes: their values are kept
        logger.info("wrote %s with its label values (%d..%d)", path, int(arr.min()), int(arr.max()))
        return [str(path)]
    write_mask(path, arr > 0, values=_values(meta))
    return [str(path)]
