"""Edits of the whole mask being annotated: reset to the suggestion, clear, clean up.

Each goes through the Labels layer's undo history (``data_setitem``), so Ctrl+Z undoes it
like a brush stroke. Used by the Annotate panel's buttons and by the keyboard shortcuts
(:mod:`.shortcuts`); this module has no Qt widgets.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import numpy as np

from . import notify

if TYPE_CHECKING:  # pragma: no cover
    from .session import AnnotationSession

__all__ = ["apply_mask", "reset_to_suggestion", "clear_mask", "clean_up_mask",
           "clean_up_current"]


def apply_mask(session: AnnotationSession, mask: np.ndarray) -> int:
    """Replace the mask being edited by ``mask`` as one undoable edit.

    Returns
    -------
    int
        Number of pixels changed.
    """
    layer = session.labels_layer
    if layer is None:
        raise _no_image(session)
    new = np.asarray(mask) > 0
    old = np.asarray(layer.data) > 0
    if new.shape != old.shape:
        raise ValueError(f"mask shape {new.shape} differs from the image {old.shape}")
    changed = np.nonzero(new != old)
    if changed[0].size == 0:
        return 0
    layer.data_setitem(changed, new[changed].astype(layer.data.dtype))
    return int(changed[0].size)


def _no_image(session: AnnotationSession) -> Exception:
    from ..core.errors import ProjectError

    root = session.project.root if session.project is not None else None
    return ProjectError(root, "no image is loaded" if root is not None else "no project is open")


def reset_to_suggestion(session: AnnotationSession) -> bool:
    """Put the model's suggestion back into the mask (undoable); False when there is none."""
    if session.project is None or session.current_name is None:
        raise _no_image(session)
    name = session.current_name
    suggestion = session.project.read_suggestion(name)
    if suggestion is None:
        notify.info(f"{name} has no suggestion yet: retrain to get one.")
        return False
    version = session.project.record(name).suggestion_file_version
    apply_mask(session, suggestion)
    session.restart_from_suggestion(suggestion, version)
    return True


def clear_mask(session: AnnotationSession) -> int:
    """Erase the whole mask (undoable); returns the number of pixels cleared."""
    mask = session.current_mask()
    if mask is None:
        raise _no_image(session)
    return apply_mask(session, np.zeros_like(mask))


def _small_size_kwargs(func: Any, area: int) -> dict[str, int]:
    """``max_size`` (scikit-image >= 0.26, inclusive) or ``min_size`` (older, exclusive)."""
    if "max_size" in inspect.signature(func).parameters:
        return {"max_size": max(0, int(area) - 1)}
    return {"min_size": int(area)}


def clean_up_mask(mask: np.ndarray, *, speck_area: int = 10, hole_area: int = 10) -> np.ndarray:
    """Remove crack pieces smaller than ``speck_area`` px and fill holes smaller than ``hole_area`` px.

    Crack pieces are 8-connected (a diagonal crack is one piece); holes are
    4-connected background regions. Sizes of 0 or 1 switch a step off.

    Returns
    -------
    ndarray of bool
    """
    from skimage.morphology import remove_small_holes, remove_small_objects

    out = np.asarray(mask) > 0
    if speck_area > 1:
        out = remove_small_objects(out, connectivity=2, **_small_size_kwargs(remove_small_objects, speck_area))
    if hole_area > 1:
        if "max_size" in inspect.signature(remove_small_holes).parameters:
            out = remove_small_holes(out, connectivity=1, max_size=int(hole_area) - 1)
        else:  # pragma: no cover - scikit-image < 0.26
            out = remove_small_holes(out, area_threshold=int(hole_area), connectivity=1)
    return out


def clean_up_current(session: AnnotationSession) -> int:
    """Clean up the mask being edited with the session's sizes (undoable); returns pixels changed."""
    mask = session.current_mask()
    if mask is None:
        raise _no_image(session)
    return apply_mask(session, clean_up_mask(mask, speck_area=session.speck_area,
                                             hole_area=session.hole_area))
