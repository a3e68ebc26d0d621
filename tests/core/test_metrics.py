"""Pixel, tolerance and ODS/OIS metrics on hand-made masks."""

from __future__ import annotations

import numpy as np
import pytest

from napari_crack_al.core.metrics import (
    DEFAULT_THRESHOLDS,
    PixelMetrics,
    ToleranceMetrics,
    confusion,
    evaluate_masks,
    ods_ois,
    tolerance_counts,
)


def _line(row: int, shape=(32, 32), cols=(4, 28)) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[row, cols[0] : cols[1]] = True
    return m


def test_confusion_by_hand():
    pred = np.array([[1, 1, 0], [0, 0, 0]], bool)
    gt = np.array([[1, 0, 1], [0, 0, 1]], bool)
    assert confusion(pred, gt) == (1, 1, 2, 2)
    valid = np.array([[1, 1, 1], [1, 1, 0]], bool)
    assert confusion(pred, gt, valid) == (1, 1, 1, 2)
    with pytest.raises(ValueError):
        confusion(pred, gt[:, :2])


def test_pixel_metrics_micro_average():
    pm = PixelMetrics()
    pm.update(np.array([[1, 1, 0, 0]]), np.array([[1, 0, 0, 0]]))  # tp 1 fp 1
    pm.update(np.array([[0, 0, 0, 1]]), np.array([[1, 1, 0, 1]]))  # tp 1 fn 2
    assert (pm.tp, pm.fp, pm.fn, pm.tn, pm.n_images) == (2, 1, 2, 3, 2)
    assert pm.precision == pytest.approx(2 / 3)
    assert pm.recall == pytest.approx(2 / 4)
    assert pm.iou == pytest.approx(2 / 5)
    assert pm.f1 == pytest.approx(2 * 2 / (2 * 2 + 1 + 2))


def test_perfect_prediction():
    gt = _line(10) | _line(20)
    out = evaluate_masks([gt], [gt])
    keys = ("crack_iou", "precision", "recall", "f1", "f1_tol2", "precision_tol2", "recall_tol2")
    for key in keys:
        assert out[key] == pytest.approx(1.0), key
    assert out["n_images"] == 1


def test_shift_by_one_pixel_is_tolerated_shift_by_three_is_not():
    gt = _line(10)
    one = evaluate_masks([_line(11)], [gt])
    assert one["f1"] < 1.0
    assert one["f1_tol2"] == pytest.approx(1.0)
    two = evaluate_masks([_line(12)], [gt])
    assert two["f1_tol2"] == pytest.approx(1.0)
    three = evaluate_masks([_line(13)], [gt])
    assert three["f1_tol2"] == 0.0
    assert three["precision_tol2"] == 0.0 and three["recall_tol2"] == 0.0


def test_thick_masks_are_thinned():
    gt = np.zeros((32, 32), bool)
    gt[8:13, 2:30] = True  # a 5-px wide crack
    pred = np.zeros_like(gt)
    pred[11:13, 2:30] = True  # only its lower edge, 2 px wide
    pc, pt, gf, gtot = tolerance_counts(pred, gt)
    assert pc == pt > 0  # the predicted skeleton lies on the crack
    assert gf == gtot > 0  # the GT skeleton (row 10) is within 2 px of the prediction
    # pixel metrics see the missing width
    assert evaluate_masks([pred], [gt])["recall"] == pytest.approx(2 / 5)


def test_empty_cases():
    empty = np.zeros((16, 16), bool)
    line = _line(5, shape=(16, 16), cols=(2, 14))
    both = evaluate_masks([empty], [empty])
    assert all(both[k] == 1.0 for k in ("crack_iou", "precision", "recall", "f1", "f1_tol2"))
    fp = evaluate_masks([line], [empty])
    assert fp["precision"] == 0.0 and fp["f1"] == 0.0 and fp["crack_iou"] == 0.0
    assert fp["f1_tol2"] == 0.0 and fp["precision_tol2"] == 0.0
    fn = evaluate_masks([empty], [line])
    assert fn["recall"] == 0.0 and fn["f1"] == 0.0 and fn["recall_tol2"] == 0.0
    # an empty image adds nothing to the micro sums of a set
    mixed = evaluate_masks([empty, line], [empty, line])
    assert mixed["f1"] == 1.0 and mixed["n_images"] == 2
    assert ToleranceMetrics().f1 == 1.0


def test_valid_mask_excludes_pixels():
    gt = _line(10)
    pred = gt | _line(20)
    valid = np.ones_like(gt)
    valid[18:, :] = False  # the false line lies in an invalid region
    assert evaluate_masks([pred], [gt], valid=[valid])["precision"] == 1.0
    assert evaluate_masks([pred], [gt])["precision"] == pytest.approx(0.5)


def test_ods_ois_known_thresholds():
    shape = (24, 32)
    true_a, false_a = _line(4, shape), _line(16, shape)
    prob_a = 0.8 * true_a + 0.6 * false_a  # clean above 0.6
    true_b, false_b = _line(6, shape), _line(18, shape)
    prob_b = 0.4 * true_b + 0.2 * false_b  # clean in [0.2, 0.4)
    out = ods_ois([prob_a, prob_b], [true_a, true_b], thresholds=[0.3, 0.5, 0.7])
    # t=0.3: P = 2/3, R = 1 -> 0.8 ; t=0.5: P = R = 1/2 ; t=0.7: P = 1, R = 1/2 -> 2/3
    assert out["f1_per_threshold"] == pytest.approx([0.8, 0.5, 2 / 3])
    assert out["ods"] == pytest.approx(0.8)
    assert out["ods_threshold"] == pytest.approx(0.3)
    assert out["ods_precision"] == pytest.approx(2 / 3) and out["ods_recall"] == 1.0
    assert out["ois"] == pytest.approx(1.0)  # each image has a threshold that separates it


def test_ods_single_image_best_threshold_and_defaults():
    shape = (24, 32)
    gt = _line(5, shape)
    prob = 0.9 * gt + 0.45 * _line(15, shape) + 0.05
    out = ods_ois([prob], [gt])
    assert len(out["thresholds"]) == len(DEFAULT_THRESHOLDS) == 50
    assert out["ods"] == pytest.approx(1.0)
    assert 0.5 <= out["ods_threshold"] < 0.95
    assert out["ois"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        ods_ois([prob], [])


def test_effort_lengths_count_crack_length_to_draw_and_to_erase():
    from napari_crack_al.core.metrics import effort_lengths

    truth = np.zeros((60, 60), bool)
    truth[10, 5:45] = True  # a 40 px crack
    shifted = np.roll(truth, 1, axis=0)  # a 1-px boundary shift: no work in length
    assert effort_lengths(shifted, truth) == (0, 0)
    assert effort_lengths(None, truth) == (40, 0)  # drawn from scratch
    half = truth.copy()
    half[10, 25:45] = False
    false = truth.copy()
    false[40, 10:30] = True  # a 20 px false crack besides the true one
    missed, _ = effort_lengths(half, truth)
    assert 18 <= missed <= 20
    assert effort_lengths(false, truth) == (0, 20)
    assert effort_lengths(np.zeros_like(truth), np.zeros_like(truth)) == (0, 0)
