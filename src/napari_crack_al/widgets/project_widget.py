"""The "Crack project" dock widget: open a project, see the queue, accept or skip.

The widget is thin: every action calls the viewer's
:class:`~napari_crack_al.widgets.session.AnnotationSession`, and errors about
user data become napari notifications (the widget stays usable).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from . import notify
from .mask_state import mask_state
from .session import AnnotationSession, get_session, unwrap_viewer
from .shortcuts import ACCEPT_KEY, SKIP_KEY, bind_shortcuts, tooltip_with_key

if TYPE_CHECKING:  # pragma: no cover
    import napari.viewer

    from ..core.project import Project

__all__ = ["ProjectWidget", "ACCEPT_KEY", "SKIP_KEY", "bind_keys"]

_COLUMNS = ("Name", "Status", "Score")
#: How the queue is ordered, shown on the Score column's header.
_ORDER_TEXT = ("The queue is in the order of the last round's strategy. Score: the model's uncertainty "
               "about the image (mean crack entropy; higher = more to learn). The default hybrid strategy "
               "picks uncertain images that are also unlike each other and unlike the annotated ones, so the "
               "order is not sorted by score alone.")


def _rank_text(rank: int, score: float | None) -> str:
    """Tooltip of a waiting image's row: its place in the queue and what its score means."""
    text = f"#{rank} of the images waiting"
    if score is not None:
        text += f"; uncertainty score {score:.3f}"
    return text + ". " + _ORDER_TEXT


def bind_keys(viewer: napari.viewer.Viewer) -> None:
    """Bind the plugin's keys (Shift+A accept & next, Shift+S skip, ...; see :mod:`.shortcuts`)."""
    bind_shortcuts(viewer)


class ProjectWidget(QWidget):
    """Dock widget: open or create a project, browse its queue, accept or skip images.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer (napari passes it when the widget is added from the manifest).
    """

    def __init__(self, viewer: napari.viewer.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = unwrap_viewer(viewer)
        self.session: AnnotationSession = get_session(self.viewer)

        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("project folder (holds images/)")
        self.path_edit.setToolTip("A crack project, or a folder with an images/ sub-folder to create one")
        self.path_edit.returnPressed.connect(self._open)
        self.browse_button = QToolButton()
        self.browse_button.setText("…")
        self.browse_button.setToolTip("Choose a folder")
        self.browse_button.clicked.connect(self._browse)
        self.open_button = QPushButton("Open")
        self.open_button.setToolTip("Open the crack project in this folder")
        self.open_button.clicked.connect(self._open)
        self.create_button = QPushButton("Create from folder")
        self.create_button.setToolTip("Make a crack project of a folder whose images/ holds range images "
                                      "(opens it when it already is one)")
        self.create_button.clicked.connect(self._create)

        self.table = QTableWidget(0, len(_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(_COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setToolTip("Images in queue order; click one to open it")
        self.table.horizontalHeaderItem(2).setToolTip(_ORDER_TEXT)
        self.table.cellClicked.connect(self._on_row_clicked)

        self.accept_button = QPushButton("Accept && next")
        self.accept_button.setToolTip(tooltip_with_key("Save this mask as the annotation and open the next "
                                                       "image", ACCEPT_KEY))
        self.accept_button.clicked.connect(self.accept_and_next)
        self.skip_button = QPushButton("Skip")
        self.skip_button.setToolTip(tooltip_with_key("Skip this image (your edits are kept as a draft) and "
                                                     "open the next one", SKIP_KEY))
        self.skip_button.clicked.connect(self.skip_and_next)
        self.status_label = QLabel("No project open")
        self.status_label.setWordWrap(True)

        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(self.browse_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.create_button)
        actions = QHBoxLayout()
        actions.addWidget(self.accept_button)
        actions.addWidget(self.skip_button)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        layout.addLayout(actions)
        layout.addWidget(self.status_label)

        bind_keys(self.viewer)
        session = self.session
        slots = ((session.project_changed, self._on_project_changed),
                 (session.image_loaded, self._on_image_loaded),
                 (session.queue_changed, self.refresh_queue),
                 (session.mask_state_changed, self._update_status))
        for signal, slot in slots:
            signal.connect(slot)

        def _disconnect(*_: Any) -> None:
            for signal, slot in slots:
                signal.disconnect(slot, missing_ok=True)

        self.destroyed.connect(_disconnect)
        self._on_project_changed(session.project)
        if session.current_name is not None:
            self._on_image_loaded(session.current_name)

    # ------------------------------------------------------------------ actions
    def open_project(self, path: str | Path, create: bool = False) -> Project | None:
        """Open (or create) the project at ``path``; errors become notifications."""
        self.path_edit.setText(str(path))
        with notify.reporting("Create project" if create else "Open project"):
            return self.session.open_project(path, create=create)
        return None

    def accept_and_next(self) -> None:
        """Accept the current mask and open the next image."""
        with notify.reporting("Accept"):
            self.session.accept_and_next()

    def skip_and_next(self) -> None:
        """Skip the current image and open the next one."""
        with notify.reporting("Skip"):
            self.session.skip_and_next()

    def load(self, name: str) -> None:
        """Open image ``name`` of the queue."""
        with notify.reporting(f"Open image {name!r}"):
            self.session.load(name)
        self._select_current()

    # ------------------------------------------------------------------ slots
    def _path(self) -> str | None:
        text = self.path_edit.text().strip()
        if not text:
            notify.warning("Type or choose a project folder first.")
            return None
        return text

    def _open(self) -> None:
        path = self._path()
        if path is not None:
            self.open_project(path)

    def _create(self) -> None:
        path = self._path()
        if path is not None:
            self.open_project(path, create=True)

    def _browse(self) -> None:
        start = self.path_edit.text().strip() or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Choose a project folder", start)
        if folder:
            self.path_edit.setText(folder)

    def _on_row_clicked(self, row: int, _column: int = 0) -> None:
        item = self.table.item(row, 0)
        if item is not None:
            self.load(item.text())

    def _on_project_changed(self, project: Project | None) -> None:
        if project is not None:
            self.path_edit.setText(str(project.root))
        self.refresh_queue()

    def _on_image_loaded(self, _name: str) -> None:
        self._select_current()
        self._update_status()

    def refresh_queue(self) -> None:
        """Refill the queue table from the project (queue order)."""
        project = self.session.project
        records = project.records() if project is not None else []
        unreadable = project.unreadable() if project is not None else {}
        self.table.setRowCount(len(records))
        rank = 0
        for i, rec in enumerate(records):
            status = getattr(rec.status, "value", rec.status)
            if rec.name in unreadable and status in ("new", "suggested"):
                status = "unreadable"
            waiting = status in ("new", "suggested")
            rank += waiting
            score = "" if rec.score is None else f"{rec.score:.3f}"
            for col, text in enumerate((rec.name, str(status), score)):
                item = QTableWidgetItem(text)
                if col == 2:
                    item.setTextAlignment(int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter))
                if waiting:
                    item.setToolTip(_rank_text(rank, rec.score))
                if rec.name in unreadable:
                    item.setToolTip(f"{rec.filename}: {unreadable[rec.name]} (replace or repair the file, "
                                    "then click the image to open it)")
                self.table.setItem(i, col, item)
        self._select_current()
        self._update_status()

    def _select_current(self) -> None:
        name = self.session.current_name
        self.table.blockSignals(True)
        try:
            self.table.clearSelection()
            for row in range(self.table.rowCount()):
                item = self.table.item(row, 0)
                if item is not None and item.text() == name:
                    self.table.selectRow(row)
                    self.table.scrollToItem(item)
                    break
        finally:
            self.table.blockSignals(False)

    def _update_status(self) -> None:
        session = self.session
        has_image = session.project is not None and session.current_name is not None
        self.accept_button.setEnabled(has_image)
        self.skip_button.setEnabled(has_image)
        if session.project is None:
            self.status_label.setText("No project open")
            return
        counts = session.counts()
        text = f"{counts['annotated']} / {counts['total']} annotated"
        if counts["skipped"]:
            text += f", {counts['skipped']} skipped"
        if session.current_name is not None:
            text += f" — {session.current_name} ({mask_state(session)} mask)"
        self.status_label.setText(text)
