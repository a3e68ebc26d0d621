"""The whole annotation loop through the manifest's dock widgets, with a REAL (tiny) training round.

Open a project, accept two images painted with their ground truth, click
Retrain & suggest next, and check that the queue is re-sorted by the new model's
scores and that the image opened next shows that model's prediction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from qtpy.QtCore import Qt

from napari_crack_al.core.active.embeddings import load_embeddings
from napari_crack_al.core.active.round import RoundFinished, read_probability, stored_scores
from napari_crack_al.core.active.strategies import get_strategy, unlabeled_candidates
from napari_crack_al.core.inference import predict_image
from napari_crack_al.core.io.mask_io import read_mask
from napari_crack_al.core.model import load_model
from napari_crack_al.core.normalize import normalize_for_model
from napari_crack_al.core.project import ImageStatus, Project
from napari_crack_al.core.io.range_io import read_range_image
from napari_crack_al.core.sample_project import write_sample_images
from napari_crack_al.widgets.session import OVERLAY_NAME, get_session

torch.set_num_threads(1)

PLUGIN = "napari-crack-al"
NAMES = ("Crack project", "Annotate", "Train", "Export")


@pytest.fixture
def tiny_root(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    write_sample_images(root, n=6, size=96, seed=0)
    Project.create(root).close()
    return root


@pytest.fixture
def panels(make_napari_viewer):
    viewer = make_napari_viewer()
    widgets = {name: viewer.window.add_plugin_dock_widget(PLUGIN, name)[1] for name in NAMES}
    return viewer, widgets


def tiny_settings(train) -> None:
    """A round of a few seconds: 3 semi-supervised steps of 2 crops of 64 px on the CPU, 2 images per batch."""
    train.device_combo.setCurrentText("cpu")
    train.mode_combo.setCurrentText("semi")
    train.seconds_spin.setValue(0)  # a fixed number of steps
    train.iterations_spin.setValue(3)
    train.crop_spin.setValue(64)
    train.batch_spin.setValue(2)
    train.k_spin.setValue(2)
    train.strategy_combo.setCurrentText("hybrid")
    train.train_overrides = {"threads": 1, "warmup_iterations": 1}


def paint_truth(session, root: Path) -> np.ndarray:
    """Paint the ground truth of the current image into the mask layer (as an annotator would)."""
    truth = read_mask(root / "ground_truth" / f"{session.current_name}.png")
    layer = session.labels_layer
    layer.data[...] = truth.astype(np.uint8)
    layer.refresh()
    return truth


def click(qtbot, button) -> None:
    assert button.isEnabled(), button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_retrain_and_suggest_next_end_to_end(panels, tiny_root, qtbot):
    viewer, w = panels
    project_w, annotate, train = w["Crack project"], w["Annotate"], w["Train"]
    project_w.open_project(tiny_root)
    session = get_session(viewer)
    assert session is annotate.session is train.session
    project = session.project
    tiny_settings(train)
    assert "no" in train.model_label.text().lower()  # no model yet

    # annotate two images through the Labels layer and the Annotate panel's Accept & next
    accepted = {}
    for _ in range(2):
        name = session.current_name
        accepted[name] = paint_truth(session, tiny_root)
        click(qtbot, annotate.accept_button)
    for name, truth in accepted.items():
        assert project.record(name).status == ImageStatus.ANNOTATED
        np.testing.assert_array_equal(project.read_annotation(name), truth)
    assert session.mask_source == "empty"  # the image on screen has no suggestion yet

    # one click; the annotator could keep going: only Retrain is disabled
    click(qtbot, train.retrain_button)
    assert train.running
    assert not train.retrain_button.isEnabled() and train.cancel_button.isEnabled()
    assert annotate.accept_button.isEnabled() and annotate.skip_button.isEnabled()
    assert project_w.accept_button.isEnabled()
    qtbot.waitUntil(lambda: train.job.done, timeout=90_000)
    assert train.retrain_button.isEnabled() and not train.cancel_button.isEnabled()

    result = train.last_result
    assert isinstance(result, RoundFinished), train.status_label.text()
    version = result.model_version
    assert version == "round-001" and result.checkpoint.is_file()
    assert project.current_model()["version"] == version
    assert sorted(result.trained_on) == sorted(accepted)

    # the queue is re-sorted by the new model's stored scores: table == project == strategy
    candidates = unlabeled_candidates(project)
    assert len(candidates) == 4
    expected = get_strategy("hybrid").rank(candidates, stored_scores(project, version),
                                           load_embeddings(project.state_dir, version), 2, 0)
    assert result.ranking == expected
    assert project.names()[:4] == expected
    table = [project_w.table.item(r, 0).text() for r in range(project_w.table.rowCount())]
    assert table == project.names()
    for name in candidates:
        rec = project.record(name)
        assert rec.status == ImageStatus.SUGGESTED and rec.score_model_version == version
        score_cell = project_w.table.item(table.index(name), 2).text()
        assert score_cell == f"{rec.score:.3f}"

    # the top image is open with that model's prediction as the editable mask
    top = expected[0]
    assert session.current_name == top  # untouched image on screen: replaced (or reloaded) by the top
    assert session.mask_source == "suggestion"
    assert session.labels_layer.name == "crack mask (suggestion)"
    shown = np.asarray(session.labels_layer.data) > 0
    np.testing.assert_array_equal(shown, project.read_suggestion(top))
    assert project.record(top).suggestion_model_version == version
    model, ckpt = load_model(result.checkpoint)
    image = read_range_image(project.image_path(top))
    profile = ckpt.train_config["profile"]
    prediction = predict_image(model, normalize_for_model(image, profile=profile), tile=512, overlap=64,
                               batch_size=4)
    # the suggestion is cut at the model's calibrated threshold (0.5 without held-out images)
    assert result.threshold == ckpt.metadata["threshold"]
    np.testing.assert_array_equal(shown, prediction.probability > result.threshold)
    # the image is shown as the model sees it
    np.testing.assert_allclose(session.image_layer.data, normalize_for_model(image, profile=profile))

    # the crack probability overlay (toggled with Shift+O) sits between the image and the mask
    overlay = session.overlay_layer
    assert overlay is not None and overlay.name == OVERLAY_NAME and overlay.visible
    # it saturates at the model's threshold: what is bright is in the suggestion
    assert list(overlay.contrast_limits) == pytest.approx([0.0, result.threshold])
    names = [layer.name for layer in viewer.layers]
    assert names == [top, OVERLAY_NAME, "crack mask (suggestion)"]
    np.testing.assert_allclose(overlay.data, read_probability(project, top))
    np.testing.assert_allclose(overlay.data, prediction.probability, atol=1.0 / 255)
    assert viewer.layers.selection.active is session.labels_layer
    qtbot.keyClick(viewer.window._qt_viewer.canvas.native, Qt.Key.Key_O, Qt.KeyboardModifier.ShiftModifier)
    assert not overlay.visible and not session.overlay_visible

    # the panel shows the new model; the plot holds the round's losses (one point per step)
    assert version in train.model_label.text()
    assert [len(v) for v in train.plot.losses.values()] and all(
        len(v) == 3 for v in train.plot.losses.values())
    assert train.plot.rounds == [1]

    # the next accept goes on with the new queue's order
    paint_truth(session, tiny_root)
    click(qtbot, annotate.accept_button)
    assert session.current_name == expected[1]

    # closing and reopening the project (as after a restart) resumes the model, its plot and the queue
    losses = {k: list(v) for k, v in train.plot.losses.items()}
    session.close()
    assert train.model_label.text() == "No project open" and train.plot.rounds == []
    project_w.open_project(tiny_root)
    assert version in train.model_label.text() and train.plot.rounds == [1]
    assert train.plot.losses == losses
    assert session.current_name == expected[1]  # the first image still waiting, in the new order
    assert session.has_probability()
