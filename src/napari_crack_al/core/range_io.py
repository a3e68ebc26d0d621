"""Reading range images (PNG 8/16-bit, TIFF, NPY) into :class:`RangeImage`.

Every problem with a user's file raises :class:`~napari_crack_al.core.errors.ImageReadError`
(or the error class a caller passes, e.g. ``MaskError``) whose message is
``"<path>: <problem>"``. Sizes are checked from the file header *before* any pixel
data is decoded, so a huge or hostile file cannot exhaust memory.

Invalid pixels (the LCMS writes 0 where the laser got no return; float data uses
NaN/inf) are flagged in :attr:`RangeImage.valid` and filled in
:attr:`RangeImage.data` with the median of the valid pixels, so no NaN ever reaches
the model.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from .errors import ImageReadError, InputError

__all__ = [
    "SUPPORTED_IMAGE_SUFFIXES",
    "DEFAULT_MAX_PIXELS",
    "COLOR_MODES",
    "RangeImage",
    "read_range_image",
    "read_image_array",
    "load_array",
    "to_gray",
    "check_file",
    "list_images",
]

logger = logging.getLogger(__name__)

SUPPORTED_IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".npy")
DEFAULT_MAX_PIXELS = 20_000 * 20_000
COLOR_MODES = ("luminance", "mean", "red", "green", "blue")
ColorMode = Literal["luminance", "mean", "red", "green", "blue"]

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_NPY_MAGIC = b"\x93NUMPY"
_LUMINANCE = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601


@dataclass(frozen=True)
class RangeImage:
    """A range image in memory.

    Attributes
    ----------
    data : np.ndarray
        float32 (H, W); invalid pixels are filled with the median of the valid ones.
    valid : np.ndarray
        bool (H, W); False where the sensor gave no measurement (0, NaN, inf).
    path : Path or None
        The file it was read from.
    source_dtype : str
        The pixel type stored in the file (``"uint16"``, ``"float32"``...).
    channels : int
        Channels stored in the file (3 or 4 for photographs converted to gray).
    """

    data: np.ndarray
    valid: np.ndarray
    path: Path | None
    source_dtype: str
    channels: int = 1

    def __post_init__(self) -> None:
        if self.data.ndim != 2 or self.data.shape != self.valid.shape:
            raise ValueError(
                f"RangeImage needs 2-D data and valid of the same shape, got "
                f"{self.data.shape} and {self.valid.shape}"
            )

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W)."""
        return (int(self.data.shape[0]), int(self.data.shape[1]))

    @property
    def name(self) -> str:
        """The image name (file stem), ``""`` without a path."""
        return self.path.stem if self.path is not None else ""

    @property
    def valid_fraction(self) -> float:
        """Fraction of valid pixels."""
        return float(np.count_nonzero(self.valid)) / max(1, self.valid.size)


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
def _load_png(path: Path, head: bytes, max_pixels: int, error: type[InputError],
              palette_as_index: bool) -> tuple[np.ndarray, str]:
    from PIL import Image

    if not head.startswith(_PNG_MAGIC):
        raise error(path, "not a valid PNG file (the PNG signature is missing)")
    if head[12:16] == b"IHDR" and len(head) >= 24:
        w = int.from_bytes(head[16:20], "big")
        h = int.from_bytes(head[20:24], "big")
        _check_size(h, w, max_pixels, path, error)
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
        except MemoryError as exc:
            raise error(path, f"not enough memory to read the image ({h} x {w})") from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise error(path, f"PNG file is truncated or corrupt ({exc})") from exc
    if arr.dtype == np.int32 and head[24:26] == b"\x10\x00":
        arr = arr.astype(np.uint16)  # older Pillow opens 16-bit gray PNG as 32-bit "I"
    layout = "last" if arr.ndim == 3 else "2d"
    return _to_hwc(arr, layout), arr.dtype.name


def _load_tiff(path: Path, head: bytes, max_pixels: int, error: type[InputError],
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
        _check_size(h, w, max_pixels, path, error)
        try:
            arr = page.asarray()
        except MemoryError as exc:
            raise error(path, f"not enough memory to read the image ({h} x {w})") from exc
        except Exception as exc:
            if "imagecodecs" in str(exc):
                raise error(path, f"TIFF compression {page.compression.name} cannot be decoded "
                                  "here (it needs the imagecodecs package)") from exc
            raise error(path, f"TIFF file is truncated or corrupt ({exc})") from exc
    if tuple(arr.shape) != shape:
        raise error(path, f"TIFF file is truncated or corrupt (got {arr.shape}, "
                          f"header says {shape})")
    return _to_hwc(arr, layout), np.dtype(dtype).name


def _read_npy_header(path: Path, error: type[InputError]) -> tuple[tuple[int, ...], bool, np.dtype]:
    fmt = np.lib.format
    try:
        with open(path, "rb") as fh:
            version = fmt.read_magic(fh)
            if version == (1, 0):
                return fmt.read_array_header_1_0(fh)
            if version == (2, 0):
                return fmt.read_array_header_2_0(fh)
            return fmt._read_array_header(fh, version)  # 3.0: utf-8 header
    except PermissionError as exc:
        raise error(path, "file is not readable (permission denied)") from exc
    except Exception as exc:
        logger.debug("NPY header of %s: %r", path, exc)
        raise error(path, "not a valid NPY file (the header cannot be parsed)") from exc


def _load_npy(path: Path, head: bytes, max_pixels: int, error: type[InputError],
              allow_bool: bool) -> tuple[np.ndarray, str]:
    if not head.startswith(_NPY_MAGIC):
        raise error(path, "not a valid NPY file (the NPY signature is missing)")
    shape, _fortran, dtype = _read_npy_header(path, error)
    dtype = np.dtype(dtype)
    _check_dtype(dtype, path, error, allow_bool)
    h, w, layout = _layout(tuple(shape), path, error)
    _check_size(h, w, max_pixels, path, error)
    try:
        mm = np.load(path, mmap_mode="r", allow_pickle=False)
        arr = np.array(mm)
        del mm
    except MemoryError as exc:
        raise error(path, f"not enough memory to read the image ({h} x {w})") from exc
    except ValueError as exc:
        if "larger than" in str(exc) or "greater than" in str(exc):
            raise error(path, f"NPY file is truncated ({exc})") from exc
        raise error(path, f"not a valid NPY file ({exc})") from exc
    except OSError as exc:
        raise error(path, f"NPY file is truncated or corrupt ({exc})") from exc
    return _to_hwc(arr, layout), dtype.name


def load_array(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS,
               error: type[InputError] = ImageReadError, allow_bool: bool = False,
               palette_as_index: bool = False) -> np.ndarray:
    """Read the pixels of a PNG, TIFF or NPY file as stored.

    Parameters
    ----------
    path : str or Path
        The file.
    max_pixels : int
        Largest H*W accepted, checked from the header before decoding.
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
    if suffix == ".png":
        arr, _ = _load_png(path, head, max_pixels, error, palette_as_index)
    elif suffix in (".tif", ".tiff"):
        arr, _ = _load_tiff(path, head, max_pixels, error, allow_bool)
    else:
        arr, _ = _load_npy(path, head, max_pixels, error, allow_bool)
    if arr.size == 0:
        raise error(path, f"image is empty (zero-size array of shape {arr.shape})")
    logger.debug("read %s: shape %s dtype %s", path, arr.shape, arr.dtype)
    return arr


def to_gray(arr: np.ndarray, color: ColorMode = "luminance") -> np.ndarray:
    """Reduce an (H, W, C) array to one channel (2-D arrays are returned unchanged).

    Parameters
    ----------
    arr : np.ndarray
        (H, W) or (H, W, C); C == 2 is gray + alpha, C == 4 is RGBA (alpha ignored).
    color : {"luminance", "mean", "red", "green", "blue"}
        How colour is reduced: ITU-R BT.601 luminance by default.

    Returns
    -------
    np.ndarray
        (H, W); float32 when channels were combined.
    """
    if color not in COLOR_MODES:
        from .errors import ConfigError

        raise ConfigError(f"color must be one of {', '.join(COLOR_MODES)}; got {color!r}")
    if arr.ndim == 2:
        return arr
    if arr.shape[-1] < 3:
        return arr[..., 0]
    rgb = arr[..., :3]
    if color in ("red", "green", "blue"):
        return np.ascontiguousarray(rgb[..., ("red", "green", "blue").index(color)])
    weights = _LUMINANCE if color == "luminance" else np.full(3, 1 / 3, dtype=np.float32)
    return (rgb.astype(np.float32) @ weights).astype(np.float32)


def read_image_array(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                     color: ColorMode = "luminance") -> np.ndarray:
    """Read an image as a 2-D array as stored (RGB/RGBA photographs become gray).

    Parameters
    ----------
    path : str or Path
        A ``.png``, ``.tif``, ``.tiff`` or ``.npy`` file.
    max_pixels : int
        Largest H*W accepted, checked from the header before decoding.
    color : {"luminance", "mean", "red", "green", "blue"}
        How colour photographs are reduced to one channel.

    Returns
    -------
    np.ndarray
        2-D; the stored dtype for one-channel images, float32 for converted colour.

    Raises
    ------
    ImageReadError
        Naming the file and the problem.
    """
    return to_gray(load_array(path, max_pixels=max_pixels), color)


def read_range_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                     zero_is_invalid: bool | None = None,
                     color: ColorMode = "luminance") -> RangeImage:
    """Read a range image with its validity mask.

    Parameters
    ----------
    path : str or Path
        A ``.png``, ``.tif``, ``.tiff`` or ``.npy`` file.
    max_pixels : int
        Largest H*W accepted, checked from the header before decoding.
    zero_is_invalid : bool or None
        Whether 0 means "no measurement". None: True for single-channel integer
        images (LCMS), False for colour photographs and float data (NaN/inf are
        always invalid).
    color : {"luminance", "mean", "red", "green", "blue"}
        How colour photographs are reduced to one channel.

    Returns
    -------
    RangeImage
        float32 data with invalid pixels filled by the median of the valid ones.

    Raises
    ------
    ImageReadError
        Naming the file and the problem (also when no pixel is valid).
    """
    raw = load_array(path, max_pixels=max_pixels)
    channels = 1 if raw.ndim == 2 else int(raw.shape[-1])
    if zero_is_invalid is None:
        zero_is_invalid = channels == 1 and raw.dtype.kind in "ui"
    with np.errstate(over="ignore", invalid="ignore"):  # float64 beyond float32 -> inf -> invalid
        data = np.array(to_gray(raw, color), dtype=np.float32, copy=True)
    valid = np.isfinite(data)
    if zero_is_invalid:
        valid &= data != 0
    n_valid = int(np.count_nonzero(valid))
    if n_valid == 0:
        what = "all zero, NaN or inf" if zero_is_invalid else "all NaN or inf"
        raise ImageReadError(path, f"image has no valid pixels ({what})")
    if n_valid < data.size:
        data[~valid] = np.median(data[valid])
    logger.debug("range image %s: %s %s, %.1f%% valid", path, data.shape, raw.dtype,
                 100.0 * n_valid / data.size)
    return RangeImage(data=data, valid=valid, path=Path(path), source_dtype=raw.dtype.name,
                      channels=channels)


def list_images(folder: str | Path) -> list[Path]:
    """List the supported images in a folder, sorted by file name.

    Hidden files (names starting with ``.``, e.g. temporary files of atomic
    writes) and sub-folders are ignored; suffixes match case-insensitively.

    Parameters
    ----------
    folder : str or Path
        The folder.

    Returns
    -------
    list of Path

    Raises
    ------
    ImageReadError
        The folder is missing, not a folder or unreadable, or two files share a
        stem (images pair with masks by stem, so the name would be ambiguous).
    """
    folder = Path(folder)
    if not folder.exists():
        raise ImageReadError(folder, "folder does not exist")
    if not folder.is_dir():
        raise ImageReadError(folder, "is a file, not a folder")
    try:
        with os.scandir(folder) as it:
            entries = [(e.name, e.is_file()) for e in it]
    except PermissionError as exc:
        raise ImageReadError(folder, "folder is not readable (permission denied)") from exc
    except OSError as exc:
        raise ImageReadError(folder, f"folder cannot be listed ({exc.strerror or exc})") from exc
    names = sorted(n for n, is_file in entries if is_file and not n.startswith(".")
                   and Path(n).suffix.lower() in SUPPORTED_IMAGE_SUFFIXES)
    by_stem: dict[str, list[str]] = {}
    for n in names:
        by_stem.setdefault(Path(n).stem, []).append(n)
    clashes = {s: ns for s, ns in by_stem.items() if len(ns) > 1}
    if clashes:
        shown = "; ".join(f"{s!r} ({', '.join(ns)})" for s, ns in sorted(clashes.items()))
        raise ImageReadError(folder, f"ambiguous image name: {shown}; images pair with masks by "
                                     "file name without suffix, so keep one file per name")
    return [folder / n for n in names]
