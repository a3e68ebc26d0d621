"""The training-free crack detector and the first suggestions it makes for a new project."""

from __future__ import annotations

import numpy as np
import pytest

from napari_crack_al.core.detector import (
    BUILTIN_VERSION,
    DetectorConfig,
    SuggestionReady,
    detect_cracks,
    iter_builtin_suggestions,
)
from napari_crack_al.core.errors import ConfigError
from napari_crack_al.core.metrics import evaluate_masks
from napari_crack_al.core.project import ImageStatus, Project
from napari_crack_al.core.sample_project import write_sample_images
from napari_crack_al.core.synthetic import SyntheticConfig, generate_range_image


def _synthetic(n: int, series: int = 0, size: int = 256):
    out = []
    for i in range(n):
        s = generate_range_image((series, i), SyntheticConfig(size=size))
        data = s.range_image.astype(np.float32)
        out.append((data, data != 0, s.mask))
    return out


def test_tolerance_f1_on_a_fixed_synthetic_set():
    """Six 256² synthetic range images (series 0, with distractors): tolerance F1 >= 0.70.

    Measured 0.89 (pixel F1 0.80) on the development machine; the settings were chosen on other
    synthetic images and uav75's training split (scripts/tune_detector.py). An empty suggestion
    scores 0, and a detector whose sign, scales or thresholds broke falls far below the bar,
    while the numbers do not depend on the machine (numpy and scikit-image, no randomness).
    """
    images = _synthetic(6)
    preds = [detect_cracks(d, v).mask for d, v, _ in images]
    m = evaluate_masks(preds, [g for _, _, g in images], valid=[v for _, v, _ in images])
    assert m["f1_tol2"] >= 0.70, m
    assert m["f1"] >= 0.5, m


def test_only_dark_lines_are_cracks():
    rng = np.random.default_rng(0)
    flat = rng.normal(1000.0, 2.0, (160, 160)).astype(np.float32)
    assert not detect_cracks(flat).mask.any()  # texture alone: nothing
    dark, bright = flat.copy(), flat.copy()
    dark[:, 80:82] -= 25.0
    bright[:, 80:82] += 25.0
    found = detect_cracks(dark)
    assert found.mask[:, 78:84].sum() > 100 and found.mask[:, :70].sum() == 0
    assert found.score.shape == flat.shape and 0.0 <= found.score.min() <= found.score.max() <= 1.0
    assert not detect_cracks(bright).mask.any()
    # invalid pixels are never crack
    valid = np.ones_like(flat, bool)
    valid[:80] = False
    assert not detect_cracks(dark, valid).mask[:80].any()


def test_large_images_are_analysed_at_a_reduced_scale():
    rng = np.random.default_rng(1)
    img = rng.normal(1000.0, 2.0, (300, 200)).astype(np.float32)
    img[:, 100:104] -= 30.0
    found = detect_cracks(img, config=DetectorConfig(max_side=150))
    assert found.mask.shape == img.shape and found.mask[:, 98:106].any(axis=1).mean() > 0.8


def test_config_errors():
    with pytest.raises(ConfigError, match="sigmas"):
        DetectorConfig(sigmas=())
    with pytest.raises(ConfigError, match="low .* must not exceed high"):
        DetectorConfig(low=5.0, high=4.0)
    with pytest.raises(ConfigError, match="min_length"):
        DetectorConfig(min_length=0)
    with pytest.raises(ValueError, match="2-D image"):
        detect_cracks(np.zeros((3, 4, 5)))


def test_first_suggestions_of_a_project(tmp_path):
    root = tmp_path / "p"
    write_sample_images(root, n=3, size=128, seed=2)
    with Project.create(root) as project:
        a, b, c = project.names()
        project.accept(a, np.zeros(project.image_shape(a), bool))
        project.save_draft(b, np.zeros(project.image_shape(b), bool))
        events = []
        gen = iter_builtin_suggestions(project)
        while True:
            try:
                events.append(next(gen))
            except StopIteration as stop:
                done = stop.value
                break
        # only the image with nothing to start from gets a suggestion
        assert done == [c]
        assert [e.name for e in events if isinstance(e, SuggestionReady)] == [c]
        rec = project.record(c)
        assert rec.status == ImageStatus.SUGGESTED and rec.suggestion_model_version == BUILTIN_VERSION
        assert project.record(b).suggestion_model_version is None
        assert project.record(a).status == ImageStatus.ANNOTATED
        # a second pass has nothing left to do
        assert list(iter_builtin_suggestions(project))[-1].done == 3
