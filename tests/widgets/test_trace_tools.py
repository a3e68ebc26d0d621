"""Trace and erase-crack modes through the manifest's panels, on napari's real event path."""

from __future__ import annotations

import numpy as np
import pytest
from napari.utils._test_utils import read_only_mouse_event
from napari.utils.interactions import mouse_move_callbacks, mouse_press_callbacks
from qtpy.QtCore import Qt

from napari_crack_al.core.project import Project

PLUGIN = "napari-crack-al"


def _write_project(root, n=2):
    """Range images with one dark horizontal crack (3 px wide) at row 60, from column 20 to 180."""
    import tifffile

    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = rng.normal(30000, 20, (128, 200)).astype(np.float32)
        img[59:62, 20:180] -= 400
        tifffile.imwrite(root / "images" / f"road_{i}.tif", img.astype(np.uint16))
    return Project.create(root)


@pytest.fixture
def panels(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    _, project_w = viewer.window.add_plugin_dock_widget(PLUGIN, "Crack project")
    _, annotate = viewer.window.add_plugin_dock_widget(PLUGIN, "Annotate")
    return viewer, project_w, annotate, tmp_path


def _press(layer, row, col, modifiers=()):
    mouse_press_callbacks(layer, read_only_mouse_event(type="mouse_press", button=1,
                                                       position=(row, col),
                                                       modifiers=list(modifiers)))


def test_trace_paints_the_path_and_undo_removes_it(panels, qtbot):
    viewer, project_w, annotate, tmp = panels
    _write_project(tmp / "p").close()
    project_w.open_project(tmp / "p")
    session = annotate.session
    labels = session.labels_layer
    assert not labels.data.any()
    qtbot.mouseClick(annotate.crack_tools.trace_button, Qt.MouseButton.LeftButton)
    assert session.trace_tool.mode == "trace" and labels.mode == "pan_zoom"
    _press(labels, 61, 30)  # the first click paints nothing
    assert not labels.data.any()
    # moving the mouse previews the path the next click would add
    mouse_move_callbacks(labels, read_only_mouse_event(type="mouse_move", position=(60, 120)))
    preview = session.trace_tool.preview_layer
    assert preview is not None and len(preview.data) == 1 and len(preview.data[0]) > 50
    _press(labels, 59, 170)
    painted = np.asarray(labels.data) > 0
    assert painted[59:62, 35:165].mean() > 0.9  # along the crack, at its width
    assert painted.sum() < 3.5 * 140 and not painted[:50].any() and not painted[70:].any()
    assert len(preview.data) == 0 and session.is_dirty()
    labels.undo()  # Ctrl+Z
    assert not np.asarray(labels.data).any()
    # Enter ends the crack: the next click starts a new one
    session.trace_tool.finish()
    assert session.trace_tool.points == []
    _press(labels, 60, 40)
    session.trace_tool.finish()
    _press(labels, 60, 60)
    assert not np.asarray(labels.data).any()
    # the key toggles the mode off again: napari's brush is back
    qtbot.keyClick(viewer.window._qt_viewer.canvas.native, Qt.Key.Key_T,
                   Qt.KeyboardModifier.ShiftModifier)
    assert session.trace_tool.mode is None and labels.mode == "paint"
    assert not annotate.crack_tools.trace_button.isChecked()


def test_erase_crack_drops_a_suggested_segment_and_accept_keeps_the_rest(panels, qtbot):
    viewer, project_w, annotate, tmp = panels
    with _write_project(tmp / "p") as project:
        name = project.names()[0]
        suggestion = np.zeros((128, 200), bool)
        suggestion[59:62, 20:180] = True  # the crack
        suggestion[20:23, 30:90] = True  # a false crack
        suggestion[62:110, 100:103] = True  # a branch below the crack
        project.set_suggestion(name, suggestion, "round-001")
    project_w.open_project(tmp / "p")
    session = annotate.session
    assert session.current_name == name and session.mask_source == "suggestion"
    labels = session.labels_layer
    qtbot.keyClick(viewer.window._qt_viewer.canvas.native, Qt.Key.Key_X,
                   Qt.KeyboardModifier.ShiftModifier)
    assert session.trace_tool.mode == "erase_crack"
    assert annotate.crack_tools.erase_button.isChecked()
    _press(labels, 21, 60)  # the false crack: gone, nothing else
    mask = np.asarray(labels.data) > 0
    assert not mask[20:23, 30:90].any() and mask[59:62, 20:180].all() and mask[80, 101]
    _press(labels, 90, 101)  # the branch below the crack: one segment
    mask = np.asarray(labels.data) > 0
    assert not mask[70:110, 100:103].any() and mask[59:62, 20:90].all()
    labels.undo()
    assert (np.asarray(labels.data) > 0)[70:110, 100:103].all()
    _press(labels, 21, 60)  # nothing left there: no change
    qtbot.mouseClick(annotate.accept_button, Qt.MouseButton.LeftButton)
    with Project.open(tmp / "p") as project:
        saved = project.read_annotation(name)
    assert not saved[20:23, 30:90].any() and saved[59:62, 20:180].all() and saved[90, 101]
    # Ctrl+click removes the whole connected crack
    session.load(name)  # another image loaded meanwhile: the mode stays on, the brush off
    assert session.trace_tool.mode == "erase_crack" and session.labels_layer.mode == "pan_zoom"
    assert np.asarray(session.labels_layer.data).any()
    _press(session.labels_layer, 60, 50, modifiers=("Control",))
    assert not np.asarray(session.labels_layer.data).any()
