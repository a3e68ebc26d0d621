"""Editing tools for thin cracks (core): trace between clicks, widths, segments, gap bridging."""

from __future__ import annotations

import numpy as np
import pytest

from napari_crack_al.core.metrics import evaluate_masks
from napari_crack_al.core.synthetic import SyntheticConfig, generate_range_image
from napari_crack_al.core.trace import (
    crack_segments,
    path_mask,
    path_width,
    segment_at,
    trace_between,
    trace_cost,
    trace_plan,
)


def test_tracing_the_ground_truth_reproduces_it():
    """Every crack traced from its ends and branch points: tolerance F1 >= 0.9, width within 1 px.

    Four 512² synthetic range images (series 0, with distractors), 365 clicks. Measured on
    the development machine: tolerance F1 0.94, width 3.33 px for a true 3.12 px.
    """
    preds, truths = [], []
    for i in range(4):
        s = generate_range_image((0, i), SyntheticConfig(size=512))
        image = s.range_image.astype(np.float32)
        valid = image != 0
        cost = trace_cost(image, valid)
        traced = np.zeros_like(s.mask)
        for clicks in trace_plan(s.mask):
            for a, b in zip(clicks[:-1], clicks[1:]):
                path = trace_between(cost, a, b)
                traced |= path_mask(s.mask.shape, path,
                                    path_width(image, path, fallback=3, valid=valid))
        preds.append(traced)
        truths.append(s.mask)
    m = evaluate_masks(preds, truths)
    assert m["f1_tol2"] >= 0.9, m
    assert abs(m["width_error"]) <= 1.0, m


def _dark_line_image(shape=(80, 120), row=40, depth=30.0, width=3):
    rng = np.random.default_rng(0)
    img = rng.normal(1000.0, 2.0, shape).astype(np.float32)
    img[row - width // 2:row - width // 2 + width, 10:110] -= depth
    return img


def test_a_trace_follows_the_crack_not_the_straight_line():
    img = _dark_line_image()
    img[:, 60] = 1000.0  # (no effect: the line is dark at every column)
    cost = trace_cost(img)
    path = trace_between(cost, (40, 12), (40, 108))
    assert path[0].tolist() == [40, 12] and path[-1].tolist() == [40, 108]
    assert np.abs(path[:, 0] - 40).max() <= 1
    steps = np.abs(np.diff(path, axis=0)).max(axis=1)
    assert (steps == 1).all()  # 8-connected
    assert path_width(img, path, fallback=7) == pytest.approx(3, abs=1)
    # no dark line under the path: the caller's fallback (the brush size)
    flat = np.full((80, 120), 1000.0, np.float32)
    assert path_width(flat, trace_between(trace_cost(flat), (5, 5), (70, 100)), fallback=7) == 7
    assert trace_between(cost, (3.4, 4.6), (3.4, 4.6)).tolist() == [[3, 5]]


def test_a_trace_through_a_gap_closes_it():
    img = _dark_line_image()
    suggestion = np.zeros(img.shape, bool)
    suggestion[39:42, 10:50] = True
    suggestion[39:42, 70:110] = True  # a 20 px gap in the suggestion
    from scipy import ndimage

    assert ndimage.label(suggestion)[1] == 2
    path = trace_between(trace_cost(img), (40, 49), (40, 70))
    bridged = suggestion | path_mask(img.shape, path, path_width(img, path, fallback=3))
    assert ndimage.label(bridged, structure=np.ones((3, 3)))[1] == 1
    assert bridged[39:42, 50:70].all()


def _t_crack() -> np.ndarray:
    m = np.zeros((60, 60), bool)
    m[20:23, 5:55] = True  # the bar
    m[23:55, 29:32] = True  # the stem
    return m


def test_segments_and_removing_one():
    m = _t_crack()
    seg = crack_segments(m)
    assert set(np.unique(seg)) == {0, 1, 2, 3}  # left arm, right arm, stem
    assert ((seg > 0) == m).all()
    stem = segment_at(m, (45, 30))
    assert stem.any() and (stem <= m).all()
    assert stem[40:55, 29:32].all() and not stem[20:23, 5:20].any()
    assert np.array_equal(stem, seg == seg[45, 30])  # exactly the segment's pixels
    left = segment_at(m, (21, 8))
    assert left[20:23, 5:20].all() and not left[20:23, 40:55].any() and not left[45, 30]
    rest = m & ~left
    assert rest[20:23, 40:55].all() and rest[40:55, 29:32].all()
    # a click a few pixels away snaps to the crack; far away picks nothing
    assert np.array_equal(segment_at(m, (47, 34)), stem)
    assert not segment_at(m, (5, 5)).any()
    # the modifier: the whole connected crack
    other = np.zeros_like(m)
    other[50:53, 45:58] = True
    both = m | other
    assert np.array_equal(segment_at(both, (45, 30), whole=True), m)


def _segments_per_crack(mask: np.ndarray) -> list[int]:
    from napari_crack_al.core.export.measurements import label_cracks

    labels, n = label_cracks(mask)
    seg = crack_segments(mask)
    return [len(np.unique(seg[labels == lab])) for lab in range(1, n + 1)]


def _y_with_a_spur() -> np.ndarray:
    """A Y crack 3 px wide whose stem has a 1-px bump (a thinning spur shorter than the width)."""
    m = np.zeros((80, 80), bool)
    m[10:40, 38:41] = True  # stem
    m[25, 41] = True  # bump: a spur of the skeleton, not a branch
    for k in range(30):
        m[40 + k, 38 - k:41 - k] = True  # left arm
        m[40 + k, 38 + k:41 + k] = True  # right arm
    return m


def test_the_measurements_and_the_editing_tools_share_one_segment_graph():
    """The segments one click removes are the segments the export counts, crack by crack."""
    from napari_crack_al.core.export.measurements import measure_cracks

    masks = [_t_crack(), _y_with_a_spur()]
    masks += [generate_range_image((0, i), SyntheticConfig(size=256)).mask for i in range(4)]
    for mask in masks:
        counted = [c.n_segments for c in measure_cracks(mask)]
        assert _segments_per_crack(mask) == counted
    assert [c.n_segments for c in measure_cracks(_t_crack())] == [3]
    assert [c.n_segments for c in measure_cracks(_y_with_a_spur())] == [3]  # the bump is no segment
    seg = crack_segments(_y_with_a_spur())
    assert ((seg > 0) == _y_with_a_spur()).all()  # every crack pixel in a segment
