"""The synthetic range-image generator and the sample-folder writer."""

from __future__ import annotations


import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi  # a scikit-image dependency; used to measure, not to generate
from skimage.measure import label
from skimage.morphology import dilation, disk, skeletonize

from napari_crack_al.core.errors import ConfigError, ProjectError
from napari_crack_al.core.io.mask_io import read_mask
from napari_crack_al.core.io.range_io import read_range_image
from napari_crack_al.core.sample_project import write_sample_images
from napari_crack_al.core.synthetic import (
    CRACK_KINDS,
    SyntheticConfig,
    SyntheticSample,
    generate_range_image,
)

SMALL = SyntheticConfig(size=192)


def _flattened_mm(sample: SyntheticSample, cfg: SyntheticConfig) -> tuple[np.ndarray, np.ndarray]:
    """Range image in mm minus the smooth road profile (cross-slope, ruts, bounce); NaN = dropout."""
    valid = sample.range_image > 0
    mm = (sample.range_image.astype(np.float64) - cfg.base_value) / cfg.units_per_mm
    return np.where(valid, mm - sample.profile_mm, np.nan), valid


def _ring(mask: np.ndarray, inner: int, outer: int) -> np.ndarray:
    return dilation(mask, disk(outer)) & ~dilation(mask, disk(inner))


# ------------------------------------------------------------------ basics
def test_deterministic_by_seed():
    a = generate_range_image(7, SMALL)
    b = generate_range_image(7, SMALL)
    c = generate_range_image(8, SMALL)
    assert a.range_image.tobytes() == b.range_image.tobytes()
    assert np.array_equal(a.mask, b.mask) and a.kinds == b.kinds
    assert a.range_image.tobytes() != c.range_image.tobytes()
    # series seeds: (seed, i) differ by i and are reproducible
    s0, s1 = generate_range_image((3, 0), SMALL), generate_range_image((3, 1), SMALL)
    assert s0.range_image.tobytes() != s1.range_image.tobytes()
    assert generate_range_image((3, 1), SMALL).range_image.tobytes() == s1.range_image.tobytes()


def test_dtype_shape_and_encoding():
    cfg = SyntheticConfig(size=(96, 160))
    s = generate_range_image(1, cfg)
    assert s.range_image.dtype == np.uint16 and s.range_image.shape == (96, 160)
    assert s.mask.dtype == bool and s.mask.shape == (96, 160)
    assert s.distractor_mask.shape == (96, 160)
    assert generate_range_image(1, SyntheticConfig(size=(160, 96))).range_image.shape == (160, 96)
    valid = s.range_image[s.range_image > 0].astype(float)
    # 1 unit = 0.01 mm around ~30000: the surface spans a few tens of mm at most
    assert 26000 < np.median(valid) < 34000
    assert valid.max() - valid.min() < 6000


def test_mask_fraction_sane():
    cfg = SyntheticConfig(size=256, no_crack_fraction=0.0)
    fracs = [generate_range_image((5, i), cfg).mask.mean() for i in range(12)]
    assert all(0.0005 < f < 0.2 for f in fracs), fracs
    assert 0.003 < float(np.mean(fracs)) < 0.08


@pytest.mark.parametrize("kind", CRACK_KINDS)
def test_crack_widths_between_1_and_10_px(kind):
    cfg = SyntheticConfig(size=192, crack_kinds=(kind,), n_cracks=(1, 1), no_crack_fraction=0.0,
                          distractors=False)
    widths = []
    for i in range(10):
        mask = generate_range_image((11, i), cfg).mask
        if not mask.any():
            continue
        edt = ndi.distance_transform_edt(mask)
        widths.append(2 * edt[skeletonize(mask)] - 1)   # local width in px along the centreline
    assert len(widths) >= 7, f"{kind}: too many images without a visible crack"
    w = np.concatenate(widths)
    assert np.percentile(w, 99) <= 10.0, kind
    assert w.max() <= 11.0, kind            # a 10 px disc on a sub-pixel centre can touch 11
    assert np.median(w) >= 1.0


def test_crack_widths_use_the_whole_range():
    cfg = SyntheticConfig(size=192, crack_kinds=("longitudinal", "transverse"),
                          no_crack_fraction=0.0)
    local = []
    for i in range(12):
        mask = generate_range_image((12, i), cfg).mask
        local.append(2 * ndi.distance_transform_edt(mask)[skeletonize(mask)] - 1)
    w = np.concatenate(local)
    assert (w <= 1.0).mean() > 0.05     # hairline cracks exist
    assert (w >= 5.0).mean() > 0.01     # and wide ones too


def test_cracks_are_depressions():
    cfg = SyntheticConfig(size=192, no_crack_fraction=0.0, distractors=False)
    gaps = []
    for i in range(8):
        s = generate_range_image((13, i), cfg)
        flat, valid = _flattened_mm(s, cfg)
        inside = s.mask & valid
        ring = _ring(s.mask, 2, 5) & valid
        gaps.append(np.nanmean(flat[ring]) - np.nanmean(flat[inside]))
    assert min(gaps) > 0.3, gaps               # mm deeper than the surface right beside the crack
    assert 0.5 < float(np.mean(gaps)) < 5.0, gaps


def test_depth_respects_config():
    common = dict(size=192, no_crack_fraction=0.0, distractors=False)
    shallow = SyntheticConfig(depth_mm=(0.5, 0.6), **common)
    deep = SyntheticConfig(depth_mm=(4.0, 5.0), **common)
    s1, s2 = generate_range_image(14, shallow), generate_range_image(14, deep)
    g = []
    for s, cfg in ((s1, shallow), (s2, deep)):
        flat, valid = _flattened_mm(s, cfg)
        g.append(np.nanmean(flat[_ring(s.mask, 2, 5) & valid]) - np.nanmean(flat[s.mask & valid]))
    assert g[0] < 1.0 < 3.0 < g[1], g


# ------------------------------------------------------------------ distractors, dropout, negatives
def test_distractors_are_never_in_the_mask():
    cfg = SyntheticConfig(size=192, no_crack_fraction=0.0, distractor_probability=1.0)
    for i in range(6):
        s = generate_range_image((15, i), cfg)
        assert set(s.distractors) == {"sealed", "joint"}
        assert s.distractor_mask.sum() > 100
        assert s.mask.any()
        assert not (s.mask & s.distractor_mask).any()


def test_sealed_band_is_not_a_depression():
    cfg = SyntheticConfig(size=192, crack_kinds=(), distractor_kinds=("sealed",),
                          distractor_probability=1.0)
    for i in range(4):
        s = generate_range_image((16, i), cfg)
        assert s.distractors == ("sealed",) and not s.mask.any()
        flat, valid = _flattened_mm(s, cfg)
        band = s.distractor_mask & valid
        ring = _ring(s.distractor_mask, 2, 6) & valid
        assert np.mean(flat[band]) > np.mean(flat[ring])      # filled / slightly raised
        assert np.std(flat[band]) < np.std(flat[ring])        # and smooth: no macrotexture


def test_joint_is_a_straight_line():
    cfg = SyntheticConfig(size=192, crack_kinds=(), distractor_kinds=("joint",),
                          distractor_probability=1.0)
    for i in range(4):
        s = generate_range_image((17, i), cfg)
        assert s.distractors == ("joint",) and not s.mask.any()
        yy, xx = np.nonzero(s.distractor_mask)
        pts = np.stack([yy, xx], 1).astype(float)
        pts -= pts.mean(0)
        sv = np.linalg.svd(pts, compute_uv=False) / np.sqrt(len(pts))
        assert sv[0] > 40 and sv[1] < 3.0, sv      # long and thin: a straight band
        flat, valid = _flattened_mm(s, cfg)
        ring = _ring(s.distractor_mask, 2, 5) & valid
        assert np.mean(flat[ring]) - np.mean(flat[s.distractor_mask & valid]) > 1.0  # a depression


def test_dropout_present_in_small_clusters():
    s = generate_range_image(18, SyntheticConfig(size=256, dropout_fraction=0.004))
    zeros = s.range_image == 0
    assert 0.001 < zeros.mean() < 0.02
    n_clusters = label(zeros, connectivity=2).max()
    assert zeros.sum() / n_clusters > 1.5           # clusters, not only single pixels
    assert zeros.sum() / n_clusters < 40            # but small
    none = generate_range_image(18, SyntheticConfig(size=256, dropout_fraction=0.0))
    assert not (none.range_image == 0).any()


def test_some_images_have_no_crack():
    cfg = SyntheticConfig(size=64)
    samples = [generate_range_image((19, i), cfg) for i in range(40)]
    empty = [s for s in samples if not s.kinds]
    assert 2 <= len(empty) <= 14
    assert all(not s.mask.any() for s in empty)
    assert sum(s.mask.any() for s in samples) >= 26


def test_kinds_follow_config():
    cfg = SyntheticConfig(size=128, crack_kinds=("transverse",), n_cracks=(2, 2),
                          no_crack_fraction=0.0)
    s = generate_range_image(20, cfg)
    assert s.kinds == ("transverse", "transverse")


# ------------------------------------------------------------------ config
@pytest.mark.parametrize("kwargs, words", [
    ({"crack_kinds": ("potholes",)}, "longitudinal"),
    ({"distractor_kinds": ("paint",)}, "sealed"),
    ({"size": 16}, "size"),
    ({"n_cracks": (3, 1)}, "n_cracks"),
    ({"width_px": (0.5, 10)}, "width_px"),
    ({"no_crack_fraction": 1.5}, "no_crack_fraction"),
    ({"pixel_size_mm": 0}, "pixel_size_mm"),
    ({"base_value": 70000}, "base_value"),
])
def test_config_validation(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        SyntheticConfig(**kwargs)


def test_config_round_trip_and_seed_validation():
    cfg = SyntheticConfig(size=(64, 96), crack_kinds=("alligator",), dropout_fraction=0.01)
    assert cfg.shape == (64, 96)
    assert SyntheticConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown"):
        SyntheticConfig.from_dict({"colour": 1})
    with pytest.raises(ConfigError, match="seed"):
        generate_range_image(-1, cfg)


# ------------------------------------------------------------------ sample folder
def test_write_sample_images_layout_and_extension(tmp_path):
    paths = write_sample_images(tmp_path, n=2, size=64, seed=4)
    assert [p.name for p in paths] == ["sample_0000.png", "sample_0001.png"]
    first = paths[0].read_bytes()
    img = read_range_image(paths[1])
    assert img.source_dtype == "uint16" and img.shape == (64, 64)
    expected = generate_range_image((4, 1), SyntheticConfig(size=64))
    assert np.array_equal(img.valid, expected.range_image > 0)
    gt = tmp_path / "ground_truth" / "sample_0001.png"
    assert np.array_equal(read_mask(gt), expected.mask)
    assert set(np.unique(np.asarray(Image.open(gt)))) <= {0, 255}

    with pytest.raises(ProjectError, match="not empty"):
        write_sample_images(tmp_path, n=3, size=64, seed=4)
    more = write_sample_images(tmp_path, n=3, size=64, seed=4, overwrite=True)
    assert len(more) == 3 and more[0].read_bytes() == first      # a bigger n extends a smaller one
    fewer = write_sample_images(tmp_path, n=1, size=64, seed=4, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == [fewer[0].name]
    assert sorted(p.name for p in (tmp_path / "ground_truth").iterdir()) == [fewer[0].name]


def test_write_sample_images_rejects_bad_arguments(tmp_path):
    with pytest.raises(ConfigError):
        write_sample_images(tmp_path, n=0, size=64)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ProjectError, match="not a folder"):
        write_sample_images(tmp_path / "file", n=1, size=64)
