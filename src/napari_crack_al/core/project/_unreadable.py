"""Images of a project that cannot be read: marked with the reason, until the file changes.

An image whose file is corrupt, truncated or not an image is marked *unreadable* (the
meta value ``"unreadable"``: name -> reason and the file's size and modification time).
The queue shows the mark, the annotation panel passes such an image without raising
the same error again, and a round does not try to score it. The mark holds only while
the file is the same: replace or repair the file and the image is back in the queue.
:class:`UnreadableMixin` is mixed into :class:`~napari_crack_al.core.project.store.Project`.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ["UnreadableMixin", "UNREADABLE_META"]

logger = logging.getLogger(__name__)

#: Meta key of the unreadable marks.
UNREADABLE_META = "unreadable"


def _stamp(path: Path) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [int(st.st_size), int(st.st_mtime_ns)]


class UnreadableMixin:
    """Unreadable marks of a :class:`Project` (mixed into it)."""

    # provided by Project
    read_only: bool
    image_path: Callable[..., Path]
    get_meta: Callable[..., Any]
    set_meta: Callable[[str, Any], None]

    def mark_unreadable(self, name: str, reason: str) -> None:
        """Mark ``name`` unreadable for ``reason`` (while its file stays as it is now)."""
        if self.read_only:
            return
        marks = dict(self.get_meta(UNREADABLE_META, {}, kind=dict))
        marks[name] = {"reason": str(reason), "file": _stamp(self.image_path(name))}
        self.set_meta(UNREADABLE_META, marks)
        logger.warning("image %s marked unreadable: %s", name, reason)

    def unreadable(self) -> dict[str, str]:
        """Images marked unreadable whose file has not changed since: name -> reason."""
        marks = self.get_meta(UNREADABLE_META, {}, kind=dict)
        out: dict[str, str] = {}
        for name, mark in marks.items():
            if not isinstance(mark, dict):
                continue
            try:
                same = _stamp(self.image_path(name)) == mark.get("file")
            except Exception:  # noqa: BLE001 - an image removed from the project: not shown
                continue
            if same:
                out[name] = str(mark.get("reason", "unreadable"))
        return out

    def clear_unreadable(self, name: str) -> None:
        """Remove the mark of ``name`` (it was read after all)."""
        marks = self.get_meta(UNREADABLE_META, {}, kind=dict)
        if name in marks and not self.read_only:
            self.set_meta(UNREADABLE_META, {k: v for k, v in marks.items() if k != name})
