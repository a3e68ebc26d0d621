"""Reading range images (PNG 8/16-bit, TIFF, NPY) into :class:`RangeImage`.

Every problem with a user's file raises :class:`~napari_crack_al.core.errors.ImageReadError`
(or the error class a caller passes, e.g. ``MaskError``) whose message is
``"<path>: <problem>"``. Sizes are checked from the file header *before* any pixel
data is decoded, so a huge or hostile file cannot exhaust memory.

Invalid pixels (the LCMS writes 0 where the laser got no return; float data uses
NaN/inf) are flagged in :attr:`RangeImage.valid` and filled in
:attr:`RangeImage.data` with the median of the valid pixels, so no NaN ever reaches
the model.

The file-level checks and decoding (:func:`check_file`, :func:`load_array`, the
header checks) live in :mod:`.image_decode` and are re-exported here.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import ImageReadError
from .image_decode import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    SUPPORTED_IMAGE_SUFFIXES,
    check_file,
    load_array,
)

__all__ = [
    "SUPPORTED_IMAGE_SUFFIXES",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_BYTES",
    "COLOR_MODES",
    "RangeImage",
    "read_range_image",
    "range_image_from_array",
    "read_image_array",
    "load_array",
    "to_gray",
    "check_file",
    "list_images",
]

logger = logging.getLogger(__name__)

COLOR_MODES = ("luminance", "mean", "red", "green", "blue")
ColorMode = Literal["luminance", "mean", "red", "green", "blue"]
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
        from ..errors import ConfigError

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
                     max_bytes: int = DEFAULT_MAX_BYTES,
                     color: ColorMode = "luminance") -> np.ndarray:
    """Read an image as a 2-D array as stored (RGB/RGBA photographs become gray).

    Parameters
    ----------
    path : str or Path
        A ``.png``, ``.tif``, ``.tiff`` or ``.npy`` file.
    max_pixels : int
        Largest H*W accepted, checked from the header before decoding.
    max_bytes : int
        Largest decoded array accepted, in bytes, checked from the header before decoding.
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
    return to_gray(load_array(path, max_pixels=max_pixels, max_bytes=max_bytes), color)


def read_range_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                     max_bytes: int = DEFAULT_MAX_BYTES, zero_is_invalid: bool | None = None,
                     color: ColorMode = "luminance") -> RangeImage:
    """Read a range image with its validity mask.

    Parameters
    ----------
    path : str or Path
        A ``.png``, ``.tif``, ``.tiff`` or ``.npy`` file.
    max_pixels : int
        Largest H*W accepted, checked from the header before decoding.
    max_bytes : int
        Largest decoded array accepted, in bytes, checked from the header before decoding.
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
    raw = load_array(path, max_pixels=max_pixels, max_bytes=max_bytes)
    return range_image_from_array(raw, path, zero_is_invalid=zero_is_invalid, color=color)


def range_image_from_array(raw: np.ndarray, path: str | Path, *, zero_is_invalid: bool | None = None,
                           color: ColorMode = "luminance") -> RangeImage:
    """The :class:`RangeImage` of pixels read as stored (see :func:`read_range_image`).

    Raises
    ------
    ImageReadError
        Naming ``path`` when no pixel is valid.
    """
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


def _is_file(entry: os.DirEntry, folder: Path) -> bool:
    """Whether ``entry`` is a file (links followed); False, with a warning, if unknowable."""
    try:
        return entry.is_file()
    except OSError as exc:  # a symlink loop (ELOOP), a link into an unreadable folder...
        logger.warning("%s: skipping %r, which cannot be read (%s)", folder, entry.name,
                       exc.strerror or exc)
        return False


def list_images(folder: str | Path) -> list[Path]:
    """List the supported images in a folder, sorted by file name.

    Hidden files (names starting with ``.``, e.g. temporary files of atomic
    writes) and sub-folders are ignored; suffixes match case-insensitively. An
    entry that cannot be examined (a symbolic link loop, a link into an
    unreadable folder) is skipped with a warning naming it.

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
            entries = [e for e in it if not e.name.startswith(".") and _is_file(e, folder)]
    except PermissionError as exc:
        raise ImageReadError(folder, "folder is not readable (permission denied)") from exc
    except OSError as exc:
        raise ImageReadError(folder, f"folder cannot be listed ({exc.strerror or exc})") from exc
    names = sorted(e.name for e in entries
                   if Path(e.name).suffix.lower() in SUPPORTED_IMAGE_SUFFIXES)
    by_stem: dict[str, list[str]] = {}
    for n in names:
        by_stem.setdefault(Path(n).stem, []).append(n)
    clashes = {s: ns for s, ns in by_stem.items() if len(ns) > 1}
    if clashes:
        shown = "; ".join(f"{s!r} ({', '.join(ns)})" for s, ns in sorted(clashes.items()))
        raise ImageReadError(folder, f"ambiguous image name: {shown}; images pair with masks by "
                                     "file name without suffix, so keep one file per name")
    return [folder / n for n in names]
