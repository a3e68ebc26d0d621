"""The "Crack project" dock widget and its annotation session, driven as an annotator would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_crack_al.core.io.mask_io import read_mask
from napari_crack_al.core.project import ImageStatus, Project
from napari_crack_al.widgets.project_widget import ProjectWidget
from napari_crack_al.widgets.session import AnnotationSession, get_session


def _paint(session: AnnotationSession, rows: slice, cols: slice) -> np.ndarray:
    """Paint label 1 into the mask layer; returns the expected bool mask."""
    layer = session.labels_layer
    layer.data[rows, cols] = 1
    layer.refresh()
    return np.asarray(layer.data) > 0


def _click_row(qtbot, widget: ProjectWidget, row: int) -> None:
    table = widget.table
    rect = table.visualItemRect(table.item(row, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def _press(qtbot, viewer, key) -> None:
    canvas = viewer.window._qt_viewer.canvas.native
    qtbot.keyClick(canvas, key, Qt.KeyboardModifier.ShiftModifier)


def test_open_via_manifest_shows_image_and_editable_mask(project_widget, sample_root, qtbot):
    viewer, widget = project_widget
    assert isinstance(widget, ProjectWidget)
    widget.path_edit.setText(str(sample_root))
    qtbot.mouseClick(widget.open_button, Qt.MouseButton.LeftButton)

    session = get_session(viewer)
    assert session is widget.session
    names = Project.open(sample_root).names()
    assert session.current_name == names[0]
    # image below, mask on top, selected, paint mode with label 1; between them the (empty until a
    # model exists) crack probability overlay
    assert [layer.name for layer in viewer.layers] == [names[0], "crack probability (none yet)",
                                                       "crack mask (new)"]
    assert not session.overlay_layer.data.any() and not session.has_probability()
    labels = session.labels_layer
    assert viewer.layers.selection.active is labels
    assert labels.mode == "paint" and labels.selected_label == 1 and labels.brush_size == 5
    assert labels.data.dtype == np.uint8 and labels.data.shape == (128, 128) and not labels.data.any()
    lo, hi = session.image_layer.contrast_limits
    assert lo < hi
    assert session.image_layer.metadata["valid"].shape == (128, 128)
    # queue table in queue order, current row selected, status line
    assert widget.table.rowCount() == 4
    assert [widget.table.item(r, 0).text() for r in range(4)] == names
    assert widget.table.item(0, 1).text() == "new"
    assert widget.table.selectionModel().selectedRows()[0].row() == 0
    assert widget.status_label.text().startswith("0 / 4 annotated")
    # napari's own undo history works on the mask layer
    labels.paint((60, 60), 1)
    assert labels.data[60, 60] == 1
    labels.undo()
    assert not labels.data.any()


def test_click_row_paint_accept_button_and_key(project_widget, sample_root, qtbot):
    viewer, widget = project_widget
    widget.open_project(sample_root)
    session = widget.session
    names = session.project.names()

    _click_row(qtbot, widget, 2)
    assert session.current_name == names[2]
    assert viewer.layers[0].name == names[2]
    expected = _paint(session, slice(10, 20), slice(30, 45))

    qtbot.mouseClick(widget.accept_button, Qt.MouseButton.LeftButton)
    project = Project.open(sample_root)
    ann = project.annotation_path(names[2])
    assert ann.is_file()
    np.testing.assert_array_equal(read_mask(ann), expected)
    rec = project.record(names[2])
    assert rec.status == ImageStatus.ANNOTATED
    assert rec.edit_fraction == pytest.approx(1.0)  # drawn from scratch
    assert rec.annotation_seconds > 0.0  # time from loading to accepting
    assert session.current_name == names[3]  # the next queued image
    assert len(viewer.layers) == 3 and not session.labels_layer.data.any()
    assert widget.table.item(2, 1).text() == "annotated"
    assert widget.status_label.text().startswith("1 / 4 annotated")

    # Shift+A on the canvas accepts too (bound in the viewer keymap)
    expected = _paint(session, slice(0, 5), slice(0, 128))
    _press(qtbot, viewer, Qt.Key.Key_A)
    np.testing.assert_array_equal(read_mask(project.annotation_path(names[3])), expected)
    assert project.record(names[3]).status == ImageStatus.ANNOTATED
    assert session.current_name == names[0]  # the queue wraps around


def test_skip_button_and_key(project_widget, sample_root, qtbot):
    viewer, widget = project_widget
    widget.open_project(sample_root)
    session = widget.session
    names = session.project.names()

    qtbot.mouseClick(widget.skip_button, Qt.MouseButton.LeftButton)
    assert session.project.record(names[0]).status == ImageStatus.SKIPPED
    assert session.current_name == names[1]
    _press(qtbot, viewer, Qt.Key.Key_S)
    assert session.project.record(names[1]).status == ImageStatus.SKIPPED
    assert session.current_name == names[2]
    assert "1 skipped" not in widget.status_label.text() and "2 skipped" in widget.status_label.text()
    assert "Shift+A" in widget.accept_button.toolTip() and "Shift+S" in widget.skip_button.toolTip()


def test_switching_image_saves_draft_and_restores_it(project_widget, sample_root, qtbot):
    viewer, widget = project_widget
    widget.open_project(sample_root)
    session = widget.session
    project = session.project
    names = project.names()

    expected = _paint(session, slice(40, 50), slice(40, 50))
    _click_row(qtbot, widget, 1)
    assert session.current_name == names[1]
    assert project.has_draft(names[0])
    assert project.record(names[0]).status == ImageStatus.NEW
    assert not project.annotation_path(names[0]).exists()

    _click_row(qtbot, widget, 0)
    assert session.current_name == names[0]
    assert session.mask_source == "draft"
    assert session.labels_layer.name == "crack mask (draft)"
    np.testing.assert_array_equal(np.asarray(session.labels_layer.data) > 0, expected)
    # the draft becomes the annotation on accept and is then removed
    session.accept_and_next()
    np.testing.assert_array_equal(read_mask(project.annotation_path(names[0])), expected)
    assert not project.has_draft(names[0])


def test_editing_an_annotated_image_resaves_the_annotation(project_widget, sample_root, qtbot):
    viewer, widget = project_widget
    widget.open_project(sample_root)
    session = widget.session
    project = session.project
    names = project.names()
    _paint(session, slice(0, 10), slice(0, 10))
    session.accept_and_next()

    _click_row(qtbot, widget, 0)
    assert session.mask_source == "annotation"
    assert session.labels_layer.name == "crack mask (accepted)"
    expected = _paint(session, slice(100, 110), slice(0, 10))
    _click_row(qtbot, widget, 1)
    np.testing.assert_array_equal(read_mask(project.annotation_path(names[0])), expected)
    assert not project.has_draft(names[0])
    assert project.record(names[0]).status == ImageStatus.ANNOTATED


def test_closing_project_and_viewer_save_edits(make_napari_viewer, sample_root):
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-crack-al", "Crack project")
    session = widget.session
    widget.open_project(sample_root)
    names = session.project.names()
    expected = _paint(session, slice(5, 15), slice(5, 15))
    session.close()
    assert session.project is None and len(viewer.layers) == 0
    assert widget.status_label.text() == "No project open"
    project = Project.open(sample_root)
    np.testing.assert_array_equal(read_mask(project.drafts_dir / f"{names[0]}.png"), expected)

    # edits are also saved when the viewer closes
    widget.open_project(sample_root)
    assert session.mask_source == "draft"
    session.load(names[1])
    expected = _paint(session, slice(60, 70), slice(60, 70))
    viewer.close()
    np.testing.assert_array_equal(read_mask(project.drafts_dir / f"{names[1]}.png"), expected)


def test_corrupt_image_and_bad_folder_give_notifications(project_widget, sample_root, tmp_path,
                                                         notifications, qtbot):
    viewer, widget = project_widget
    names = Project.open(sample_root).names()
    bad = sample_root / "images" / f"{names[1]}.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")

    widget.path_edit.setText(str(tmp_path / "no-such-project"))
    qtbot.mouseClick(widget.open_button, Qt.MouseButton.LeftButton)
    assert widget.session.project is None
    assert any("no-such-project" in m for m in notifications())
    # a folder of images that is no project yet: the message says how to make one
    plain = tmp_path / "plain"
    (plain / "images").mkdir(parents=True)
    widget.path_edit.setText(str(plain))
    qtbot.mouseClick(widget.open_button, Qt.MouseButton.LeftButton)
    assert any("Create from folder" in m for m in notifications())

    widget.open_project(sample_root)
    session = widget.session
    assert session.current_name == names[0]
    _click_row(qtbot, widget, 1)  # corrupt: notification, current image stays
    assert session.current_name == names[0]
    assert any(bad.name in m for m in notifications())
    assert len(viewer.layers) == 3

    # the queue marks it, with the reason
    row = [widget.table.item(i, 0).text() for i in range(widget.table.rowCount())].index(names[1])
    assert widget.table.item(row, 1).text() == "unreadable"
    assert bad.name in widget.table.item(row, 1).toolTip()
    # accept & next passes the marked image by, without raising its error again, and the widget
    # keeps working
    n_before = len(notifications())
    expected = _paint(session, slice(0, 3), slice(0, 3))
    qtbot.mouseClick(widget.accept_button, Qt.MouseButton.LeftButton)
    assert session.current_name == names[2]
    assert not any(bad.name in m for m in notifications()[n_before:])
    np.testing.assert_array_equal(read_mask(session.project.annotation_path(names[0])), expected)
    session.load(names[0])
    session.skip_and_next()
    assert session.current_name == names[2]
    assert not any(bad.name in m for m in notifications()[n_before:])
    # a repaired file opens again and loses its mark
    from napari_crack_al.core.sample_project import write_png16

    write_png16(bad, np.full((128, 128), 30000, np.uint16))
    assert names[1] not in session.project.unreadable()
    _click_row(qtbot, widget, row)
    assert session.current_name == names[1]


def test_create_from_folder(project_widget, tmp_path, qtbot):
    from napari_crack_al.core.sample_project import write_sample_images

    viewer, widget = project_widget
    root = tmp_path / "fresh"
    write_sample_images(root, n=2, size=64, seed=1)
    assert not Project.is_project(root)
    widget.path_edit.setText(str(root))
    qtbot.mouseClick(widget.create_button, Qt.MouseButton.LeftButton)
    assert Project.is_project(Path(root))
    assert widget.table.rowCount() == 2
    assert widget.session.current_name == "sample_0000"


def test_one_session_per_viewer(make_napari_viewer):
    v1, v2 = make_napari_viewer(), make_napari_viewer()
    assert get_session(v1) is get_session(v1)
    assert get_session(v1) is not get_session(v2)


def test_autosave_while_painting_and_removed_mask_layer(project_widget, sample_root, qtbot):
    viewer, widget = project_widget
    widget.open_project(sample_root)
    session = widget.session
    project = session.project
    names = project.names()
    session.autosave_seconds = 1e-6  # every stroke
    session.labels_layer.paint((20, 20), 1)  # a brush stroke emits the layer's paint event
    qtbot.waitUntil(lambda: project.has_draft(names[0]), timeout=2000)
    np.testing.assert_array_equal(read_mask(project.drafts_dir / f"{names[0]}.png"),
                                  np.asarray(session.labels_layer.data) > 0)

    # removing the mask layer by hand saves it; loading an image brings the layers back
    session.autosave_seconds = 0
    expected = _paint(session, slice(100, 120), slice(100, 120))
    viewer.layers.remove(session.labels_layer)
    np.testing.assert_array_equal(read_mask(project.drafts_dir / f"{names[0]}.png"), expected)
    session.load(names[1])
    assert [layer.name for layer in viewer.layers] == [names[1], "crack probability (none yet)",
                                                       "crack mask (new)"]
    assert viewer.layers.selection.active is session.labels_layer


def test_the_viewers_own_key_bindings_are_kept(make_napari_viewer):
    """A key the viewer already binds (a user's or another plugin's) is not overwritten."""
    from napari_crack_al.widgets.shortcuts import ACCEPT_KEY, bind_shortcuts

    viewer = make_napari_viewer()
    calls = []

    def mine(_viewer):
        calls.append("mine")

    viewer.bind_key(ACCEPT_KEY, mine)
    _dock, _widget = viewer.window.add_plugin_dock_widget("napari-crack-al", "Crack project")
    from napari.utils.key_bindings import coerce_keybinding

    assert viewer.keymap[coerce_keybinding(ACCEPT_KEY)] is mine
    assert bind_shortcuts(viewer) == [ACCEPT_KEY]  # idempotent; the same key left alone
