"""Decoding PNG, TIFF and NPY files into arrays as stored, safely.

:func:`check_file` checks that a file exists, is readable and has a supported
suffix and signature; :func:`load_array` reads its pixels. The image size and pixel
type are checked from the file header *before* any pixel data is decoded, so a huge
or hostile file cannot exhaust memory; every problem raises the caller's
:class:`~napari_crack_al.core.errors.InputError` subclass naming the file.
:mod:`.range_io` builds range images on this and re-exports its public names.
"""

from __future__ import annotations

import errno
import logging
import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ImageReadError, InputError

__all__ = ["SUPPORTED_IMAGE_SUFFIXES", "DEFAULT_MAX_PIXELS", "DEFAULT_MAX_BYTES", "check_file",
           "load_array"]

logger = logging.getLogger(__name__)

SUPPORTED_IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".npy")
DEFAULT_MAX_PIXELS = 20_000 * 20_000
#: Largest decoded image in bytes (H x W x channels x bytes per value), checked from the
#: header before decoding: 4 GiB, so any single-channel image within DEFAULT_MAX_PIXELS
#: passes (float64 included) while a 20 000 x 20 000 x 4 float64 array (12.8 GB) does not.
DEFAULT_MAX_BYTES = 4 * 1024**3

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_NPY_MAGIC = b"\x93NUMPY"


# --------------------------------------------------------------------------- checks
def check_file(path: str | Path, *, error: type[InputError] = ImageReadError,
               suffixes: Sequence[str] = SUPPORTED_IMAGE_SUFFIXES) -> tuple[Path, bytes]:
    """Check that ``path`` is a readable, non-empty file with a supported suffix.

    Parameters
    ----------
    path : str or Path
        The file.
    error : type of InputError
        Exception class to raise.
    suffixes : sequence of str
        Accepted suffixes (lower case, with the dot).

    Returns
    -------
    (Path, bytes)
        The path and the first 32 bytes of the file (for a signature check).
    """
    path = Path(path)
    if path.is_dir():
        raise error(path, "is a folder, not a file")
    if not path.exists():
        raise error(path, "file does not exist")
    if path.suffix.lower() not in suffixes:
        shown = repr(path.suffix) if path.suffix else "(none)"
        raise error(path, f"unsupported file type {shown} (supported: {', '.join(suffixes)})")
    try:
        with open(path, "rb") as fh:
            head = fh.read(32)
    except PermissionError as exc:
        raise error(path, "file is not readable (permission denied)") from exc
    except OSError as exc:
        raise error(path, f"file cannot be opened ({exc.strerror or exc})") from exc
    if not head:
        raise error(path, "file is empty (0 bytes)")
    return path, head


def _layout(shape: tuple[int, ...], path: Path, error: type[InputError]) -> tuple[int, int, str]:
    """Interpret an array shape as (H, W) plus a channel layout; raise for stacks."""
    if any(int(s) == 0 for s in shape):
        raise error(path, f"image is empty (zero-size array of shape {tuple(shape)})")
    if len(shape) == 2:
        return int(shape[0]), int(shape[1]), "2d"
    if len(shape) == 3:
        if shape[-1] in (3, 4):
            return int(shape[0]), int(shape[1]), "last"
        if shape[0] in (3, 4):
            return int(shape[1]), int(shape[2]), "first"
        if shape[-1] in (1, 2):
            return int(shape[0]), int(shape[1]), "last"
        if shape[0] == 1:
            return int(shape[1]), int(shape[2]), "first"
    if len(shape) >= 3:
        raise error(path, f"is a {len(shape)}-D stack of shape {tuple(shape)}; "
                          "expected a single 2-D image")
    raise error(path, f"expected a 2-D image, got an array of shape {tuple(shape)}")


def _check_size(h: int, w: int, max_pixels: int, path: Path, error: type[InputError]) -> None:
    if h * w > max_pixels:
        raise error(
            path,
            f"image is too large: {h} x {w} = {h * w:,} pixels exceeds the limit of "
            f"{max_pixels:,} pixels (checked before decoding)",
        )


def _check_bytes(shape: Sequence[int], itemsize: int, max_bytes: int, path: Path,
                 error: type[InputError]) -> None:
    """Refuse an image whose decoded array (``shape`` x ``itemsize``) exceeds ``max_bytes``."""
    n_bytes = math.prod(int(s) for s in shape) * int(itemsize)
    if n_bytes > max_bytes:
        dims = " x ".join(str(int(s)) for s in shape)
        raise error(path, f"image is too large: {dims} values of {itemsize} bytes = "
                          f"{_bytes(n_bytes)} decoded exceeds the limit of {_bytes(max_bytes)} "
                          "(checked before decoding)")


def _bytes(n: int) -> str:
    """``"12,800,000,000 bytes (11.9 GiB)"``; the GiB only from 1 GiB on."""
    return f"{n:,} bytes" + (f" ({n / 2**30:.1f} GiB)" if n >= 2**30 else "")


def _out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` means that memory ran out (MemoryError, or ENOMEM from mmap/read)."""
    return isinstance(exc, MemoryError) or (isinstance(exc, OSError) and exc.errno == errno.ENOMEM)


def _png_decoded_shape(head: bytes, palette_as_index: bool) -> tuple[tuple[int, ...], int]:
    """((H, W) or (H, W, channels), bytes per value) of a PNG from its IHDR, as decoded."""
    w, h = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    depth, colour = head[24], head[25]
    channels = {0: 1, 2: 3, 3: 1 if palette_as_index else 4, 4: 2, 6: 4}.get(colour, 4)
    if channels == 1:
        return (h, w), 2 if depth == 16 else 1  # Pillow keeps 16 bits for gray only
    return (h, w, channels), 1


def _check_dtype(dtype: np.dtype, path: Path, error: type[InputError], allow_bool: bool) -> None:
    if dtype.hasobject:
        raise error(path, "contains pickled Python objects, which are refused for safety")
    kinds = "uifb" if allow_bool else "uif"
    if dtype.kind not in kinds:
        expected = "bool, integer or floating-point" if allow_bool else "integer or floating-point"
        raise error(path, f"unsupported data type {dtype} (expected {expected} pixels)")


def _to_hwc(arr: np.ndarray, layout: str) -> np.ndarray:
    """Return (H, W) or (H, W, C>=2)."""
    if layout == "first":
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return np.ascontiguousarray(arr)


# --------------------------------------------------------------------------- readers
def _load_png(path: Path, head: bytes, limits: tuple[int, int], error: type[InputError],
              palette_as_index: bool) -> tuple[np.ndarray, str]:
    from PIL import Image

    if not head.startswith(_PNG_MAGIC):
        raise error(path, "not a valid PNG file (the PNG signature is missing)")
    max_pixels, max_bytes = limits
    if head[12:16] == b"IHDR" and len(head) >= 26:
        shape, itemsize = _png_decoded_shape(head, palette_as_index)
        _check_size(shape[0], shape[1], max_pixels, path, error)
        _check_bytes(shape, itemsize, max_bytes, path, error)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path, formats=["PNG"])
    except Image.DecompressionBombError as exc:
        raise error(path, f"image is too large to decode safely ({exc})") from exc
    except Image.UnidentifiedImageError as exc:
        raise error(path, "not a valid PNG file (the image data cannot be identified)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise error(path, f"not a valid PNG file ({exc})") from exc
    with img:
        w, h = img.size
        if w == 0 or h == 0:
            raise error(path, f"image is empty (zero-size array of shape {(h, w)})")
        _check_size(h, w, max_pixels, path, error)
        if getattr(img, "n_frames", 1) > 1:
            raise error(path, f"is an animated PNG with {img.n_frames} frames; "
                              "expected a single 2-D image")
        try:
            img.load()
            if img.mode == "1":
                img = img.convert("L")
            elif img.mode == "PA" or (img.mode == "P" and not palette_as_index):
                img = img.convert("RGBA")
            arr = np.array(img)
        except (MemoryError, OSError, SyntaxError, ValueError, EOFError) as exc:
            if _out_of_memory(exc):
                raise error(path, f"not enough memory to read the image ({h} x {w})") from exc
            raise error(path, f"PNG file is truncated or corrupt ({exc})") from exc
    if arr.dtype == np.int32 and head[24:26] == b"\x10\x00":
        arr = arr.astype(np.uint16)  # older Pillow opens 16-bit gray PNG as 32-bit "I"
    layout = "last" if arr.ndim == 3 else "2d"
    return _to_hwc(arr, layout), arr.dtype.name


def _load_tiff(path: Path, head: bytes, limits: tuple[int, int], error: type[InputError],
               allow_bool: bool) -> tuple[np.ndarray, str]:
    import tifffile

    if not head.startswith(_TIFF_MAGICS):
        raise error(path, "not a valid TIFF file (the TIFF signature is missing)")
    try:
        tif = tifffile.TiffFile(path)
    except MemoryError as exc:
        raise error(path, "not enough memory to read the TIFF header") from exc
    except Exception as exc:  # tifffile raises many types for a bad header
        raise error(path, f"not a valid TIFF file ({exc})") from exc
    with tif:
        try:
            n_pages = len(tif.pages)
            page = tif.pages[0] if n_pages else None
            shape, dtype = (tuple(page.shape), page.dtype) if page is not None else ((), None)
        except Exception as exc:
            raise error(path, f"TIFF file is truncated or corrupt ({exc})") from exc
        if n_pages == 0 or page is None:
            raise error(path, "TIFF file holds no image")
        if n_pages > 1:
            raise error(path, f"is a multi-page TIFF ({n_pages} pages); "
                              "expected a single 2-D image")
        if dtype is None:
            raise error(path, "TIFF pixel format is not supported")
        _check_dtype(np.dtype(dtype), path, error, allow_bool)
        h, w, layout = _layout(shape, path, error)
        _check_size(h, w, limits[0], path, error)
        _check_bytes(shape, np.dtype(dtype).itemsize, limits[1], path, error)
        try:
            arr = page.asarray()
        except Exception as exc:
            if _out_of_memory(exc):
                raise error(path, f"not enough memory to read the image ({h} x {w})") from exc
            if "imagecodecs" in str(exc):
                raise error(path, f"TIFF compression {page.compression.name} cannot be decoded "
                                  "here (it needs the imagecodecs package)") from exc
            raise error(path, f"TIFF file is truncated or corrupt ({exc})") from exc
    if tuple(arr.shape) != shape:
        raise error(path, f"TIFF file is truncated or corrupt (got {arr.shape}, "
                          f"header says {shape})")
    return _to_hwc(arr, layout), np.dtype(dtype).name


def _read_npy_header(path: Path, error: type[InputError]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) from an NPY header, through numpy's public API.

    Versions 2.0 and 3.0 share one layout (a 4-byte header length); 3.0 only
    encodes the header as UTF-8 instead of latin-1, which differs solely in
    non-ASCII field names of structured dtypes (refused anyway).
    """
    fmt = np.lib.format
    try:
        with open(path, "rb") as fh:
            version = fmt.read_magic(fh)
            if version == (1, 0):
                return fmt.read_array_header_1_0(fh)
            if version in ((2, 0), (3, 0)):
                return fmt.read_array_header_2_0(fh)
    except PermissionError as exc:
        raise error(path, "file is not readable (permission denied)") from exc
    except Exception as exc:
        logger.debug("NPY header of %s: %r", path, exc)
        raise error(path, "not a valid NPY file (the header cannot be parsed)") from exc
    raise error(path, f"not a valid NPY file (unsupported format version "
                      f"{version[0]}.{version[1]}; expected 1.0, 2.0 or 3.0)")


def _load_npy(path: Path, head: bytes, limits: tuple[int, int], error: type[InputError],
              allow_bool: bool) -> tuple[np.ndarray, str]:
    if not head.startswith(_NPY_MAGIC):
        raise error(path, "not a valid NPY file (the NPY signature is missing)")
    shape, _fortran, dtype = _read_npy_header(path, error)
    dtype = np.dtype(dtype)
    _check_dtype(dtype, path, error, allow_bool)
    h, w, layout = _layout(tuple(shape), path, error)
    _check_size(h, w, limits[0], path, error)
    _check_bytes(shape, dtype.itemsize, limits[1], path, error)
    try:
        mm = np.load(path, mmap_mode="r", allow_pickle=False)
        arr = np.array(mm)
        del mm
    except (MemoryError, OSError) as exc:
        if _out_of_memory(exc):
            raise error(path, f"not enough memory to read the image ({h} x {w})") from exc
        raise error(path, f"NPY file is truncated or corrupt ({exc})") from exc
    except ValueError as exc:
        if "larger than" in str(exc) or "greater than" in str(exc):
            raise error(path, f"NPY file is truncated ({exc})") from exc
        raise error(path, f"not a valid NPY file ({exc})") from exc
    return _to_hwc(arr, layout), dtype.name


def load_array(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS,
               max_bytes: int = DEFAULT_MAX_BYTES, error: type[InputError] = ImageReadError,
               allow_bool: bool = False, palette_as_index: bool = False) -> np.ndarray:
    """Read the pixels of a PNG, TIFF or NPY file as stored.

    Parameters
    ----------
    path : str or Path
        The file.
    max_pixels : int
        Largest H*W accepted, checked from the header before decoding.
    max_bytes : int
        Largest decoded array accepted, in bytes (H x W x channels x bytes per
        value), checked from the header before decoding.
    error : type of InputError
        Exception class for every problem (``ImageReadError``, ``MaskError``...).
    allow_bool : bool
        Accept bool NPY/TIFF data (masks) instead of refusing it.
    palette_as_index : bool
        Return the palette indices of a palette PNG (label masks) instead of its colours.

    Returns
    -------
    np.ndarray
        (H, W) or (H, W, C) with C in (2, 3, 4), in the stored dtype.

    Notes
    -----
    A 3-D array is read as colour when its last axis has 3 or 4 entries
    (channels last), else when its first axis has 3 or 4 (channels first, as in
    ``(3, H, W)`` NPY or planar TIFF), else (H, W, 1|2) or (1, H, W); anything
    else is a stack and refused. 16-bit RGB PNGs are reduced to 8 bits by Pillow.
    """
    path, head = check_file(path, error=error)
    suffix = path.suffix.lower()
    limits = (max_pixels, max_bytes)
    if suffix == ".png":
        arr, _ = _load_png(path, head, limits, error, palette_as_index)
    elif suffix in (".tif", ".tiff"):
        arr, _ = _load_tiff(path, head, limits, error, allow_bool)
    else:
        arr, _ = _load_npy(path, head, limits, error, allow_bool)
    if arr.size == 0:
        raise error(path, f"image is empty (zero-size array of shape {arr.shape})")
    logger.debug("read %s: shape %s dtype %s", path, arr.shape, arr.dtype)
    return arr
