"""The compact Crack AL panel: the queue, a round status line, and Annotate / Train / Export tabs.

One dock widget that fits a 1366 x 768 laptop screen: the queue takes the height that
is left, the status line of the round in progress stays visible whatever tab is shown,
and each tab scrolls when its section is taller than the room it gets. The four
sections are the plugin's panels (each its own class, in its own file), so the separate
manifest widgets still work for users who prefer them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import QFrame, QScrollArea, QTabWidget, QVBoxLayout, QWidget

from .annotate_widget import AnnotateWidget
from .export_widget import ExportWidget
from .project_widget import ProjectWidget
from .round_status import RoundStatusLine
from .train_widget import TrainWidget

if TYPE_CHECKING:
    import napari

__all__ = ["CrackALWidget", "TAB_HEIGHT"]

#: Height of the tab area (pixels); its sections scroll inside it, the queue gets the rest.
TAB_HEIGHT = 330
#: Height of a queue row in the compact panel.
ROW_HEIGHT = 22


def _scrolled(widget: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    return area


class CrackALWidget(QWidget):
    """Queue on top, the round's status line, then the Annotate, Train and Export tabs.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer (its annotation session is shared by the sections).
    """

    def __init__(self, viewer: napari.viewer.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.queue = ProjectWidget(viewer)
        self.annotate = AnnotateWidget(viewer)
        self.train = TrainWidget(viewer)
        self.export = ExportWidget(viewer)
        self.session = self.queue.session
        self.status_line = RoundStatusLine(self.train)
        # Accept / Skip are in the Annotate tab (and on Shift+A / Shift+S): not twice on screen
        self.queue.accept_button.hide()
        self.queue.skip_button.hide()
        self.queue.table.verticalHeader().setDefaultSectionSize(ROW_HEIGHT)
        self.queue.table.setMinimumHeight(ROW_HEIGHT * 4)
        self.tabs = QTabWidget()
        for section, title in ((self.annotate, "Annotate"), (self.train, "Train"),
                               (self.export, "Export")):
            self.tabs.addTab(_scrolled(section), title)
        self.tabs.setFixedHeight(TAB_HEIGHT)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.queue, 1)
        layout.addWidget(self.status_line)
        layout.addWidget(self.tabs)

    def open_project(self, path: object) -> object:
        """Open a project (see :meth:`ProjectWidget.open_project`)."""
        return self.queue.open_project(path)
