"""Reading and writing crack masks.

A mask in memory is a ``bool (H, W)`` array (True = crack). On disk it is a 0/255
8-bit PNG by default (TIFF optional, or 0/1 values), always written atomically
(temporary file, fsync, rename) through :mod:`napari_crack_al.core.io.atomic`.

Reading accepts 0/1, 0/255 and label images (any value > 0 is crack), palette
PNGs (index > 0 is crack) and RGB/RGBA masks (any colour channel > 0 is crack;
alpha is ignored).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from ..errors import ConfigError, MaskError
from .range_io import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, load_array

__all__ = ["MASK_FORMATS", "MASK_SUFFIXES", "read_mask", "write_mask", "write_label_image", "to_bool_mask"]

logger = logging.getLogger(__name__)

MASK_SUFFIXES = {".png": "png", ".tif": "tiff", ".tiff": "tiff"}
MASK_FORMATS = ("png", "tiff")
_MASK_VALUES = (255, 1)


def to_bool_mask(array: np.ndarray) -> np.ndarray:
    """Turn a 2-D label/0-1/0-255 array or an (H, W, C) colour mask into bool (> 0 is crack).

    Parameters
    ----------
    array : np.ndarray
        (H, W) or (H, W, C); with C == 2 the first channel is used, with C >= 3
        any of the first three channels > 0 is crack (alpha is ignored).

    Returns
    -------
    np.ndarray
        bool (H, W).
    """
    arr = np.asarray(array)
    if arr.ndim == 3:
        arr = arr[..., 0] if arr.shape[-1] < 3 else arr[..., :3]
        if arr.ndim == 3:
            return np.any(arr > 0, axis=-1) if arr.dtype != bool else np.any(arr, axis=-1)
    if arr.dtype == bool:
        return arr.copy()
    return arr > 0  # NaN > 0 is False


def read_mask(path: str | Path, *, expected_shape: tuple[int, int] | None = None,
              max_pixels: int = DEFAULT_MAX_PIXELS,
              max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Read a mask file as bool (True = crack).

    Parameters
    ----------
    path : str or Path
        A ``.png``, ``.tif``, ``.tiff`` or ``.npy`` file holding 0/1, 0/255, labels
        or an RGB mask.
    expected_shape : (int, int) or None
        The (H, W) of the image the mask belongs to.
    max_pixels : int
        Largest H*W accepted, checked from the header before decoding.
    max_bytes : int
        Largest decoded array accepted, in bytes, checked from the header before decoding.

    Returns
    -------
    np.ndarray
        bool (H, W).

    Raises
    ------
    MaskError
        The file cannot be read, or its size differs from ``expected_shape``.
    """
    arr = load_array(path, max_pixels=max_pixels, max_bytes=max_bytes, error=MaskError,
                     allow_bool=True, palette_as_index=True)
    mask = to_bool_mask(arr)
    if expected_shape is not None and tuple(mask.shape) != tuple(int(s) for s in expected_shape):
        h, w = mask.shape
        eh, ew = (int(s) for s in expected_shape)
        raise MaskError(path, f"mask size differs from its image: mask is {h} x {w} pixels "
                              f"(rows x columns), image is {eh} x {ew}")
    logger.debug("read mask %s: %s, %d crack pixels", path, mask.shape, int(mask.sum()))
    return mask


def _format_for(path: Path, fmt: str | None) -> str:
    suffix_fmt = MASK_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        if suffix_fmt is None:
            shown = repr(path.suffix) if path.suffix else "(none)"
            raise MaskError(path, f"unsupported mask file type {shown} "
                                  f"(supported: {', '.join(MASK_SUFFIXES)})")
        return suffix_fmt
    fmt_l = fmt.lower()
    fmt_l = "tiff" if fmt_l == "tif" else fmt_l
    if fmt_l not in MASK_FORMATS:
        raise ConfigError(f"mask format must be one of {', '.join(MASK_FORMATS)}; got {fmt!r}")
    if suffix_fmt != fmt_l:
        raise MaskError(path, f"file suffix {path.suffix or '(none)'!s} does not match the "
                              f"mask format {fmt_l!r}")
    return fmt_l


def _encode(mask: np.ndarray, fmt: str, values: int) -> bytes:
    pixels = mask.astype(np.uint8) * np.uint8(values)
    buf = io.BytesIO()
    if fmt == "png":
        from PIL import Image

        Image.fromarray(pixels).save(buf, format="PNG", optimize=False)
    else:
        import tifffile

        tifffile.imwrite(buf, pixels, photometric="minisblack", compression="zlib")
    return buf.getvalue()


def write_label_image(path: str | Path, labels: np.ndarray, *, fmt: str | None = None) -> Path:
    """Write integer labels atomically as they are: 8-bit when they fit, else 16-bit PNG or TIFF.

    Raises
    ------
    MaskError
        Not a non-empty 2-D integer array, labels outside 0..65535, an unsupported suffix,
        or the file cannot be written.
    """
    path = Path(path)
    fmt = _format_for(path, fmt)
    arr = np.asarray(labels)
    if arr.ndim != 2 or arr.size == 0 or arr.dtype.kind not in "biu":
        raise MaskError(path, f"cannot write labels of shape {arr.shape} and type {arr.dtype}; "
                              "expected a non-empty 2-D integer array")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi > 65535:
        raise MaskError(path, f"label values {lo}..{hi} do not fit a 16-bit image (0..65535)")
    pixels = arr.astype(np.uint8 if hi <= 255 else np.uint16)
    buf = io.BytesIO()
    if fmt == "png":
        from PIL import Image

        Image.fromarray(pixels).save(buf, format="PNG", optimize=False)
    else:
        import tifffile

        tifffile.imwrite(buf, pixels, photometric="minisblack", compression="zlib")
    try:
        atomic_write(path, lambda fh: fh.write(buf.getvalue()), error=MaskError)
    except OSError as exc:
        raise MaskError(path, f"cannot write the labels ({exc.strerror or exc})") from exc
    return path


def write_mask(path: str | Path, mask: np.ndarray, *, fmt: str | None = None,
               values: int = 255) -> Path:
    """Write a mask atomically as an 8-bit PNG or TIFF.

    Parameters
    ----------
    path : str or Path
        Destination; its folder must exist.
    mask : np.ndarray
        2-D bool or numeric array (> 0 is crack).
    fmt : {"png", "tiff"} or None
        File format; None takes it from the suffix (``.png``, ``.tif``, ``.tiff``).
    values : {255, 1}
        Pixel value written for crack (background is 0).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    MaskError
        The destination is a folder, its folder is missing or not writable, the
        suffix is unsupported, or the mask is not a non-empty 2-D array.
    ConfigError
        ``fmt`` or ``values`` is not one of the valid options.
    """
    path = Path(path)
    if values not in _MASK_VALUES:
        raise ConfigError(f"mask values must be one of {', '.join(map(str, _MASK_VALUES))}; "
                          f"got {values!r}")
    if path.is_dir():
        raise MaskError(path, "is a folder, not a file")
    fmt = _format_for(path, fmt)
    arr = np.asarray(mask)
    if arr.ndim != 2 or arr.size == 0:
        raise MaskError(path, f"cannot write a mask of shape {arr.shape}; expected a non-empty "
                              "2-D array")
    if arr.dtype.kind not in "biuf":
        raise MaskError(path, f"cannot write a mask of data type {arr.dtype}")
    data = _encode(to_bool_mask(arr), fmt, values)
    try:
        atomic_write(path, lambda fh: fh.write(data), error=MaskError)
    except MaskError as exc:
        if exc.path == path:
            raise
        raise MaskError(path, f"cannot write the mask: {exc.problem}") from exc
    except PermissionError as exc:
        raise MaskError(path, "cannot write the mask (permission denied)") from exc
    except OSError as exc:
        raise MaskError(path, f"cannot write the mask ({exc.strerror or exc})") from exc
    logger.debug("wrote mask %s (%s, values %d)", path, fmt, values)
    return path
