"""The detector tuned on a project's accepted masks: lowest edit fraction, or off."""

from __future__ import annotations

import numpy as np

from napari_crack_al.core.detector import (
    BUILTIN_VERSION,
    DetectorConfig,
    DetectorTuned,
    calibrate_detector,
    detect_cracks,
    iter_builtin_suggestions,
    iter_tune_detector,
    stored_calibration,
)
from napari_crack_al.core.detector.calibrate import DETECTOR_META_KEY, calibration_grid
from napari_crack_al.core.io.mask_io import read_mask
from napari_crack_al.core.project import Project
from napari_crack_al.core.sample_project import write_sample_images


def _edit(mask, truth):
    return np.count_nonzero(mask != truth) / truth.sum()


def _lines(seed: int, shallow: float):
    """A deep true crack (column 40) and two shallow dark lines that are not cracks."""
    rng = np.random.default_rng(seed)
    img = rng.normal(1000.0, 2.0, (160, 160)).astype(np.float32)
    img[:, 40:42] -= 30.0
    img[:, 90:92] -= shallow
    img[:, 130:132] -= shallow
    truth = np.zeros(img.shape, bool)
    truth[:, 40:42] = True
    return img, truth


def _drive(gen):
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return events, stop.value


def test_grid_holds_the_defaults_and_is_valid():
    grid = calibration_grid()
    assert DetectorConfig() in grid and len(grid) == len(set(grid)) >= 30
    assert all(c.low <= c.high for c in grid)


def test_tuning_drops_what_the_project_does_not_call_a_crack():
    samples = [(*_lines(s, 9.0)[:1], None, _lines(s, 9.0)[1]) for s in (0, 1)]
    img, truth = _lines(5, 9.0)
    default = detect_cracks(img).mask
    assert default[:, 88:94].any(), "the shallow lines must fool the defaults for this test"
    found = calibrate_detector(samples)
    assert found is not None and found.n_images == 2 and found.useful
    assert found.edit_fraction < found.default_edit_fraction
    tuned = detect_cracks(img, config=found.config).mask
    assert _edit(tuned, truth) < _edit(default, truth) and not tuned[:, 88:94].any()


def test_the_detector_is_off_when_its_masks_cost_more_than_drawing():
    rng = np.random.default_rng(3)
    img = rng.normal(1000.0, 2.0, (160, 160)).astype(np.float32)
    img[:, 90:92] -= 30.0  # a dark line the annotator did not call a crack
    truth = np.zeros(img.shape, bool)
    truth[20:140, 40:42] = True  # a crack the image does not show
    found = calibrate_detector([(img, None, truth)])
    assert found is not None and not found.useful and found.edit_fraction >= 1.0
    assert found.describe().startswith("Detector off")
    assert calibrate_detector([(img, None, np.zeros_like(truth))]) is None  # nothing to measure


def _project_with_suggestions(tmp_path):
    root = tmp_path / "p"
    write_sample_images(root, n=5, size=128, seed=2)
    project = Project.create(root)
    _drive(iter_builtin_suggestions(project, store_probabilities=False))
    return root, project


def test_tuning_a_project_resuggests_only_untouched_detector_masks(tmp_path):
    root, project = _project_with_suggestions(tmp_path)
    with project:
        a, b, c, d, e = project.names()
        truth = read_mask(root / "ground_truth" / f"{a}.png")
        project.accept(a, truth)
        project.save_draft(b, np.zeros(project.image_shape(b), bool))
        project.set_suggestion(c, np.ones(project.image_shape(c), bool), "round-001")
        events, found = _drive(iter_tune_detector(project, store_probabilities=False))
        assert found is not None and found.n_images == 1
        assert any(isinstance(ev, DetectorTuned) for ev in events)
        assert stored_calibration(project) == found
        redone = [ev.name for ev in events if type(ev).__name__ == "SuggestionReady"]
        assert redone == [d, e]  # not the accepted, the drafted or the model-suggested image
        assert project.record(c).suggestion_model_version == "round-001"
        assert project.read_suggestion(c).all()
        assert project.record(d).suggestion_model_version == BUILTIN_VERSION


def test_an_off_detector_suggests_empty_masks(tmp_path):
    _, project = _project_with_suggestions(tmp_path)
    with project:
        a, b = project.names()[:2]
        ghost = np.zeros(project.image_shape(a), bool)
        ghost[10:120, 60:62] = True  # where the image shows no crack
        project.accept(a, ghost & ~project.read_suggestion(a))
        _, found = _drive(iter_tune_detector(project, store_probabilities=False))
        assert found is not None and not found.useful
        assert not project.read_suggestion(b).any()
        assert project.record(b).suggestion_model_version == BUILTIN_VERSION


def test_a_bad_stored_calibration_is_ignored(tmp_path):
    _, project = _project_with_suggestions(tmp_path)
    with project:
        project.set_meta(DETECTOR_META_KEY, {"config": {"high": -1}})
        assert stored_calibration(project) is None
        project.set_meta(DETECTOR_META_KEY, [1, 2])
        assert stored_calibration(project) is None
