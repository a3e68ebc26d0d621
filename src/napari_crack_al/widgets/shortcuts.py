"""Keyboard shortcuts of the annotation loop (bound in the viewer's keymap).

Every shortcut is Shift + a letter: napari's Labels layer uses plain letters and
digits for its tools (1/E erase, 2/P paint, 4/F fill, ``[`` and ``]`` brush size,
Ctrl+Z undo), and none of these Shift combinations. The keys work while the
canvas has focus, whichever dock widget is open; they act on the viewer's
:class:`~napari_crack_al.widgets.session.AnnotationSession`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import notify
from .session import get_session, unwrap_viewer

__all__ = ["Shortcut", "SHORTCUTS", "NAPARI_KEYS", "bind_shortcuts", "key_text", "tooltip_with_key",
           "ACCEPT_KEY", "SKIP_KEY", "NEXT_KEY", "RETRAIN_KEY", "OVERLAY_KEY", "RESET_KEY", "CLEAR_KEY",
           "CLEANUP_KEY", "TRACE_KEY", "ERASE_CRACK_KEY"]

logger = logging.getLogger(__name__)

ACCEPT_KEY = "Shift-A"
SKIP_KEY = "Shift-S"
NEXT_KEY = "Shift-N"
RETRAIN_KEY = "Shift-R"
OVERLAY_KEY = "Shift-O"
RESET_KEY = "Shift-U"
CLEAR_KEY = "Shift-C"
CLEANUP_KEY = "Shift-K"
TRACE_KEY = "Shift-T"
ERASE_CRACK_KEY = "Shift-X"


@dataclass(frozen=True)
class Shortcut:
    """One key of the annotation loop."""

    key: str  # napari key-binding syntax, e.g. "Shift-A"
    action: str  # what it does, in words
    handler: Callable[[Any], None]


def key_text(key: str) -> str:
    """``"Shift-A"`` -> ``"Shift+A"`` (as written in tooltips and the user guide)."""
    return key.replace("-", "+")


def tooltip_with_key(text: str, key: str) -> str:
    """A tooltip that ends with its shortcut, e.g. ``"Accept ... (Shift+A)"``."""
    return f"{text} ({key_text(key)})"


def _run(action: str, func: Callable[[Any], Any]) -> Callable[[Any], None]:
    def handler(viewer: Any) -> None:
        with notify.reporting(action):
            func(get_session(viewer))

    handler.__name__ = f"crack_al_{action.lower().replace(' ', '_').replace('&', 'and')}"
    handler.__doc__ = action
    return handler


def _reset(session: Any) -> None:
    from .mask_actions import reset_to_suggestion

    reset_to_suggestion(session)


def _clear(session: Any) -> None:
    from .mask_actions import clear_mask

    clear_mask(session)


def _cleanup(session: Any) -> None:
    from .mask_actions import clean_up_current

    clean_up_current(session)


#: The plugin's keys, in the order of the user guide's table.
SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut(ACCEPT_KEY, "Accept the mask and open the next image", _run("Accept", lambda s: s.accept_and_next())),
    Shortcut(SKIP_KEY, "Skip the image (edits kept as a draft) and open the next one",
             _run("Skip", lambda s: s.skip_and_next())),
    Shortcut(NEXT_KEY, "Open the top of the queue (the next suggestion)",
             _run("Next suggestion", lambda s: s.open_next_suggestion())),
    Shortcut(RETRAIN_KEY, "Retrain & suggest next (Train panel)", _run("Retrain", lambda s: s.request_retrain())),
    Shortcut(OVERLAY_KEY, "Show or hide the crack probability overlay",
             _run("Overlay", lambda s: s.toggle_overlay())),
    Shortcut(RESET_KEY, "Reset the mask to the model's suggestion", _run("Reset to suggestion", _reset)),
    Shortcut(CLEAR_KEY, "Clear the mask", _run("Clear", _clear)),
    Shortcut(CLEANUP_KEY, "Clean up: remove specks, fill small holes", _run("Clean up", _cleanup)),
    Shortcut(TRACE_KEY, "Trace mode on/off: click along a crack, Enter or double click ends it, Esc "
             "drops the previewed part", _run("Trace", lambda s: s.trace_tool.toggle("trace"))),
    Shortcut(ERASE_CRACK_KEY, "Erase-crack mode on/off: a click removes the crack segment under it, "
             "Ctrl+click the whole crack", _run("Erase crack", lambda s: s.trace_tool.toggle("erase_crack"))),
)

#: napari's own keys that matter while annotating (not re-bound by the plugin).
NAPARI_KEYS: tuple[tuple[str, str], ...] = (
    ("[ / ]", "Smaller / larger brush"),
    ("2 or P / 1 or E / 4 or F", "Paint / erase / fill"),
    ("Ctrl+Z / Ctrl+Shift+Z", "Undo / redo (also undoes Reset, Clear and Clean up)"),
    ("Space (hold)", "Pan and zoom while painting"),
)


def bind_shortcuts(viewer: Any) -> list[str]:
    """Bind the keys of :data:`SHORTCUTS` in the viewer's keymap (idempotent).

    A key the viewer already binds to something else (a user's or another plugin's
    binding) is left as it is; the plugin's action stays on its button.

    Returns
    -------
    list of str
        The keys left to their existing binding.
    """
    from napari.utils.key_bindings import coerce_keybinding

    viewer = unwrap_viewer(viewer)
    taken: list[str] = []
    for shortcut in SHORTCUTS:
        existing = viewer.keymap.get(coerce_keybinding(shortcut.key))
        if existing is shortcut.handler:
            continue
        if existing is not None:
            taken.append(shortcut.key)
            logger.warning("%s is already bound in this viewer: left as it is (the plugin's "
                           "'%s' stays on its button)", shortcut.key, shortcut.action)
            continue
        viewer.bind_key(shortcut.key, shortcut.handler)
    return taken
