"""What the mask on screen is: new, suggestion, edited, draft or accepted — and where it started.

The mask layer's name (``"crack mask (edited)"``), the Annotate panel's line and the
queue's status line follow it: a paint stroke makes it *edited*, an autosave a *draft*,
an accept *accepted*, a reset to the suggestion a *suggestion* again. The model version
it started from is the one of the suggestion the annotator was shown (kept with a
draft), not the newest suggestion a retrain may have written since.
"""

from __future__ import annotations

from typing import Any

from .display import MASK_SOURCE_WORDS as STATE_WORDS

__all__ = ["mask_state", "started_from", "follow_state", "STATE_WORDS"]


def mask_state(session: Any) -> str | None:
    """``"edited"`` when the mask differs from what is saved, else the word of its source."""
    if session.current_name is None or session.mask_source is None:
        return None
    if session.is_dirty():
        return "edited"
    return STATE_WORDS.get(session.mask_source, session.mask_source)


def started_from(session: Any) -> str | None:
    """The model version of the suggestion the mask on screen was edited from (None: none)."""
    project, name = session.project, session.current_name
    if project is None or name is None:
        return None
    if session.mask_source == "draft":  # the version only: the base mask is not read
        version = project.draft_base_version(name)
        if version == "":
            return None
        if version is not None and project.draft_base_path(name).is_file():
            return version
    base = getattr(session, "loaded_base", None)
    if base is not None:
        return base.version
    record = project.record(name)
    return record.suggestion_model_version


def follow_state(session: Any) -> None:
    """Rename the mask layer after the state and tell the panels (only when it changed)."""
    layer, state = session.labels_layer, mask_state(session)
    if layer is None or state is None:
        return
    name = f"crack mask ({state})"
    if layer.name != name:
        layer.name = name
        signal = getattr(session, "mask_state_changed", None)
        if signal is not None:
            signal.emit()
