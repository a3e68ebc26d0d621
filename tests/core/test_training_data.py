"""Training data: pairing by stem, clear errors, RGB photos, samplers for tiny label sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skimage.io import imsave

from napari_crack_al.core.errors import ConfigError, ImageReadError, MaskError
from napari_crack_al.core.training.augment import IGNORE_INDEX
from napari_crack_al.core.training.config import TrainConfig
from napari_crack_al.core.training.lazy_images import load_unlabeled_folder
from napari_crack_al.core.training.data import (
    BatchSampler,
    TrainingImage,
    load_labeled_folder,
    make_batch,
    pair_by_stem,
)


def _write(folder: Path, name: str, array: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    imsave(path, array, check_contrast=False)
    return path


def _range(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(1000, 2000, size=(h, w)).astype(np.uint16)


def _mask(h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[h // 2, :] = 255
    return m


def test_pairs_by_stem_and_normalises(tmp_path):
    img = _range(20, 30)
    img[0, 0] = 0  # LCMS dropout -> invalid
    _write(tmp_path / "images", "a.png", img)
    _write(tmp_path / "images", "b.tif", _range(16, 16, 1))  # another size and format
    _write(tmp_path / "masks", "a.png", _mask(20, 30))
    _write(tmp_path / "masks", "b.png", _mask(16, 16))
    items = load_labeled_folder(tmp_path / "images", tmp_path / "masks")
    assert [t.name for t in items] == ["a", "b"]
    a = items[0]
    assert a.image.dtype == np.float32 and a.image.shape == (20, 30)
    assert not a.valid[0, 0] and a.image[0, 0] == 0.0
    assert abs(float(np.median(a.image[a.valid]))) < 0.05  # normalised
    assert a.mask is not None and a.mask.dtype == bool and a.mask[10].all() and a.mask.sum() == 30
    t = a.target()
    assert t[0, 0] == IGNORE_INDEX and t[10, 5] == 1 and t[3, 5] == 0
    assert items[1].shape == (16, 16)


def test_unpaired_image_is_named(tmp_path):
    _write(tmp_path / "images", "a.png", _range(8, 8))
    _write(tmp_path / "images", "lonely_one.png", _range(8, 8))
    _write(tmp_path / "masks", "a.png", _mask(8, 8))
    with pytest.raises(MaskError, match="lonely_one"):
        load_labeled_folder(tmp_path / "images", tmp_path / "masks")
    items = load_labeled_folder(tmp_path / "images", tmp_path / "masks", allow_unmasked=True)
    assert [t.name for t in items] == ["a"]


def test_mask_without_image_is_named(tmp_path):
    _write(tmp_path / "images", "a.png", _range(8, 8))
    _write(tmp_path / "masks", "a.png", _mask(8, 8))
    _write(tmp_path / "masks", "ghost.png", _mask(8, 8))
    with pytest.raises(MaskError, match="ghost"):
        load_labeled_folder(tmp_path / "images", tmp_path / "masks")


def test_size_mismatch_and_missing_folder(tmp_path):
    _write(tmp_path / "images", "a.png", _range(8, 8))
    _write(tmp_path / "masks", "a.png", _mask(8, 9))
    with pytest.raises(MaskError, match=r"a\.png.*size"):
        load_labeled_folder(tmp_path / "images", tmp_path / "masks")
    with pytest.raises(ImageReadError, match="does not exist"):
        load_labeled_folder(tmp_path / "nope", tmp_path / "masks")
    with pytest.raises(MaskError, match="does not exist"):
        load_labeled_folder(tmp_path / "images", tmp_path / "no_masks")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageReadError, match="no images"):
        load_labeled_folder(tmp_path / "empty", tmp_path / "masks")


def test_rgb_photo_becomes_one_channel(tmp_path):
    rgb = np.zeros((12, 14, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[6:, :, 1] = 100
    _write(tmp_path / "images", "photo.png", rgb)
    _write(tmp_path / "masks", "photo.png", _mask(12, 14))
    (item,) = load_labeled_folder(tmp_path / "images", tmp_path / "masks")
    assert item.image.shape == (12, 14) and item.valid.all()
    assert item.image[0, 0] != item.image[11, 0]  # the green band survives the conversion
    (u,) = load_unlabeled_folder(tmp_path / "images")
    assert u.mask is None and u.image.shape == (12, 14)


def test_pair_by_stem_returns_unmasked():
    imgs = [Path("i/a.png"), Path("i/b.png")]
    pairs, unmasked = pair_by_stem(imgs, [Path("m/a.tif")], allow_unmasked=True)
    assert pairs == [(Path("i/a.png"), Path("m/a.tif"))] and unmasked == [Path("i/b.png")]


@pytest.mark.parametrize("n", [1, 2, 5])
def test_sampler_handles_tiny_sets(n):
    s = BatchSampler(n, 4, np.random.default_rng(0))
    seen = []
    for _ in range(10):
        batch = s.next()
        assert len(batch) == 4 and all(0 <= i < n for i in batch)
        seen.extend(batch)
    counts = np.bincount(seen, minlength=n)
    assert counts.min() >= 40 // n - 1  # shuffled passes: every item equally often (±1 pass)


def test_make_batch_mixed_sizes_and_labels():
    rng = np.random.default_rng(0)
    big = TrainingImage("big", np.ones((80, 70), np.float32), np.ones((80, 70), bool),
                        np.eye(80, 70, dtype=bool))
    small = TrainingImage("small", np.ones((20, 40), np.float32), np.ones((20, 40), bool), None)
    imgs, tgts = make_batch([big, small], [0, 1, 1], rng, crop_size=32)
    assert imgs.shape == (3, 1, 32, 32) and tgts.shape == (3, 32, 32)
    assert set(np.unique(tgts[0])) <= {0, 1}
    for k in (1, 2):  # the small unlabelled image: 0 inside, ignore in the padding
        assert (tgts[k] == IGNORE_INDEX).sum() == 32 * 32 - 20 * 32
        assert set(np.unique(tgts[k])) == {0, IGNORE_INDEX}


def test_mask_shape_checked():
    with pytest.raises(MaskError):
        TrainingImage("x", np.zeros((4, 4), np.float32), np.ones((4, 4), bool),
                      np.zeros((4, 5), bool))


def test_train_config_validation_and_roundtrip():
    cfg = TrainConfig(iterations=10, crop_size=64)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.effective_warmup == 1
    with pytest.raises(ConfigError, match="semi, supervised"):
        TrainConfig(mode="weird")
    with pytest.raises(ConfigError, match="multiple of 16"):
        TrainConfig(crop_size=50)
    with pytest.raises(ConfigError, match="unknown TrainConfig keys"):
        TrainConfig.from_dict({"nope": 1})
    fast = TrainConfig.from_preset("fast", iterations=3)
    assert fast.preset == "fast" and fast.iterations == 3 and fast.crop_size >= 64
