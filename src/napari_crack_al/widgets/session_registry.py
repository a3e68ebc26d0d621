"""One annotation session per napari viewer.

:func:`registered` and :func:`register` keep each viewer's session, keyed weakly (a
closed and collected viewer drops its session); :func:`unwrap_viewer` finds the real
viewer behind the proxy napari hands to dock widgets.
:func:`~napari_crack_al.widgets.session.get_session` builds on them.

This module imports neither napari nor Qt.
"""

from __future__ import annotations

import weakref
from typing import Any

__all__ = ["registered", "register", "unwrap_viewer"]

_SESSIONS: dict[int, tuple[weakref.ref, Any]] = {}


def registered(viewer: Any) -> Any | None:
    """The session stored for ``viewer`` (already unwrapped), or None."""
    entry = _SESSIONS.get(id(viewer))
    if entry is not None and entry[0]() is viewer:
        return entry[1]
    return None


def register(viewer: Any, session: Any) -> None:
    """Store ``session`` for ``viewer`` (already unwrapped), dropped with the viewer."""
    key = id(viewer)
    ref = weakref.ref(viewer, lambda _ref, key=key: _drop(key, _ref))
    _SESSIONS[key] = (ref, session)


def unwrap_viewer(viewer: Any) -> Any:
    """The real viewer behind napari's ``PublicOnlyProxy`` (or ``viewer`` itself)."""
    while hasattr(type(viewer), "__wrapped__"):
        viewer = viewer.__wrapped__
    return viewer


def _drop(key: int, ref: weakref.ref) -> None:
    entry = _SESSIONS.get(key)
    if entry is not None and entry[0] is ref:
        del _SESSIONS[key]
