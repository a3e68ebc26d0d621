"""The "Crack project" panel takes over a project that napari's reader opened.

The npe2 reader only returns layer data: a project folder gives its first queued image
and mask, both naming the folder in ``metadata[READER_PROJECT_KEY]``. A viewer's
:class:`~napari_crack_al.widgets.session.AnnotationSession` (made by the plugin's
panels) watches the layer list: when such layers arrive, or are already there when the
panel opens, it removes them and opens the project itself (queue, drafts, suggestions),
once the reader has added all its layers. An error is a notification; napari stays up.
"""

from __future__ import annotations

import logging
import weakref
from pathlib import Path
from typing import Any

__all__ = ["READER_PROJECT_KEY", "ReaderHandoff", "reader_project"]

logger = logging.getLogger(__name__)

#: Layer metadata key naming the project folder a layer was read from (set by the reader).
READER_PROJECT_KEY = "crack_al_reader_project"


def reader_project(layer: Any) -> Path | None:
    """The project folder a layer was read from by the plugin's reader, or None."""
    meta = getattr(layer, "metadata", None)
    value = meta.get(READER_PROJECT_KEY) if isinstance(meta, dict) else None
    return Path(value) if value else None


class ReaderHandoff:
    """Hands projects read by napari's reader to an annotation session.

    Parameters
    ----------
    session : AnnotationSession
        Opens the project (``session.open_project(root)``).
    viewer : napari.Viewer
        The viewer whose layer list is watched.
    """

    def __init__(self, session: Any, viewer: Any) -> None:
        self._session_ref = weakref.ref(session)
        self._viewer_ref = weakref.ref(viewer)
        self._pending: Path | None = None
        viewer.layers.events.inserted.connect(self._on_inserted)
        for layer in list(viewer.layers):
            self._consider(layer)

    def _on_inserted(self, event: Any) -> None:
        self._consider(event.value)

    def _consider(self, layer: Any) -> None:
        root = reader_project(layer)
        if root is None or self._pending is not None:
            return
        self._pending = root
        from qtpy.QtCore import QTimer

        QTimer.singleShot(0, self.adopt)  # after the reader has added all its layers

    def adopt(self) -> None:
        """Replace the reader's layers of the pending project by the session's own."""
        root, self._pending = self._pending, None
        viewer, session = self._viewer_ref(), self._session_ref()
        if root is None or viewer is None or session is None:
            return
        for layer in [layer for layer in viewer.layers if reader_project(layer) == root]:
            viewer.layers.remove(layer)
        from . import notify

        with notify.reporting(f"open the project {root}"):
            session.open_project(root)
            logger.info("the Crack project panel took over %s from napari's reader", root)
