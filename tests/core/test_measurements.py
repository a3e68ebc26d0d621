"""Crack measurements on hand-made shapes with known length, width and topology."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.draw import line

from napari_crack_al.core.errors import ConfigError, MaskError
from napari_crack_al.core.export.measurements import (
    ORIENTATIONS,
    label_cracks,
    measure_cracks,
    summarize_image,
)


def _one(mask, **kw):
    cracks = measure_cracks(mask, **kw)
    assert len(cracks) == 1, cracks
    return cracks[0]


def _hline(width=3, length=100, shape=(200, 200), row=50, col=20):
    m = np.zeros(shape, bool)
    m[row:row + width, col:col + length] = True
    return m


def test_horizontal_line_3px():
    c = _one(_hline())
    assert c.area_px == 300
    assert c.length_px == pytest.approx(100, abs=3)
    assert c.mean_width_px == pytest.approx(3.0, abs=0.5)
    assert c.max_width_px == pytest.approx(3.0, abs=0.5)
    assert (c.n_segments, c.n_branch_points, c.n_cycles) == (1, 0, 0)
    assert c.orientation == "transverse"
    assert c.angle_deg == pytest.approx(0.0, abs=1)
    assert c.bbox == (50, 20, 53, 120)
    assert c.length_mm is None and c.area_mm2 is None


def test_vertical_line_3px_is_longitudinal():
    c = _one(_hline().T)
    assert c.length_px == pytest.approx(100, abs=3)
    assert c.mean_width_px == pytest.approx(3.0, abs=0.5)
    assert c.orientation == "longitudinal"
    assert c.angle_deg == pytest.approx(90.0, abs=1)
    assert c.bbox == (20, 50, 120, 53)


@pytest.mark.parametrize("width", [1, 2, 4, 6])
@pytest.mark.parametrize("transpose", [False, True])
def test_line_widths_and_length(width, transpose):
    m = _hline(width=width)
    c = _one(m.T if transpose else m)
    assert c.length_px == pytest.approx(100, abs=3)
    assert c.mean_width_px == pytest.approx(width, abs=0.5)


def test_line_touching_the_image_border():
    m = np.zeros((20, 100), bool)
    m[0:3, :] = True
    c = _one(m)
    assert c.length_px == pytest.approx(100, abs=3)
    assert c.mean_width_px == pytest.approx(3.0, abs=0.5)


def test_diagonal_line_45_degrees():
    m = np.zeros((200, 200), bool)
    for i in range(100):  # 3 px wide along the rows, i.e. a 45 degree band
        m[20 + i, 20 + i - 1:20 + i + 2] = True
    c = _one(m)
    assert c.length_px == pytest.approx(100 * math.sqrt(2), rel=0.05)
    assert c.orientation == "diagonal"
    assert c.angle_deg == pytest.approx(45.0, abs=2)
    assert (c.n_segments, c.n_branch_points) == (1, 0)


def test_ring():
    yy, xx = np.mgrid[:200, :200]
    r = np.hypot(yy - 100, xx - 100)
    m = (r >= 29) & (r < 31)  # 2 px wide, centre line radius 30
    c = _one(m)
    assert c.length_px == pytest.approx(2 * math.pi * 30, rel=0.05)
    assert c.n_branch_points == 0
    assert c.n_cycles == 1
    assert c.n_segments == 1
    assert c.mean_width_px == pytest.approx(2.0, abs=0.5)
    assert c.orientation == "irregular"  # a ring has no principal axis


def test_cross_has_one_junction_and_four_segments():
    m = np.zeros((200, 200), bool)
    m[99:102, 40:160] = True
    m[40:160, 99:102] = True
    c = _one(m)
    assert c.n_branch_points == 1
    assert c.n_segments == 4
    assert c.n_cycles == 0
    assert c.length_px == pytest.approx(240, abs=6)
    assert c.mean_width_px == pytest.approx(3.0, abs=0.5)


def test_oblique_thick_crossing_still_one_junction():
    m = np.zeros((300, 300), bool)
    for a in (60, 120):
        t = math.radians(a)
        r, c = line(int(150 - 100 * math.sin(t)), int(150 - 100 * math.cos(t)),
                    int(150 + 100 * math.sin(t)), int(150 + 100 * math.cos(t)))
        m[r, c] = True
    m = ndi.binary_dilation(m, iterations=3)  # about 7 px wide
    c = _one(m)
    assert (c.n_branch_points, c.n_segments) == (1, 4)


def test_t_junction():
    m = _hline(length=200, shape=(200, 260))
    m[53:150, 100:103] = True
    c = _one(m)
    assert (c.n_branch_points, c.n_segments) == (1, 3)
    # the stem is measured from the bar's middle row
    assert c.length_px == pytest.approx(200 + 97 + 1, abs=6)


def test_grid_network_is_alligator():
    m = np.zeros((200, 200), bool)
    for k in range(20, 181, 30):
        m[k:k + 3, 20:183] = True
        m[20:183, k:k + 3] = True
    c = _one(m)
    assert c.orientation == "alligator"
    assert c.n_cycles == 25  # 5 x 5 closed cells
    assert c.n_branch_points >= 30
    assert c.mean_width_px == pytest.approx(3.0, abs=0.5)


def test_bumpy_outline_gives_no_spurious_branches():
    rng = np.random.default_rng(0)
    m = _hline(width=7, length=200, shape=(200, 260))
    m |= ndi.binary_dilation(m) & (rng.random(m.shape) < 0.3)
    c = _one(m)
    assert (c.n_branch_points, c.n_segments) == (0, 1)
    assert c.length_px == pytest.approx(200, abs=5)
    assert c.mean_width_px == pytest.approx(7.0, abs=1.0)


def test_small_hole_is_not_a_cycle():
    m = _hline(width=3, length=100)
    m[51, 60] = False  # one-pixel hole, under min_area
    c = _one(m)
    assert (c.n_cycles, c.n_branch_points, c.n_segments) == (0, 0, 1)


def test_island_inside_a_ring_is_its_own_crack():
    yy, xx = np.mgrid[:200, :200]
    r = np.hypot(yy - 100, xx - 100)
    m = ((r >= 29) & (r < 31)) | ((r < 5))
    cracks = measure_cracks(m)
    assert len(cracks) == 2
    ring = max(cracks, key=lambda c: c.area_px)
    blob = min(cracks, key=lambda c: c.area_px)
    assert ring.n_cycles == 1 and blob.n_cycles == 0


def test_pixel_size_conversion():
    m = _hline()
    px = _one(m)
    mm = _one(m, pixel_size_mm=0.25)
    assert mm.length_px == px.length_px
    assert mm.length_mm == pytest.approx(px.length_px * 0.25)
    assert mm.mean_width_mm == pytest.approx(px.mean_width_px * 0.25)
    assert mm.max_width_mm == pytest.approx(px.max_width_px * 0.25)
    assert mm.area_mm2 == pytest.approx(300 * 0.25 ** 2)


def test_min_area_and_labels():
    m = _hline()
    m[150:152, 150:152] = True  # 4 px speck
    assert len(measure_cracks(m)) == 1
    assert len(measure_cracks(m, min_area=4)) == 2
    labels, n = label_cracks(m, min_area=5)
    assert n == 1 and set(np.unique(labels)) == {0, 1} and labels[150, 150] == 0
    assert measure_cracks(np.zeros((10, 10), bool)) == []


def test_diagonal_neighbours_are_one_crack():
    m = np.zeros((50, 50), bool)
    m[10:20, 10:13] = True
    m[20:30, 13:16] = True  # touches the first only at a corner
    assert len(measure_cracks(m)) == 1


def test_integer_masks_are_accepted_and_bad_input_refused():
    m = _hline().astype(np.uint8) * 255
    assert _one(m).area_px == 300
    with pytest.raises(MaskError):
        measure_cracks(np.zeros((3, 4, 5), bool))
    with pytest.raises(MaskError):
        measure_cracks(np.zeros((10, 10), np.float32))
    with pytest.raises(ConfigError):
        measure_cracks(m, pixel_size_mm=-1.0)
    with pytest.raises(ConfigError):
        measure_cracks(m, min_area=-1)


def test_summary():
    m = np.zeros((200, 200), bool)
    m[20:23, 20:120] = True            # transverse, 100 x 3
    m[40:140, 150:155] = True          # longitudinal, 100 x 5
    cracks = measure_cracks(m, pixel_size_mm=0.5)
    s = summarize_image(cracks, image_shape=m.shape)
    assert s.n_cracks == 2
    assert s.total_area_px == 800
    assert s.crack_area_fraction == pytest.approx(800 / 40000)
    assert s.total_length_px == pytest.approx(200, abs=6)
    assert s.mean_width_px == pytest.approx(4.0, abs=0.5)  # length-weighted
    assert s.max_width_px == pytest.approx(5.0, abs=0.5)
    assert s.counts == {"longitudinal": 1, "transverse": 1, "diagonal": 0, "alligator": 0,
                        "irregular": 0}
    assert set(s.counts) == set(ORIENTATIONS)
    assert s.total_length_mm == pytest.approx(s.total_length_px * 0.5)
    assert s.max_width_mm == pytest.approx(s.max_width_px * 0.5)
    empty = summarize_image([], image_shape=(10, 10))
    assert (empty.n_cracks, empty.total_length_px, empty.crack_area_fraction) == (0, 0.0, 0.0)
    assert empty.total_length_mm is None


def test_random_masks_give_sane_measurements():
    rng = np.random.default_rng(3)
    for i in range(60):
        shape = (int(rng.integers(1, 60)), int(rng.integers(1, 60)))
        m = rng.random(shape) < rng.uniform(0.05, 0.6)
        if i % 2:
            seeds = rng.random(shape) < 0.01
            m = ndi.binary_opening(m) | ndi.binary_dilation(seeds, iterations=2)
        min_area = int(rng.integers(0, 6))
        cracks = measure_cracks(m, min_area=min_area, pixel_size_mm=0.3)
        _, n = label_cracks(m, min_area=min_area)
        assert len(cracks) == n
        for c in cracks:
            assert c.area_px >= max(min_area, 1) and c.length_px > 0 and c.n_segments >= 1
            assert 0 < c.mean_width_px <= c.max_width_px + 1e-9
            assert c.orientation in ORIENTATIONS
            assert c.length_mm == pytest.approx(c.length_px * 0.3)
        s = summarize_image(cracks, image_shape=m.shape)
        assert s.total_area_px == sum(c.area_px for c in cracks) <= m.sum()


def test_deterministic():
    rng = np.random.default_rng(1)
    m = ndi.binary_dilation(rng.random((128, 128)) < 0.02, iterations=2)
    assert measure_cracks(m) == measure_cracks(m.copy())


def test_a_2048_image_with_a_few_cracks():
    m = np.zeros((2048, 2048), bool)
    rows = np.arange(2048)
    for k in range(5):
        m[rows, np.clip((rows * 0.3 + k * 300).astype(int), 0, 2047)] = True
    m = ndi.binary_dilation(m, iterations=2)
    cracks = measure_cracks(m, pixel_size_mm=1.0)  # its speed is measured in benchmarks/
    assert len(cracks) == 5
    assert all(c.orientation == "longitudinal" for c in cracks)  # about 17 degrees from the rows
