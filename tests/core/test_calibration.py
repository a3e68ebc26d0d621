"""Threshold calibration: the held-out F1 maximiser, on hand-made probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from napari_crack_al.core.calibration import (
    CALIBRATION_GRID,
    DEFAULT_THRESHOLD,
    calibrate_threshold,
    model_threshold,
    threshold_counts,
)
from napari_crack_al.core.metrics import evaluate_masks


def _hand_made() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Two images whose crack pixels sit at 0.22-0.30 and whose background mostly below 0.2."""
    truth1 = np.zeros((20, 20), bool)
    truth1[5, 2:18] = True
    prob1 = np.full((20, 20), 0.05, np.float32)
    prob1[5, 2:10] = 0.30
    prob1[5, 10:18] = 0.22
    prob1[12, 4:8] = 0.25  # four false positives above 0.2
    truth2 = np.zeros((20, 20), bool)
    truth2[:, 9] = True
    prob2 = np.full((20, 20), 0.10, np.float32)
    prob2[:, 9] = 0.28
    prob2[0, 0:3] = 0.6  # three confident false positives
    return [prob1, prob2], [truth1, truth2]


def test_the_choice_is_the_f1_maximiser_of_the_grid():
    probs, truths = _hand_made()
    choice = calibrate_threshold(probs, truths)
    assert choice is not None and choice.n_images == 2
    by_metrics = [evaluate_masks([p > t for p in probs], truths)["f1"] for t in CALIBRATION_GRID]
    assert choice.f1 == pytest.approx(max(by_metrics))
    assert np.allclose(choice.f1s, by_metrics)
    # every crack pixel and only the 7 false positives above 0.22 are kept for cuts between
    # the background of image 2 (0.10, as float32 just above 0.10) and 0.22: a plateau of
    # 0.11 ... 0.21, of which the one nearest 0.5 is chosen
    best = [t for t, f in zip(CALIBRATION_GRID, by_metrics) if f == max(by_metrics)]
    assert best == pytest.approx(np.round(np.arange(0.11, 0.215, 0.01), 2))
    assert choice.f1 == pytest.approx(2 * 36 / (2 * 36 + 7))
    assert choice.threshold == pytest.approx(0.21)
    # ... which is far from the 0.5 a fixed cut would use: there F1 is 0
    assert evaluate_masks([p > 0.5 for p in probs], truths)["f1"] == 0.0


def test_counts_match_direct_counting_and_valid_masks():
    rng = np.random.default_rng(0)
    prob = rng.random((50, 40)).astype(np.float32)
    truth = rng.random((50, 40)) < 0.1
    valid = rng.random((50, 40)) < 0.8
    tp, fp, cracks = threshold_counts(prob, truth, CALIBRATION_GRID, valid)
    for k, t in enumerate(CALIBRATION_GRID):
        pred = (prob > t) & valid
        assert tp[k] == np.count_nonzero(pred & truth & valid)
        assert fp[k] == np.count_nonzero(pred & ~truth)
    assert cracks == np.count_nonzero(truth & valid)


def test_nothing_to_calibrate_on():
    empty = [np.zeros((8, 8), bool)]
    assert calibrate_threshold([np.full((8, 8), 0.3, np.float32)], empty) is None
    assert calibrate_threshold([], []) is None
    with pytest.raises(ValueError, match="probability maps but"):
        calibrate_threshold([np.zeros((8, 8))], [])
    with pytest.raises(ValueError, match="increasing"):
        calibrate_threshold([np.zeros((8, 8))], [np.ones((8, 8), bool)], thresholds=[0.5, 0.4])


def test_model_threshold_reads_valid_values_only():
    assert model_threshold({"threshold": 0.31}) == pytest.approx(0.31)
    for bad in ({}, {"threshold": None}, {"threshold": 1.5}, {"threshold": True},
                {"threshold": "0.3"}, None):
        assert model_threshold(bad) == DEFAULT_THRESHOLD
