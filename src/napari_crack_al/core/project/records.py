"""Value types of the project store: image status, image record, edit fraction.

These are plain values with no I/O, so widgets and the CLI can pass them
around freely (records are frozen dataclasses).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np

from ..errors import MaskError, ProjectError

__all__ = [
    "ImageStatus",
    "ImageRecord",
    "UnknownImageError",
    "PENDING_STATUSES",
    "edit_fraction",
    "as_bool_mask",
]


class ImageStatus(str, Enum):
    """Where an image is in the annotation workflow."""

    NEW = "new"
    SUGGESTED = "suggested"
    ANNOTATED = "annotated"
    SKIPPED = "skipped"


#: Statuses :meth:`Project.next_name` visits.
PENDING_STATUSES = (ImageStatus.NEW, ImageStatus.SUGGESTED)


@dataclass(frozen=True)
class ImageRecord:
    """The state of one image of a project.

    Attributes
    ----------
    name : str
        Image name (the file stem).
    filename : str
        File name inside ``images/``.
    status : ImageStatus
        Workflow status.
    queue_position : int
        Position in the annotation queue (0 first).
    score : float or None
        Latest active-learning score of kind ``"score"``.
    score_model_version : str or None
        Model version that produced ``score``.
    suggestion_model_version : str or None
        Model version of the suggestion the annotator started from (for an
        annotated image: the suggestion its edit fraction was measured against).
    annotation_seconds : float
        Annotation time, accumulated over every accept.
    edit_fraction : float or None
        ``changed pixels / max(1, crack pixels of the accepted mask)``; None
        until the image is accepted (or for annotations imported from files).
    updated_at : float
        Unix time of the last change of this record.
    suggestion_file_version : str or None
        Model version of the suggestion file currently on disk (may be newer
        than ``suggestion_model_version`` for an annotated image).
    missed_length, false_length : float or None
        The annotator's work in crack length (skeleton pixels, 2-px tolerance): the
        accepted cracks the suggestion missed (drawn) and the suggested cracks that
        were not cracks (erased); see :func:`~napari_crack_al.core.metrics.effort_lengths`.
        None until the image is accepted.
    """

    name: str
    filename: str
    status: ImageStatus
    queue_position: int
    score: float | None
    score_model_version: str | None
    suggestion_model_version: str | None
    annotation_seconds: float
    edit_fraction: float | None
    updated_at: float
    suggestion_file_version: str | None = None
    missed_length: float | None = None
    false_length: float | None = None

    @property
    def is_pending(self) -> bool:
        """Whether the image still waits for annotation (new or suggested)."""
        return self.status in PENDING_STATUSES


class UnknownImageError(ProjectError, KeyError):
    """An image name that the project does not know.

    It is both a :class:`~napari_crack_al.core.errors.ProjectError` (so the CLI
    and widgets report it as a one-line user error) and a :class:`KeyError`
    (so mapping-style code can catch it).
    """

    def __init__(self, path: str | Path | None, name: str) -> None:
        self.name = name
        super().__init__(path, f"no image named {name!r} in this project "
                               "(run refresh() after adding images?)")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0] if self.args else ""


def safe_component(name: str, *, where: str | Path | None = None, what: str = "image name") -> str:
    """``name`` when it is one harmless path component, else a :class:`ProjectError`.

    Names become file names (``annotations/NAME.png``, ``images/FILE``, ...). A name read
    from a crafted ``project.sqlite`` such as ``../../x`` must not make the store write
    outside the project: a name must be non-empty, not ``.`` or ``..``, and hold no path
    separator and no NUL character.

    Parameters
    ----------
    name : str
        The name (or file name).
    where : str or Path, optional
        The project (or database) named in the error.
    what : str
        Word for the error message.
    """
    text = str(name)
    if not text or text in (".", "..") or any(ch in text for ch in ("/", "\\", "\x00")):
        raise ProjectError(where, f"unsafe {what} {text!r} (must be one file name, without / or "
                                  "\\ or ..); the project database may have been edited by hand")
    return text


def as_bool_mask(mask: object, *, path: str | Path | None = None, what: str = "mask") -> np.ndarray:
    """Return ``mask`` as a 2-D bool array (True = crack).

    Bool arrays are taken as they are; integer arrays (a napari Labels layer,
    0/255 masks) are ``> 0``. Floating-point arrays are refused because a
    probability map must be thresholded on purpose, not by accident.

    Parameters
    ----------
    mask : array-like
        The mask.
    path : str or Path, optional
        File the mask is destined for, named in the error.
    what : str
        Word for the error message.

    Raises
    ------
    MaskError
        The mask is not 2-D or has a floating-point / non-numeric dtype.
    """
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise MaskError(path, f"{what} must be a 2-D array, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    if np.issubdtype(arr.dtype, np.integer):
        return arr > 0
    raise MaskError(path, f"{what} must be bool or integer labels, got dtype {arr.dtype}")


def edit_fraction(accepted: np.ndarray, suggestion: np.ndarray | None) -> float:
    """How much of an accepted mask the annotator changed.

    ``(pixels where accepted != suggestion) / max(1, crack pixels of accepted)``;
    ``suggestion=None`` means an empty suggestion, so a mask drawn from scratch
    gives exactly 1.0 and a suggestion accepted unchanged gives 0.0. Deleting
    false positives can push the value above 1.

    Parameters
    ----------
    accepted : ndarray of bool, shape (H, W)
        The accepted mask.
    suggestion : ndarray of bool, shape (H, W), or None
        The suggestion the annotator started from.

    Returns
    -------
    float
        The edit fraction (>= 0).

    Raises
    ------
    MaskError
        The two masks differ in shape.
    """
    accepted = np.asarray(accepted, dtype=bool)
    crack = int(np.count_nonzero(accepted))
    if suggestion is None:
        changed = crack
    else:
        suggestion = np.asarray(suggestion, dtype=bool)
        if suggestion.shape != accepted.shape:
            raise MaskError(None, f"suggestion shape {suggestion.shape} differs from mask shape "
                                  f"{accepted.shape}")
        changed = int(np.count_nonzero(accepted != suggestion))
    return changed / max(1, crack)
