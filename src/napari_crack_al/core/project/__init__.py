"""The project store: images, accepted masks, suggestions, drafts, scores and models of one folder.

See ``docs/storage.md`` for the on-disk format and why it is SQLite in WAL mode.
"""

from __future__ import annotations

from ._drafts import DraftBase
from .records import ImageRecord, ImageStatus, UnknownImageError, edit_fraction
from .schema import SCHEMA_VERSION
from .store import Project

__all__ = ["Project", "DraftBase", "ImageStatus", "ImageRecord", "UnknownImageError", "edit_fraction",
           "SCHEMA_VERSION"]
