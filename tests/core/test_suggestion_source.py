"""A round suggests the cheapest source on its held-out images: model, tuned detector or none."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from napari_crack_al.core.active.suggestion_source import (
    SourceChoice,
    iter_apply_source,
    iter_choose_source,
    pick_source,
)
from napari_crack_al.core.detector import BUILTIN_VERSION, DetectorConfig, DetectorCalibration
from napari_crack_al.core.detector.calibrate import DETECTOR_META_KEY
from napari_crack_al.core.events import drain
from napari_crack_al.core.project import ImageStatus, Project
from napari_crack_al.core.sample_project import write_sample_images
from napari_crack_al.core.training.data import TrainingImage


@pytest.mark.parametrize("model, detector, expected", [
    (0.6, 0.8, "model"), (0.9, 0.7, "detector"), (1.3, 1.1, "none"), (1.3, None, "none"),
    (0.7, 0.7, "model"),       # ties go to the model
    (1.0, 1.0, "model"),       # ... also against drawing
    (1.2, 1.0, "detector"),    # the detector before none
    (math.nan, 0.1, "model"),  # not measured: the model
    (0.9, math.nan, "model"),
])
def test_pick_source_on_hand_made_edit_fractions(model, detector, expected):
    assert pick_source(model, detector) == expected


def test_describe_names_the_choice_and_the_numbers():
    text = SourceChoice("none", 1.43, None, 1).describe("round-001")
    assert "none" in text and "1.43" in text and "round-001" in text and "1 image" in text
    assert "0.62" in SourceChoice("model", 0.62, 0.8, 2).describe("round-002")


def _project(tmp_path, tuned_useful: bool | None):
    root = tmp_path / "p"
    write_sample_images(root, n=4, size=96, seed=1)
    project = Project.create(root)
    if tuned_useful is not None:
        project.set_meta(DETECTOR_META_KEY, DetectorCalibration(
            DetectorConfig(), 0.5 if tuned_useful else 1.5, 0.9, 2).to_dict())
    return project


def _fake_predict(probability):
    def predict(model, image, **kw):
        return SimpleNamespace(probability=probability(image))
    return predict


def test_choose_source_measures_paired_edit_fractions(tmp_path, monkeypatch):
    import napari_crack_al.core.inference as inference

    project = _project(tmp_path, tuned_useful=True)
    with project:
        name = project.names()[0]
        truth = np.zeros(project.image_shape(name), bool)
        truth[:, 40:43] = True
        item = TrainingImage(name, np.zeros(truth.shape, np.float32), np.ones(truth.shape, bool),
                             truth)
        # a model that paints everything: (H*W - crack) / crack pixels to fix
        monkeypatch.setattr(inference, "predict_image",
                            _fake_predict(lambda im: np.ones(im.shape, np.float32)))
        _, choice = drain(iter_choose_source(project, None, [item], 0.5))
        assert choice.model_edit == pytest.approx((truth.size - truth.sum()) / truth.sum())
        assert choice.detector_edit is not None and choice.source != "model"
        # a perfect model wins
        monkeypatch.setattr(inference, "predict_image",
                            _fake_predict(lambda im: truth.astype(np.float32)))
        _, choice = drain(iter_choose_source(project, None, [item], 0.5))
        assert choice.model_edit == 0.0 and choice.source == "model"


def test_an_off_detector_is_no_candidate(tmp_path, monkeypatch):
    import napari_crack_al.core.inference as inference

    project = _project(tmp_path, tuned_useful=False)
    with project:
        name = project.names()[0]
        truth = np.zeros(project.image_shape(name), bool)
        truth[10:20, 10:20] = True
        item = TrainingImage(name, np.zeros(truth.shape, np.float32), np.ones(truth.shape, bool),
                             truth)
        monkeypatch.setattr(inference, "predict_image",
                            _fake_predict(lambda im: np.ones(im.shape, np.float32)))
        _, choice = drain(iter_choose_source(project, None, [item], 0.5))
        assert choice.detector_edit is None and choice.source == "none"


def test_apply_replaces_only_the_rounds_untouched_suggestions(tmp_path):
    project = _project(tmp_path, tuned_useful=True)
    with project:
        a, b, c, d = project.names()
        full = np.ones(project.image_shape(a), bool)
        for n in (a, b, c, d):
            project.set_suggestion(n, full, "round-002")
        project.accept(a, np.zeros_like(full))
        project.save_draft(b, full)
        project.set_suggestion(d, full, "round-001")  # an older model's file
        _, done = drain(iter_apply_source(project, SourceChoice("none", 1.2, None, 1), "round-002"))
        assert done == [c]
        assert not project.read_suggestion(c).any()
        assert project.record(c).suggestion_file_version == "round-002"
        assert project.read_suggestion(b).all() and project.read_suggestion(d).all()
        assert project.record(a).status == ImageStatus.ANNOTATED
        # the detector's masks come with its version
        project.set_suggestion(c, full, "round-003")
        _, done = drain(iter_apply_source(project, SourceChoice("detector", 1.2, 0.6, 1),
                                          "round-003"))
        assert done == [c] and project.record(c).suggestion_file_version == BUILTIN_VERSION
        assert not project.read_suggestion(c).all()
        assert drain(iter_apply_source(project, SourceChoice("model", 0.5, 0.6, 1),
                                       "round-003"))[1] == []
