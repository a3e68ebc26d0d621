"""The Annotate panel: reset to suggestion, clear, clean-up (undoable), brush size, measurements, keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_crack_al.core.project import Project
from napari_crack_al.core.sample_project import write_sample_images
from napari_crack_al.widgets.annotate_widget import (
    AnnotateWidget,
    clean_up_mask,
    format_measurements,
    measure_mask,
)

PLUGIN = "napari-crack-al"
SIZE = 64


def _suggestion() -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    mask[30:33, 5:55] = True  # a horizontal crack, 3 px wide, 50 px long
    return mask


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    write_sample_images(root, n=3, size=SIZE, seed=2)
    with Project.create(root, pixel_size_mm=2.0) as project:
        project.set_suggestion(project.names()[0], _suggestion(), "round-001")
    return root


@pytest.fixture
def panel(make_napari_viewer, root):
    viewer = make_napari_viewer()
    _, project_w = viewer.window.add_plugin_dock_widget(PLUGIN, "Crack project")
    _, annotate = viewer.window.add_plugin_dock_widget(PLUGIN, "Annotate")
    assert isinstance(annotate, AnnotateWidget)
    project_w.open_project(root)
    return viewer, annotate


def _mask(annotate) -> np.ndarray:
    return np.asarray(annotate.session.labels_layer.data) > 0


def _press(qtbot, viewer, key) -> None:
    qtbot.keyClick(viewer.window._qt_viewer.canvas.native, key, Qt.KeyboardModifier.ShiftModifier)


def test_clear_reset_and_undo(panel, qtbot):
    viewer, annotate = panel
    session = annotate.session
    assert session.mask_source == "suggestion"
    assert "round-001" in annotate.image_label.text()
    np.testing.assert_array_equal(_mask(annotate), _suggestion())

    qtbot.mouseClick(annotate.clear_button, Qt.MouseButton.LeftButton)
    assert not _mask(annotate).any()
    session.labels_layer.undo()  # Ctrl+Z brings the cleared mask back
    np.testing.assert_array_equal(_mask(annotate), _suggestion())

    layer = session.labels_layer
    layer.data[0:10, 0:10] = 1
    layer.data[30:33, 5:55] = 0
    layer.refresh()
    qtbot.mouseClick(annotate.reset_button, Qt.MouseButton.LeftButton)
    np.testing.assert_array_equal(_mask(annotate), _suggestion())

    # keys: Shift+C clears, Shift+U resets
    _press(qtbot, viewer, Qt.Key.Key_C)
    assert not _mask(annotate).any()
    _press(qtbot, viewer, Qt.Key.Key_U)
    np.testing.assert_array_equal(_mask(annotate), _suggestion())
    assert "Shift+C" in annotate.clear_button.toolTip() and "Shift+U" in annotate.reset_button.toolTip()


def test_reset_without_suggestion_says_so(panel, qtbot, notifications):
    viewer, annotate = panel
    session = annotate.session
    session.load(session.project.names()[1])
    session.labels_layer.data[5, 5] = 1
    qtbot.mouseClick(annotate.reset_button, Qt.MouseButton.LeftButton)
    assert any("no suggestion" in m for m in notifications())
    assert _mask(annotate)[5, 5]  # nothing changed


def test_clean_up_removes_specks_and_fills_holes(panel, qtbot):
    viewer, annotate = panel
    layer = annotate.session.labels_layer
    start = np.zeros((SIZE, SIZE), dtype=np.uint8)
    start[10:20, 10:40] = 1  # a thick crack...
    start[14:16, 20:22] = 0  # ...with a 4-pixel hole
    start[50:52, 50:52] = 1  # a 4-pixel speck
    start[40, 5:45] = 1  # a thin line: kept
    layer.data[...] = start
    layer.refresh()
    annotate.speck_spin.setValue(6)
    annotate.hole_spin.setValue(6)
    assert annotate.session.speck_area == 6 and annotate.session.hole_area == 6

    qtbot.mouseClick(annotate.cleanup_button, Qt.MouseButton.LeftButton)
    mask = _mask(annotate)
    assert mask[14:16, 20:22].all()  # hole filled
    assert not mask[50:52, 50:52].any()  # speck removed
    assert mask[40, 5:45].all() and mask[10:20, 10:40].all()
    assert mask.sum() == 300 + 40
    layer.undo()
    np.testing.assert_array_equal(_mask(annotate), start > 0)
    _press(qtbot, viewer, Qt.Key.Key_K)  # Shift+K cleans up too
    np.testing.assert_array_equal(_mask(annotate), mask)


def test_clean_up_sizes():
    mask = np.zeros((20, 20), dtype=bool)
    mask[0, 0:5] = True  # 5 px
    mask[10, 0:4] = True  # 4 px
    mask[15:17, 15] = True
    mask[16, 16] = True  # a 3 px diagonal-connected piece
    out = clean_up_mask(mask, speck_area=5, hole_area=0)
    assert out[0, 0:5].all() and not out[10].any() and not out[15:17].any()
    np.testing.assert_array_equal(clean_up_mask(mask, speck_area=0, hole_area=0), mask)
    mask = np.ones((7, 7), dtype=bool)
    mask[3, 3] = False
    assert clean_up_mask(mask, speck_area=0, hole_area=2).all()
    assert not clean_up_mask(mask, speck_area=0, hole_area=1)[3, 3]


def test_measurements_of_the_current_mask(panel, qtbot):
    viewer, annotate = panel
    qtbot.waitUntil(lambda: annotate.summary is not None, timeout=10_000)
    summary = annotate.summary
    assert summary.n_cracks == 1
    assert summary.total_length_px == pytest.approx(50, abs=3)
    assert summary.mean_width_px == pytest.approx(3, abs=0.6)
    assert summary.total_length_mm == pytest.approx(2.0 * summary.total_length_px)
    text = annotate.measure_label.text()
    assert text == format_measurements(measure_mask(_suggestion(), 2.0))
    assert "Cracks: 1" in text and "mm" in text

    # an edit is measured again (in a worker, after a short delay)
    qtbot.mouseClick(annotate.clear_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: annotate.summary.n_cracks == 0, timeout=10_000)
    assert annotate.measure_label.text().startswith("Cracks: 0")


def test_brush_size_follows_the_layer(panel, qtbot):
    viewer, annotate = panel
    layer = annotate.session.labels_layer
    assert annotate.brush_spin.value() == layer.brush_size == 5
    annotate.brush_spin.setValue(9)
    assert layer.brush_size == 9
    layer.brush_size = 3
    assert annotate.brush_spin.value() == 3


def test_accept_skip_and_next_buttons(panel, qtbot):
    viewer, annotate = panel
    session = annotate.session
    names = session.project.names()
    qtbot.mouseClick(annotate.accept_button, Qt.MouseButton.LeftButton)
    assert session.project.read_annotation(names[0]) is not None
    assert session.current_name == names[1]
    qtbot.mouseClick(annotate.skip_button, Qt.MouseButton.LeftButton)
    assert session.current_name == names[2]
    session.load(names[1])
    qtbot.mouseClick(annotate.next_button, Qt.MouseButton.LeftButton)  # the first waiting image
    assert session.current_name == names[2]
    session.close()
    assert not annotate.accept_button.isEnabled()
    assert annotate.image_label.text() == "No project open"


def test_retrain_key_without_train_panel_says_how(panel, qtbot, notifications):
    viewer, annotate = panel
    _press(qtbot, viewer, Qt.Key.Key_R)
    assert any("Train panel" in m for m in notifications())
    _press(qtbot, viewer, Qt.Key.Key_O)  # no probability yet: the overlay toggles, with a word why it is empty
    assert not annotate.session.overlay_visible and not annotate.overlay_check.isChecked()
    assert not annotate.session.overlay_layer.visible
    _press(qtbot, viewer, Qt.Key.Key_O)
    assert annotate.session.overlay_visible and annotate.overlay_check.isChecked()
    assert any("No crack probability" in m for m in notifications())


def test_labels_follow_the_state_and_provenance_survives_a_retrain(panel, qtbot):
    """edited -> draft -> (a retrain writes a newer suggestion) -> still from round-001 ->
    reset: suggestion of round-002, not edited -> accepted."""
    from napari_crack_al.widgets.mask_actions import apply_mask

    viewer, annotate = panel
    session = annotate.session
    name = session.current_name
    assert session.labels_layer.name == "crack mask (suggestion)"
    edited = _suggestion()
    edited[40:43, 5:20] = True
    apply_mask(session, edited)  # an undoable edit, as a tool makes it
    session.mark_edited()
    assert session.labels_layer.name == "crack mask (edited)"
    assert "edited mask" in annotate.image_label.text()
    assert session.save_current() == "draft"
    assert session.labels_layer.name == "crack mask (draft)"
    newer = np.zeros((SIZE, SIZE), bool)
    newer[10:13, 5:60] = True
    session.project.set_suggestion(name, newer, "round-002")  # a round ends meanwhile
    annotate._update_state()
    assert "round-001" in annotate.image_label.text()  # the draft's origin, not the newest

    qtbot.mouseClick(annotate.reset_button, Qt.MouseButton.LeftButton)
    np.testing.assert_array_equal(_mask(annotate), newer)
    assert session.labels_layer.name == "crack mask (suggestion)" and not session.is_dirty()
    assert not session.project.has_draft(name)
    annotate._update_state()
    assert "round-002" in annotate.image_label.text()

    record = session.project.accept(name, newer, base=session.loaded_base)
    assert record.suggestion_model_version == "round-002" and record.edit_fraction == 0.0
