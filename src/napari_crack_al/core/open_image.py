"""What the viewer needs to show one image of a project, prepared away from the UI thread.

Opening an image for annotation reads the range image, normalises it as the model
sees it (profile removal included), reads the mask to edit (draft, else annotation,
else suggestion) and the stored crack probability of the last model. All of it costs
time in proportion to the image (seconds for 8192 x 4096 pixels); :func:`prepare_image`
does it in one plain call, so that the napari session can run it in a worker thread and
only hand the finished arrays to its layers on the UI thread.

:func:`is_large` says which images are worth a worker: the header gives the pixel
count without decoding anything.

This module uses neither napari nor Qt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ImageReadError, InputError, ProjectError
from .io.image_header import image_pixels
from .io.range_io import read_range_image
from .normalize import display_data, resolve_profile

if TYPE_CHECKING:  # pragma: no cover
    from .project import Project

__all__ = ["PreparedImage", "UnreadableImageError", "prepare_image", "read_overlay", "is_large",
           "LARGE_IMAGE_PIXELS"]

logger = logging.getLogger(__name__)

#: Images with more pixels than this are opened (and their masks saved) in a worker thread
#: by the napari session: about 25 ms of reading and normalising on 2 CPU cores.
LARGE_IMAGE_PIXELS = 512 * 512


class UnreadableImageError(ImageReadError):
    """The image file itself cannot be read (the project marks it unreadable)."""


@dataclass(frozen=True)
class PreparedImage:
    """The arrays of the layers of one image, ready to hand to napari.

    Attributes
    ----------
    name : str
        The image.
    path : Path
        Its file.
    display : ndarray of float32, shape (H, W)
        The pixels shown: the model's normalisation (invalid pixels 0).
    limits : (float, float)
        Contrast limits of ``display``.
    valid : ndarray of bool, shape (H, W)
        Pixels that hold a measurement.
    source_dtype : str
        The pixel type of the file.
    profile : str
        The profile removal applied (``"auto"`` resolved: ``"column"``, ``"row"`` or ``"none"``).
    mask : ndarray of bool, shape (H, W)
        The mask to edit (all False for an ``"empty"`` start).
    labels : ndarray of uint8, shape (H, W)
        The same mask as the data of a napari Labels layer (1 = crack).
    source : str
        Where the mask came from: ``"draft"``, ``"annotation"``, ``"suggestion"`` or ``"empty"``.
    probability : ndarray of float32 or None
        The stored crack probability of the last model (None when there is none).
    """

    name: str
    path: Path
    display: np.ndarray
    limits: tuple[float, float]
    valid: np.ndarray
    source_dtype: str
    profile: str
    mask: np.ndarray
    labels: np.ndarray
    source: str
    probability: np.ndarray | None

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the image."""
        return tuple(self.display.shape)  # type: ignore[return-value]


def is_large(path: str | Path, limit: int = LARGE_IMAGE_PIXELS) -> bool:
    """Whether the image in ``path`` has more than ``limit`` pixels (header only).

    A file whose header cannot be read counts as small: reading it fails at once.
    """
    pixels = image_pixels(path)
    return pixels is not None and pixels > limit


def read_overlay(project: Project, name: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """The stored crack probability of ``name`` when it has the image's ``shape``, else None."""
    from .active.probability import probability_path, read_probability

    if not probability_path(project, name).is_file():
        return None
    prob = read_probability(project, name)
    if prob is not None and tuple(prob.shape) != tuple(shape):
        logger.warning("ignoring the stored probability of %s: shape %s, image %s", name,
                       prob.shape, tuple(shape))
        return None
    return prob


def prepare_image(project: Project, name: str, profile: str = "auto", *,
                  cancelled: Any = None) -> PreparedImage | None:
    """Read and normalise image ``name`` of ``project`` with its mask and probability.

    Parameters
    ----------
    project : Project
        The open project (its methods are safe to call from a worker thread).
    name : str
        The image.
    profile : {"auto", "none", "column", "row"}
        The display's normalisation profile (the model's).
    cancelled : callable, optional
        Returns True when the result is no longer wanted; checked between the steps
        (None is then returned).

    Returns
    -------
    PreparedImage or None
        None when ``cancelled()`` said so.

    Raises
    ------
    UnreadableImageError
        The image file cannot be read (its message names the file and the problem).
    InputError
        Its mask cannot be read, or it does not have the image's shape.
    """
    path = project.image_path(name)
    try:
        image = read_range_image(path)
    except InputError as exc:
        raise UnreadableImageError(exc.path, exc.problem) from exc
    if cancelled is not None and cancelled():
        return None
    display, limits = display_data(image, profile)
    if cancelled is not None and cancelled():
        return None
    mask, source = project.mask_for_editing(name)
    mask = np.zeros(image.shape, dtype=bool) if mask is None else np.asarray(mask) > 0
    if mask.shape != image.shape:
        raise ProjectError(project.root, f"mask of {name!r} has shape {mask.shape}, "
                                         f"its image {image.shape}")
    probability = read_overlay(project, name, image.shape)
    return PreparedImage(name=name, path=Path(image.path if image.path is not None else path),
                         display=display, limits=limits, valid=image.valid,
                         source_dtype=image.source_dtype, profile=resolve_profile(profile, image),
                         mask=mask, labels=mask.astype(np.uint8), source=source,
                         probability=probability)
