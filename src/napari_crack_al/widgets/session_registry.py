"""One annotation session per napari viewer.

:func:`get_session` gives every dock widget of a viewer the same
:class:`~napari_crack_al.widgets.session.AnnotationSession` (made on first use
and dropped with the viewer); :func:`unwrap_viewer` finds the real viewer
behind the proxy napari hands to dock widgets. Both are re-exported by
:mod:`napari_crack_al.widgets.session`.

This module imports neither napari nor Qt.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import napari

    from .session import AnnotationSession

__all__ = ["get_session", "unwrap_viewer"]

_SESSIONS: dict[int, tuple[weakref.ref, AnnotationSession]] = {}


def get_session(viewer: napari.Viewer) -> AnnotationSession:
    """The one :class:`AnnotationSession` of ``viewer`` (created on first use).

    Sessions are keyed weakly by viewer: a closed and collected viewer drops its session.
    A ``PublicOnlyProxy`` of a viewer (what napari passes to dock widgets) gives the
    session of the viewer it wraps.
    """
    from .session import AnnotationSession  # session.py imports this module

    viewer = unwrap_viewer(viewer)
    key = id(viewer)
    entry = _SESSIONS.get(key)
    if entry is not None and entry[0]() is viewer:
        return entry[1]
    session = AnnotationSession(viewer)
    ref = weakref.ref(viewer, lambda _ref, key=key: _drop(key, _ref))
    _SESSIONS[key] = (ref, session)
    return session


def unwrap_viewer(viewer: Any) -> Any:
    """The real viewer behind napari's ``PublicOnlyProxy`` (or ``viewer`` itself)."""
    while hasattr(type(viewer), "__wrapped__"):
        viewer = viewer.__wrapped__
    return viewer


def _drop(key: int, ref: weakref.ref) -> None:
    entry = _SESSIONS.get(key)
    if entry is not None and entry[0] is ref:
        del _SESSIONS[key]
