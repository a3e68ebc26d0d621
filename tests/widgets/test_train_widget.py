"""The Train panel: cancel a real round, errors and out-of-memory in the worker, a round that finishes
while the annotator is editing, Shift+R, and resuming a project's model after a restart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from qtpy.QtCore import Qt

from napari_crack_al.core.active.round import RoundFinished
from napari_crack_al.core.active.strategies import unlabeled_candidates
from napari_crack_al.core.errors import CheckpointError, ConfigError
from napari_crack_al.core.events import MessageEvent, StepEvent
from napari_crack_al.core.io.mask_io import read_mask
from napari_crack_al.core.project import Project
from napari_crack_al.core.sample_project import write_sample_images
from napari_crack_al.widgets import train_widget as train_module
from napari_crack_al.widgets.session import get_session
from napari_crack_al.widgets.train_widget import LOSSES_META, SETTINGS_META, TrainWidget

torch.set_num_threads(1)

PLUGIN = "napari-crack-al"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """6 images of 96 x 96; two accepted with their ground truth."""
    root = tmp_path / "project"
    write_sample_images(root, n=6, size=96, seed=0)
    with Project.create(root) as project:
        for name in project.names()[:2]:
            project.accept(name, read_mask(root / "ground_truth" / f"{name}.png"))
    return root


@pytest.fixture
def panels(make_napari_viewer):
    viewer = make_napari_viewer()
    widgets = {name: viewer.window.add_plugin_dock_widget(PLUGIN, name)[1]
               for name in ("Crack project", "Train")}
    return viewer, widgets["Crack project"], widgets["Train"]


def _press(qtbot, viewer, key) -> None:
    qtbot.keyClick(viewer.window._qt_viewer.canvas.native, key, Qt.KeyboardModifier.ShiftModifier)


def _fake_round(square: tuple[slice, slice]):
    """A round without training: suggestions (a square) for every unlabeled image, queue reversed."""

    def run(project, config, *, cancel=None):
        yield MessageEvent("fake round")
        yield StepEvent(step=1, total_steps=1, losses={"total": 0.5, "sup": 0.4})
        names = unlabeled_candidates(project)
        mask = np.zeros((96, 96), dtype=bool)
        mask[square] = True
        r = len(project.models()) + 1
        version = f"round-{r:03d}"
        for name in names:
            project.set_suggestion(name, mask, version)
        ranking = names[::-1]
        project.set_queue_order(ranking)
        path = project.models_dir / f"round_{r:03d}.pt"
        path.write_bytes(b"not a real model")
        project.add_model(version, path, round=r, metrics={"f1": 0.25, "crack_iou": 0.2, "n_images": 1})
        return RoundFinished(round_index=r, model_version=version, checkpoint=path, metrics={},
                             ranking=ranking, train_seconds=0.1, score_seconds=0.1)

    return run


def test_cancel_stops_within_a_second_and_keeps_the_model(panels, root, qtbot, notifications):
    viewer, project_w, train = panels
    with Project.open(root) as p:  # a previous model (its file is gone: this round starts from scratch)
        p.add_model("round-001", p.models_dir / "round_001.pt", round=1, metrics={})
    project_w.open_project(root)
    project = project_w.session.project
    queue = project.names()
    train.device_combo.setCurrentText("cpu")
    train.seconds_spin.setValue(0)  # a fixed number of steps
    train.iterations_spin.setValue(500)  # far more than the test waits for
    train.crop_spin.setValue(64)
    train.batch_spin.setValue(2)
    train.train_overrides = {"threads": 1, "warmup_iterations": 1}

    qtbot.mouseClick(train.retrain_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: train.progress_bar.format().startswith("Training")
                    and train.progress_bar.value() >= 1, timeout=60_000)
    qtbot.mouseClick(train.cancel_button, Qt.MouseButton.LeftButton)
    assert not train.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: train.job.done, timeout=60_000)  # long before the 500 steps
    assert train.job.outcome.cancelled

    assert train.retrain_button.isEnabled() and not train.cancel_button.isEnabled()
    assert train.last_result is None and train.job.outcome.cancelled
    assert [m["version"] for m in project.models()] == ["round-001"]  # kept, nothing registered
    assert sorted(p.name for p in project.models_dir.iterdir()) == []  # no temporary checkpoint left
    assert project.names() == queue
    assert any("cancelled" in m and "round-001 is kept" in m for m in notifications())
    assert "round-001" in train.model_label.text()


def test_error_in_the_worker_is_a_notification_and_buttons_come_back(panels, root, qtbot, notifications,
                                                                     monkeypatch):
    viewer, project_w, train = panels
    project_w.open_project(root)

    def broken(project, config, *, cancel=None):
        yield MessageEvent("starting")
        raise RuntimeError("boom in the worker")

    monkeypatch.setattr(train_module, "run_round", broken)
    job = train.retrain()
    assert job is not None and not train.retrain_button.isEnabled()
    qtbot.waitUntil(lambda: job.done, timeout=10_000)
    assert train.retrain_button.isEnabled() and not train.cancel_button.isEnabled()
    assert isinstance(job.outcome.error, RuntimeError)
    assert any("boom in the worker" in m for m in notifications())
    assert "boom in the worker" in train.status_label.text()

    # CUDA/MPS out of memory: advice, not a traceback
    oom_type = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError

    def out_of_memory(project, config, *, cancel=None):
        yield MessageEvent("starting")
        raise oom_type("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(train_module, "run_round", out_of_memory)
    n = len(notifications())
    job = train.retrain()
    qtbot.waitUntil(lambda: job.done, timeout=10_000)
    new = notifications()[n:]
    assert len(new) == 1
    assert "out of memory" in new[0] and "'fast' preset" in new[0] and "smaller batch" in new[0]
    assert "Traceback" not in new[0] and "Tried to allocate" not in new[0]
    assert train.retrain_button.isEnabled()


def test_round_finishing_mid_edit_keeps_the_image_then_shift_n(panels, root, qtbot, notifications,
                                                               monkeypatch):
    viewer, project_w, train = panels
    project_w.open_project(root)
    session = get_session(viewer)
    project = session.project
    editing = session.current_name
    session.labels_layer.paint((50, 50), 1)  # a brush stroke: the annotator is at work
    monkeypatch.setattr(train_module, "run_round", _fake_round((slice(10, 20), slice(10, 30))))

    _press(qtbot, viewer, Qt.Key.Key_R)  # Shift+R starts the round from the canvas
    assert train.job is not None
    qtbot.waitUntil(lambda: train.job.done, timeout=10_000)
    ranking = train.last_result.ranking
    assert ranking[0] != editing
    assert session.current_name == editing  # not yanked away
    assert session.labels_layer.data[50, 50] == 1
    assert any("Shift+N" in m and ranking[0] in m for m in notifications())
    table = [project_w.table.item(r, 0).text() for r in range(project_w.table.rowCount())]
    assert table == project.names() and table[:len(ranking)] == ranking

    _press(qtbot, viewer, Qt.Key.Key_N)  # Next suggestion: the top of the new queue
    assert session.current_name == ranking[0] and session.mask_source == "suggestion"
    expected = np.zeros((96, 96), dtype=bool)
    expected[10:20, 10:30] = True
    np.testing.assert_array_equal(np.asarray(session.labels_layer.data) > 0, expected)
    assert project.has_draft(editing)  # the edits were saved on the way
    # the round's losses and model are stored for the next session
    assert project.get_meta(LOSSES_META)["version"] == "round-001"
    assert project.get_meta(SETTINGS_META)["iterations"] == train.iterations_spin.value()


def test_untouched_image_is_replaced_by_the_top_one(panels, root, qtbot, monkeypatch):
    viewer, project_w, train = panels
    project_w.open_project(root)
    session = get_session(viewer)
    monkeypatch.setattr(train_module, "run_round", _fake_round((slice(0, 5), slice(0, 96))))
    train.retrain()
    qtbot.waitUntil(lambda: train.job.done, timeout=10_000)
    top = train.last_result.ranking[0]
    assert session.current_name == top and session.mask_source == "suggestion"
    assert (np.asarray(session.labels_layer.data) > 0)[0:5].all()
    # accept & next after a re-ranking goes on with the top of the new queue
    session.accept_and_next()
    assert session.current_name == train.last_result.ranking[1]


def test_reopening_a_project_resumes_model_plot_and_settings(make_napari_viewer, root, qtbot):
    with Project.open(root) as p:
        p.add_model("round-001", p.models_dir / "round_001.pt", round=1,
                    metrics={"f1": 0.5, "crack_iou": 0.4, "n_images": 1})
        p.add_model("round-002", p.models_dir / "round_002.pt", round=2,
                    metrics={"f1": 0.625, "crack_iou": 0.45, "n_images": 2})
        p.set_meta(LOSSES_META, {"version": "round-002", "title": "Round 2 losses",
                                 "curves": {"total": [[1, 0.9], [2, 0.7], [3, 0.5]]}})
        p.set_meta(SETTINGS_META, {"iterations": 7, "strategy": "entropy", "crop_size": 96})
    viewer = make_napari_viewer()
    _, project_w = viewer.window.add_plugin_dock_widget(PLUGIN, "Crack project")
    _, train = viewer.window.add_plugin_dock_widget(PLUGIN, "Train")
    assert isinstance(train, TrainWidget)
    assert train.model_label.text() == "No project open"
    project_w.open_project(root)
    text = train.model_label.text()
    assert "round-002" in text and "round 2" in text and "F1 0.62" in text and "2 image(s)" in text
    assert train.plot.rounds == [1, 2]
    assert train.plot.round_metrics["f1"] == [0.5, 0.625]
    assert train.plot.losses == {"total": [(1.0, 0.9), (2.0, 0.7), (3.0, 0.5)]}
    assert train.plot.loss_title == "Round 2 losses"
    assert train.iterations_spin.value() == 7 and train.crop_spin.value() == 96
    assert train.strategy_combo.currentText() == "entropy"
    train.plot.redraw()  # draws without error
    assert train.plot.redraw_count >= 1


def test_device_shown_and_config_built(panels, root, qtbot, notifications):
    viewer, project_w, train = panels
    qtbot.waitUntil(lambda: "Detecting" not in train.device_label.text(), timeout=30_000)
    if torch.cuda.is_available():
        assert train.device_label.text().startswith("Runs on the GPU — CUDA: ")
    else:
        assert train.device_label.text().startswith("Runs on the CPU — CPU (")
        assert train.device_label.text().endswith("no GPU found")
    train.mode_combo.setCurrentText("supervised")
    train.strategy_combo.setCurrentText("entropy")
    train.heldout_spin.setValue(0.25)
    train.seed_spin.setValue(3)
    config = train.round_config()
    assert config.train.mode == "supervised" and config.strategy == "entropy"
    assert config.heldout_fraction == 0.25 and config.seed == 3 and config.train.seed == 3
    assert config.train.iterations == train.iterations_spin.value()
    # a round is sized in seconds by default (a minute on a CPU); 0 means a fixed number of steps
    if not torch.cuda.is_available():
        assert train.seconds_spin.value() == 60 and config.train.seconds == 60.0
    train.seconds_spin.setValue(0)
    assert train.round_config().train.seconds is None
    train.seconds_spin.setValue(45)
    assert train.round_config().train.seconds == 45.0
    assert train.settings()["seconds"] == 45
    # local encoder weights, checked when the round is configured
    weights = root.parent / "resnet18.pth"
    train.weights_edit.setText(str(weights))
    with pytest.raises(CheckpointError, match="does not exist"):
        train.round_config()
    weights.write_bytes(b"")
    assert train.round_config().train.encoder_weights == str(weights)
    train.weights_edit.setText("")
    assert train.round_config().train.encoder_weights is None
    assert "Shift+R" in train.retrain_button.toolTip()
    # Retrain without a project: a warning, no job
    assert train.retrain() is None
    # an invalid setting is a notification naming the valid values, not a traceback
    project_w.open_project(root)
    train.crop_spin.setValue(100)
    with pytest.raises(ConfigError, match="multiple of 16"):
        train.round_config()
    assert train.retrain() is None and train.retrain_button.isEnabled()
    assert any("multiple of 16" in m for m in notifications())


def test_napari_activity_progress_when_asked(panels, root, qtbot, monkeypatch):
    from napari.utils import progress

    viewer, project_w, train = panels
    project_w.open_project(root)
    monkeypatch.setattr(train_module, "run_round", _fake_round((slice(0, 5), slice(0, 5))))
    train.activity_check.setChecked(True)
    job = train.retrain()
    assert job._pbar is not None and job._pbar in progress._all_instances
    qtbot.waitUntil(lambda: job.done, timeout=10_000)
    assert job._pbar is None and not any("Crack AL" in p.desc for p in progress._all_instances)
    train.activity_check.setChecked(False)
    monkeypatch.setattr(train_module, "run_round", _fake_round((slice(0, 5), slice(0, 5))))
    job = train.retrain()
    assert job is not None and job._pbar is None
    qtbot.waitUntil(lambda: job.done, timeout=10_000)
    assert job.outcome.error is None and train.last_result.model_version == "round-002"


def test_round_summary_says_what_changed_and_what_it_rests_on():
    from napari_crack_al.core.active.round import RoundFinished
    from napari_crack_al.widgets.train_progress import round_summary

    def finished(f1, n, kept=False):
        metrics = {} if f1 is None else {"f1": f1, "n_images": n}
        return RoundFinished(4, "round-004", None, metrics, [], 1.0, 1.0, heldout=["x"] * n,
                             kept_previous=kept)

    previous = {"version": "round-003", "metrics": {"f1": 0.61}}
    assert round_summary(finished(0.66, 5), previous, "sample_0012") == \
        "round-004 ready: held-out F1 0.61 \u2192 0.66; next: sample_0012"
    few = round_summary(finished(0.66, 1), previous, "sample_0012")
    assert "measured on 1 held-out image only" in few
    kept = round_summary(finished(0.5, 5, kept=True), previous, None)
    assert "weights are kept" in kept and kept.endswith("no image waits in the queue")
    first = round_summary(finished(None, 0), None, "a")
    assert "no held-out image yet" in first and "F1" not in first.split("(")[0]
    # a round whose masks would cost more than the detector's says so
    from dataclasses import replace

    from napari_crack_al.core.active.suggestion_source import SourceChoice

    chosen = replace(finished(0.4, 5), source=SourceChoice("detector", 1.21, 0.74, 1))
    text = round_summary(chosen, previous, "a")
    assert "the tuned detector" in text and "1.21" in text and "0.74" in text
    plain = replace(finished(0.66, 5), source=SourceChoice("model", 0.5, 0.7, 1))
    assert round_summary(plain, previous, "sample_0012") == \
        "round-004 ready: held-out F1 0.61 \u2192 0.66; next: sample_0012"
