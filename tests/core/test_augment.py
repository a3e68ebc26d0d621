"""Weak augmentation keeps image and mask aligned and marks padding ignore; CutMix consistency."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_crack_al.core.training.augment import (
    IGNORE_INDEX,
    apply_cutmix,
    cutmix_box,
    cutmix_masks,
    make_target,
    random_crop,
    weak_augment,
)

torch.set_num_threads(1)


def _coded_image(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """An image whose values encode their position, and a target derived from the same values."""
    img = (np.arange(h * w, dtype=np.float32).reshape(h, w) + 1.0)
    tgt = (img.astype(np.int64) % 2).astype(np.uint8)  # parity of the code: a checkerboard
    return img, tgt


def test_make_target_marks_invalid_ignore():
    mask = np.array([[True, False], [False, True]])
    valid = np.array([[True, True], [False, False]])
    t = make_target(mask, valid)
    assert t.tolist() == [[1, 0], [IGNORE_INDEX, IGNORE_INDEX]]
    assert make_target(None, valid).tolist() == [[0, 0], [IGNORE_INDEX, IGNORE_INDEX]]


@pytest.mark.parametrize("seed", range(6))
def test_weak_augment_keeps_alignment(seed):
    img, tgt = _coded_image(40, 56)
    rng = np.random.default_rng(seed)
    out_img, out_tgt = weak_augment(img, tgt, rng, crop_size=32, flip=True, rotate90=True)
    assert out_img.shape == out_tgt.shape == (32, 32)
    assert out_img.dtype == np.float32 and out_tgt.dtype == np.uint8
    # every output pixel's label is the label of the input pixel its value came from
    codes = out_img.astype(np.int64)
    assert (codes >= 1).all()  # no padding: the image is larger than the crop
    assert np.array_equal(out_tgt, (codes % 2).astype(np.uint8))
    # the crop is a rigid copy of a window: all values distinct and present in the input
    assert len(np.unique(codes)) == 32 * 32


def test_small_image_is_padded_with_ignore():
    img, tgt = _coded_image(10, 20)
    rng = np.random.default_rng(1)
    out_img, out_tgt = weak_augment(img, tgt, rng, crop_size=32, flip=True, rotate90=True)
    pad = out_img == 0
    assert pad.sum() == 32 * 32 - 10 * 20  # every input pixel kept, the rest is padding
    assert (out_tgt[pad] == IGNORE_INDEX).all()
    assert np.array_equal(out_tgt[~pad], (out_img[~pad].astype(np.int64) % 2).astype(np.uint8))


def test_gain_offset_only_on_non_ignored():
    img = np.ones((32, 32), np.float32)
    tgt = np.zeros((32, 32), np.uint8)
    tgt[:, :8] = IGNORE_INDEX
    img[:, :8] = 0.0
    out, t = weak_augment(img, tgt, np.random.default_rng(3), crop_size=32, flip=False,
                          rotate90=False, gain_jitter=0.5, offset_jitter=0.5)
    assert (out[t == IGNORE_INDEX] == 0).all()
    vals = np.unique(out[t != IGNORE_INDEX])
    assert vals.size == 1 and vals[0] != 1.0


def test_crack_focused_crop_contains_crack():
    img = np.zeros((200, 200), np.float32)
    tgt = np.zeros((200, 200), np.uint8)
    tgt[150, 30] = 1
    hits = 0
    for s in range(20):
        _, t = random_crop(img, tgt, 32, np.random.default_rng(s), crack_prob=1.0)
        hits += int((t == 1).any())
    assert hits == 20


def test_augment_is_deterministic_for_a_seed():
    img, tgt = _coded_image(64, 64)
    a = weak_augment(img, tgt, np.random.default_rng(7), crop_size=32, gain_jitter=0.1,
                     offset_jitter=0.1)
    b = weak_augment(img, tgt, np.random.default_rng(7), crop_size=32, gain_jitter=0.1,
                     offset_jitter=0.1)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


@pytest.mark.parametrize("seed", range(20))
def test_cutmix_box_area_and_width(seed):
    h, w = 64, 96
    y0, x0, bh, bw = cutmix_box(h, w, np.random.default_rng(seed))
    assert w / 2 < bw <= w
    assert 0 <= y0 and y0 + bh <= h and 0 <= x0 and x0 + bw <= w
    # height = area / width rounded: the area is H*W/2 up to half a row of the box
    assert abs(bh * bw - h * w / 2) <= bw / 2 + 1e-9


@pytest.mark.parametrize("seed", range(10))
def test_cutmix_box_aligned(seed):
    y0, x0, bh, bw = cutmix_box(64, 64, np.random.default_rng(seed), align=4)
    assert all(v % 4 == 0 for v in (y0, x0, bh, bw))
    assert 32 < bw <= 64
    assert abs(bh * bw - 64 * 64 / 2) <= 0.15 * 64 * 64 / 2


def test_cutmix_consistency_images_labels_confidences():
    rng = np.random.default_rng(0)
    b, h, w = 3, 16, 16
    masks = cutmix_masks(b, h, w, rng, prob=1.0)
    assert masks is not None and masks.shape == (b, h, w)
    m = torch.from_numpy(masks)
    images = torch.arange(b, dtype=torch.float32).view(b, 1, 1, 1).expand(b, 1, h, w) + 0.5
    labels = torch.arange(b).view(b, 1, 1).expand(b, h, w).clone()
    conf = torch.rand(b, 2, h, w, generator=torch.Generator().manual_seed(0))
    ignore = torch.zeros(b, h, w, dtype=torch.bool)
    ignore[1] = True
    mi, ml, mc, mg = (apply_cutmix(t, m) for t in (images, labels, conf, ignore))
    for i in range(b):
        j = (i + 1) % b
        box = masks[i]
        # the box is one rectangle of area ~H*W/2
        ys, xs = np.nonzero(box)
        assert box.sum() == (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        assert abs(box.sum() - h * w / 2) <= w / 2
        # the same pixels come from image j in images, labels, confidences and ignore
        assert torch.equal(mi[i, 0][m[i]], torch.full((int(box.sum()),), j + 0.5))
        assert torch.equal(mi[i, 0][~m[i]], torch.full((int((~box).sum()),), i + 0.5))
        assert torch.equal(ml[i], torch.where(m[i], j, i))
        assert torch.equal(mc[i], torch.where(m[i][None], conf[j], conf[i]))
        assert torch.equal(mg[i], torch.where(m[i], ignore[j], ignore[i]))


def test_cutmix_probability_and_feature_resolution():
    rng = np.random.default_rng(0)
    applied = sum(cutmix_masks(2, 8, 8, rng, prob=0.5) is not None for _ in range(400))
    assert 150 < applied < 250
    assert cutmix_masks(2, 8, 8, rng, prob=0.0) is None
    # a box aligned to 4 maps exactly onto a 1/4 feature map
    masks = cutmix_masks(2, 64, 64, np.random.default_rng(3), prob=1.0, align=4)
    m = torch.from_numpy(masks)
    feats = torch.stack([torch.zeros(3, 16, 16), torch.ones(3, 16, 16)])
    mixed = apply_cutmix(feats, m)
    small = masks[:, ::4, ::4]
    assert np.array_equal(mixed[0, 0].numpy() == 1.0, small[0])
    assert mixed[0].sum().item() == 3 * small[0].sum() == 3 * masks[0].sum() / 16
    assert apply_cutmix(feats, None) is feats
