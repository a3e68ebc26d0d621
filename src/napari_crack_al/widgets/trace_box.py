"""The "Crack tools" box of the Annotate panel: trace mode and erase-crack mode, as toggles.

Two checkable buttons over the session's :class:`~.trace_tools.TraceTool` (its mode is
the source of truth: the buttons follow it when the shortcuts Shift+T and Shift+X switch
it). The work happens in the tool and in the core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from . import notify
from .shortcuts import ERASE_CRACK_KEY, TRACE_KEY, tooltip_with_key

if TYPE_CHECKING:  # pragma: no cover
    from .session import AnnotationSession

__all__ = ["CrackToolsBox"]

_HINTS = {
    None: "Brush and eraser: napari's tools.",
    "trace": "Click on a crack, then further along it. Enter or double click: done; Esc: drop "
             "the previewed part; Ctrl+Z: undo a piece.",
    "erase_crack": "Click a crack segment to remove it (Ctrl+click: the whole crack); Ctrl+Z "
                   "undoes it. Accept keeps what is left.",
}


class CrackToolsBox(QGroupBox):
    """Trace / erase-crack toggles of the session's mask layer."""

    def __init__(self, session: AnnotationSession, parent: QWidget | None = None) -> None:
        super().__init__("Crack tools", parent)
        self.session = session
        self.trace_button = QPushButton("Trace")
        self.trace_button.setCheckable(True)
        self.trace_button.setToolTip(tooltip_with_key(
            "Trace a crack between clicks: the path follows the dark line and is painted at its "
            "width (the brush size where the image shows none); a trace between two pieces "
            "bridges a gap", TRACE_KEY))
        self.erase_button = QPushButton("Erase crack")
        self.erase_button.setCheckable(True)
        self.erase_button.setToolTip(tooltip_with_key(
            "Remove the crack segment under a click (Ctrl+click: the whole connected crack): keep "
            "or drop suggested cracks piece by piece", ERASE_CRACK_KEY))
        self.hint = QLabel(_HINTS[None])
        self.hint.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.trace_button)
        row.addWidget(self.erase_button)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.hint)
        self.trace_button.clicked.connect(lambda: self._toggle("trace"))
        self.erase_button.clicked.connect(lambda: self._toggle("erase_crack"))
        tool = session.trace_tool
        tool.mode_changed.connect(self._show_mode)
        self.destroyed.connect(lambda *_: tool.mode_changed.disconnect(self._show_mode,
                                                                       missing_ok=True))
        self._show_mode(tool.mode)

    def _toggle(self, mode: str) -> None:
        with notify.reporting("Crack tools"):
            self.session.trace_tool.toggle(mode)
        self._show_mode(self.session.trace_tool.mode)

    def _show_mode(self, mode: Any) -> None:
        self.trace_button.setChecked(mode == "trace")
        self.erase_button.setChecked(mode == "erase_crack")
        self.hint.setText(_HINTS.get(mode, _HINTS[None]))
