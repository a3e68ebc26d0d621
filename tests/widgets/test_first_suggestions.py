"""A new project's images open with the training-free detector's suggestion, before any model."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt

from napari_crack_al.core.detector import BUILTIN_VERSION
from napari_crack_al.core.project import ImageStatus, Project
from napari_crack_al.core.sample_project import write_sample_images
from napari_crack_al.widgets.session import AnnotationSession


def _new_project(tmp_path, n=3):
    root = tmp_path / "fresh"
    write_sample_images(root, n=n, size=192, seed=4)
    return root


def test_first_image_of_a_new_project_opens_with_a_suggestion(project_widget, tmp_path, qtbot,
                                                             monkeypatch):
    monkeypatch.setattr(AnnotationSession, "auto_first_suggestions", True)
    viewer, widget = project_widget
    root = _new_project(tmp_path)
    widget.path_edit.setText(str(root))
    qtbot.mouseClick(widget.create_button, Qt.MouseButton.LeftButton)
    session = widget.session
    first = session.current_name
    assert first is not None
    # the detector runs in a worker thread; the mask on screen becomes its suggestion
    qtbot.waitUntil(lambda: session.mask_source == "suggestion", timeout=60_000)
    assert session.current_name == first
    assert session.labels_layer.data.any()
    assert session.labels_layer.name == "crack mask (suggestion)"
    assert session.has_probability()  # the detector's evidence map is the overlay
    qtbot.waitUntil(lambda: not session.first_suggestions_running, timeout=60_000)
    with Project.open(root) as project:
        for rec in project.records():
            assert rec.status == ImageStatus.SUGGESTED
            assert rec.suggestion_model_version == BUILTIN_VERSION
    assert [widget.table.item(r, 1).text() for r in range(3)] == ["suggested"] * 3


def test_painting_before_the_suggestion_arrives_wins(project_widget, tmp_path, qtbot, monkeypatch):
    monkeypatch.setattr(AnnotationSession, "auto_first_suggestions", True)
    viewer, widget = project_widget
    root = _new_project(tmp_path, n=2)
    Project.create(root).close()
    session = widget.session
    session.auto_first_suggestions = False  # open first, start the detector after painting
    widget.open_project(root)
    session.labels_layer.paint((20, 20), 1)
    session.auto_first_suggestions = True
    assert session.start_first_suggestions()
    qtbot.waitUntil(lambda: not session.first_suggestions_running, timeout=60_000)
    assert session.mask_source == "empty"  # the suggestion did not replace the annotator's work
    painted = np.asarray(session.labels_layer.data)
    assert painted[20, 20] == 1 and painted.sum() < 30


def test_an_accept_tunes_the_detector_and_resuggests_the_next_image(project_widget, tmp_path,
                                                                      qtbot, monkeypatch):
    from napari_crack_al.core.detector import stored_calibration
    from napari_crack_al.core.io.mask_io import read_mask

    monkeypatch.setattr(AnnotationSession, "auto_first_suggestions", True)
    viewer, widget = project_widget
    root = _new_project(tmp_path)
    Project.create(root).close()
    widget.open_project(root)
    session = widget.session
    qtbot.waitUntil(lambda: not session.first_suggestions_running, timeout=60_000)
    first = session.current_name
    session.labels_layer.data[...] = read_mask(root / "ground_truth" / f"{first}.png")
    session.mark_edited()
    shown = session.accept_and_next()
    assert shown is not None and shown != first
    qtbot.waitUntil(lambda: not session.first_suggestions_running, timeout=60_000)
    with Project.open(root, read_only=True) as project:
        tuned = stored_calibration(project)
        assert tuned is not None and tuned.n_images == 1
        stored = project.read_suggestion(shown)
        assert project.record(shown).suggestion_model_version == BUILTIN_VERSION
    # the untouched image on screen shows the re-detected suggestion
    assert session.current_name == shown and session.mask_source == "suggestion"
    assert np.array_equal(np.asarray(session.labels_layer.data) > 0, stored)


def test_an_image_the_round_left_out_opens_and_gets_the_models_suggestion(project_widget,
                                                                          tmp_path, qtbot,
                                                                          monkeypatch):
    """On-demand suggestion: the image has no suggestion of the current model; opening it
    computes one in a worker and shows it."""
    from napari_crack_al.core.active.round import RoundConfig, run_round
    from napari_crack_al.core.active.strategies import unlabeled_candidates
    from napari_crack_al.core.events import drain
    from napari_crack_al.core.io.mask_io import read_mask
    from napari_crack_al.core.training.config import TrainConfig

    root = _new_project(tmp_path, n=6)
    train = TrainConfig(mode="supervised", iterations=3, crop_size=64, batch_size=2, threads=1,
                        device="cpu", seed=0)
    with Project.create(root) as project:
        for name in project.names()[:3]:
            project.accept(name, read_mask(root / "ground_truth" / f"{name}.png"))
        drain(run_round(project, RoundConfig(train=train, batch_size=1, score_seconds=1e-9,
                                             choose_source=False, suggest_next=1, seed=0)))
        stale = unlabeled_candidates(project)[2]  # not scored, not at the head of the queue
        assert project.record(stale).suggestion_file_version is None
    viewer, widget = project_widget
    widget.open_project(root)
    session = widget.session
    monkeypatch.setattr(AnnotationSession, "auto_first_suggestions", True)
    session.load(stale)
    assert session.fresh_suggestion_running or session.mask_source == "suggestion"
    qtbot.waitUntil(lambda: session.mask_source == "suggestion", timeout=60_000)
    qtbot.waitUntil(lambda: not session.fresh_suggestion_running, timeout=60_000)
    assert session.current_name == stale
    assert session.labels_layer.name == "crack mask (suggestion)"
    record = session.project.record(stale)
    assert record.suggestion_file_version == "round-001"
    np.testing.assert_array_equal(np.asarray(session.labels_layer.data) > 0,
                                  session.project.read_suggestion(stale))
