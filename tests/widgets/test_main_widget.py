"""The compact Crack AL panel through the manifest: fits a laptop screen, the queue gets the room."""

from __future__ import annotations

from napari_crack_al.core.project import Project
from napari_crack_al.core.sample_project import write_sample_images
from napari_crack_al.widgets.main_widget import CrackALWidget
from napari_crack_al.widgets.round_status import eta_text

PLUGIN = "napari-crack-al"


def test_compact_panel_fits_1366x768_and_shows_the_queue(make_napari_viewer, tmp_path, qtbot):
    root = tmp_path / "project"
    write_sample_images(root, n=14, size=64, seed=0)
    Project.create(root).close()
    viewer = make_napari_viewer(show=True)
    _dock, panel = viewer.window.add_plugin_dock_widget(PLUGIN, "Crack AL")
    assert isinstance(panel, CrackALWidget)
    panel.open_project(root)
    window = viewer.window._qt_window
    window.resize(1366, 768)
    qtbot.waitUntil(lambda: window.height() == 768 and panel.queue.table.rowCount() == 14,
                    timeout=10_000)
    qtbot.wait(100)  # the layout settles
    assert window.minimumSizeHint().height() <= 768
    table = panel.queue.table
    assert table.viewport().height() // table.rowHeight(0) >= 8  # rows shown at once
    # the status line of the round stays in view whatever tab is shown
    assert [panel.tabs.tabText(i) for i in range(panel.tabs.count())] == ["Annotate", "Train", "Export"]
    for i in range(panel.tabs.count()):
        panel.tabs.setCurrentIndex(i)
        qtbot.wait(20)
        assert panel.status_line.isVisible() and panel.status_line.label.text() == "No round running"
    assert not panel.status_line.cancel_button.isEnabled()


def test_eta_text():
    assert eta_text(0, 100, 5.0) == "" and eta_text(100, 100, 5.0) == ""
    assert eta_text(25, 100, 10.0) == "about 30 s left"
    assert eta_text(10, 100, 60.0) == "about 9 min left"


def test_status_line_mirrors_a_running_round(qtbot):
    from qtpy.QtWidgets import QProgressBar

    from napari_crack_al.widgets.round_status import RoundStatusLine

    class FakeTrain:
        running = True
        last_result = None
        cancelled = 0

        def __init__(self):
            self.progress_bar = QProgressBar()
            self.progress_bar.setRange(0, 100)
            self.progress_bar.setFormat("training %v/%m")

        def cancel(self):
            self.cancelled += 1

    train = FakeTrain()
    line = RoundStatusLine(train)
    qtbot.addWidget(line)
    train.progress_bar.setValue(30)
    line.refresh()
    assert line.label.text().startswith("Round: training 30/100")
    assert line.cancel_button.isEnabled()
    line.cancel_button.click()
    assert train.cancelled == 1
    train.running = False
    line.refresh()
    assert line.label.text() == "No round running" and not line.cancel_button.isEnabled()
