"""Per-image scores on hand-made probability maps; BALD; one forward pass per image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from napari_crack_al.core.active.embeddings import EncoderPool
from napari_crack_al.core.active.mc_dropout import (
    mc_dropout_mutual_information,
    mutual_information,
)
from napari_crack_al.core.active.scores import (
    UNCERTAINTY_KINDS,
    ImageScores,
    ScoreConfig,
    binary_entropy,
    crack_region,
    disagreement_scores,
    topk_mean,
    uncertainty_scores,
)
from napari_crack_al.core.active.scoring import iter_score_images, score_images
from napari_crack_al.core.errors import ConfigError
from napari_crack_al.core.events import CancelToken, ProgressEvent
from napari_crack_al.core.inference import predict_image
from napari_crack_al.core.model import ModelConfig, build_model

torch.set_num_threads(1)

TINY = ModelConfig(encoder="resnet18", decoder_channels=16, low_level_channels=8, rep_dim=8,
                   aux_head=False)


def _h(p: float) -> float:
    return (-p * math.log(p) - (1 - p) * math.log(1 - p)) / math.log(2)


# ---------------------------------------------------------------------------- pixel helpers
def test_binary_entropy_values():
    e = binary_entropy(np.array([0.0, 0.5, 0.1, 1.0]))
    assert e[1] == pytest.approx(1.0)
    assert e[2] == pytest.approx(_h(0.1), rel=1e-5)
    assert e[0] < 1e-5 and e[3] < 1e-5


def test_crack_region_dilates_and_respects_valid():
    p = np.zeros((9, 9), np.float32)
    p[4, 4] = 0.2
    region = crack_region(p, threshold=0.1, dilation_px=1)
    assert region.sum() == 9 and region[3:6, 3:6].all()
    valid = np.ones((9, 9), bool)
    valid[3, :] = False
    region = crack_region(p, valid, threshold=0.1, dilation_px=1)
    assert region.sum() == 6 and not region[3].any()
    assert crack_region(np.full((5, 5), 0.05), threshold=0.1).sum() == 0


def test_topk_mean_exact():
    v = np.arange(200, dtype=np.float32).reshape(10, 20)  # 0..199
    assert topk_mean(v, fraction=0.01) == pytest.approx(198.5)  # k = 2
    assert topk_mean(v, fraction=0.015) == pytest.approx(198.0)  # ceil(3) -> 197, 198, 199
    valid = v < 100
    assert topk_mean(v, valid, fraction=0.01) == pytest.approx(99.0)  # k = 1 of 100 valid
    assert topk_mean(v, np.zeros_like(valid), fraction=0.01) == 0.0


# ---------------------------------------------------------------------------- image scores
def test_crack_scores_fix_the_dilution_problem():
    """A thin uncertain crack and diffuse background noise: same mean entropy, but only the
    crack image gets a high crack_entropy / topk_entropy."""
    rng = np.random.default_rng(0)
    thin = np.full((96, 96), 0.01, np.float32)
    thin[:, 47:50] = 0.5                      # a 3-px crack the model is unsure about
    noisy = rng.uniform(0.0, 0.03, (96, 96)).astype(np.float32)  # diffuse, below 0.1
    s_thin = uncertainty_scores(thin)
    s_noisy = uncertainty_scores(noisy)
    assert abs(s_thin["entropy"] - s_noisy["entropy"]) < 0.02   # mean entropy cannot tell
    # region = 3 crack px + 2 x 3 dilated px per row: (3 * 1 + 6 * H(0.01)) / 9
    assert s_thin["crack_entropy"] == pytest.approx((3 + 6 * _h(0.01)) / 9, rel=1e-4)
    assert s_thin["crack_entropy"] > 3 * s_thin["entropy"]
    assert s_noisy["crack_entropy"] == 0.0
    assert s_thin["topk_entropy"] == pytest.approx(1.0, abs=1e-4)  # top 1 % = crack pixels
    assert s_thin["topk_entropy"] > 4 * s_noisy["topk_entropy"]
    assert s_thin["margin"] > s_noisy["margin"]
    assert s_thin["least_confidence"] > 4 * s_noisy["least_confidence"]


def test_uncertainty_scores_exact_values():
    p = np.full((10, 10), 0.01, np.float32)
    p[5, 5] = 0.5
    cfg = ScoreConfig(crack_threshold=0.1, dilation_px=1, topk_fraction=0.01)
    s = uncertainty_scores(p, valid=None, config=cfg)
    assert set(s) == set(UNCERTAINTY_KINDS)
    region_mean_h = (1.0 + 8 * _h(0.01)) / 9
    assert s["crack_entropy"] == pytest.approx(region_mean_h, rel=1e-4)
    assert s["entropy"] == pytest.approx((1.0 + 99 * _h(0.01)) / 100, rel=1e-4)
    assert s["topk_entropy"] == pytest.approx(1.0, rel=1e-5)          # k = 1
    assert s["margin"] == pytest.approx((1.0 + 8 * 0.02) / 9, rel=1e-4)  # 1 - |p1 - p0|
    assert s["least_confidence"] == pytest.approx(0.5, rel=1e-5)       # 1 - max p


def test_invalid_pixels_are_excluded_from_every_score():
    base = np.full((32, 32), 0.02, np.float32)
    base[10, 5:25] = 0.4
    noisy = base.copy()
    noisy[:, :4] = 0.5            # an uncertain band ... on invalid pixels
    valid = np.ones_like(base, bool)
    valid[:, :4] = False
    ref = uncertainty_scores(base, valid=valid)
    got = uncertainty_scores(noisy, valid=valid)
    for kind in UNCERTAINTY_KINDS:
        assert got[kind] == pytest.approx(ref[kind], abs=1e-7), kind
    assert uncertainty_scores(noisy)["topk_entropy"] > got["topk_entropy"]  # it would count
    none_valid = uncertainty_scores(noisy, valid=np.zeros_like(valid))
    assert none_valid == {k: 0.0 for k in UNCERTAINTY_KINDS}


def test_disagreement_scores():
    t = np.full((20, 20), 0.05, np.float32)
    t[5, :] = 0.9
    same = disagreement_scores(t, t.copy())
    assert same["disagreement"] == 0.0 and same["disagreement_kl"] == pytest.approx(0.0, abs=1e-6)
    s = np.full((20, 20), 0.05, np.float32)
    s[15, :] = 0.9                   # student sees the crack elsewhere: masks disjoint
    d = disagreement_scores(t, s)
    assert d["disagreement"] == pytest.approx(1.0)
    half = np.full((20, 20), 0.05, np.float32)
    half[5, :10] = 0.9              # half of the teacher's crack
    assert disagreement_scores(t, half)["disagreement"] == pytest.approx(0.5)
    assert d["disagreement_kl"] > disagreement_scores(t, half)["disagreement_kl"] > 0
    valid = np.ones_like(t, bool)
    valid[15, :] = False
    valid[5, :] = False
    assert disagreement_scores(t, s, valid)["disagreement"] == 0.0


def test_score_config_validation():
    with pytest.raises(ConfigError, match="crack_threshold"):
        ScoreConfig(crack_threshold=1.5)
    with pytest.raises(ConfigError, match="topk_fraction"):
        ScoreConfig(topk_fraction=0)


# ---------------------------------------------------------------------------- BALD
def test_mutual_information_hand_made():
    p = np.random.default_rng(1).uniform(0, 1, (8, 8)).astype(np.float32)
    assert np.abs(mutual_information(np.stack([p, p, p]))).max() < 1e-6
    split = np.stack([np.full((2, 2), 0.001), np.full((2, 2), 0.999)])
    assert mutual_information(split) == pytest.approx(np.full((2, 2), 1.0 - _h(0.001)), abs=1e-5)


def _image(seed: int, size: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (size, size)).astype(np.float32)


def test_bald_zero_without_dropout_positive_with_dropout_and_deterministic():
    torch.manual_seed(0)
    no_drop = build_model(TINY.__class__(**{**TINY.to_dict(), "dropout": 0.0}))
    img = _image(0)
    mi = mc_dropout_mutual_information(no_drop, img, passes=3, seed=0, tile=64, overlap=16)
    assert mi.shape == img.shape and float(mi.max()) < 1e-6

    torch.manual_seed(0)
    drop = build_model(TINY.__class__(**{**TINY.to_dict(), "dropout": 0.5}))
    drop.train()  # the mode must be restored afterwards
    bn = next(m for m in drop.modules() if isinstance(m, torch.nn.BatchNorm2d))
    dp = next(m for m in drop.modules() if isinstance(m, torch.nn.Dropout))
    seen: list[tuple[bool, bool]] = []
    handle = bn.register_forward_hook(lambda *_: seen.append((bn.training, dp.training)))
    try:
        mi1 = mc_dropout_mutual_information(drop, img, passes=4, seed=3, tile=64, overlap=16)
    finally:
        handle.remove()
    assert seen and set(seen) == {(False, True)}  # batch norm in eval, dropout sampling
    mi2 = mc_dropout_mutual_information(drop, img, passes=4, seed=3, tile=64, overlap=16)
    assert drop.training and bn.training
    assert float(mi1.max()) > 1e-4
    np.testing.assert_array_equal(mi1, mi2)
    with pytest.raises(ConfigError):
        mc_dropout_mutual_information(drop, img, passes=1)


# ---------------------------------------------------------------------------- pool scoring
@pytest.fixture(scope="module")
def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(TINY)
    model.eval()
    return model


class _Counter:
    def __init__(self, model: torch.nn.Module) -> None:
        self.calls = 0
        self.handle = model.register_forward_hook(self._hook)

    def _hook(self, *_: object) -> None:
        self.calls += 1


def test_score_images_one_forward_pass_per_image(tiny_model):
    images = [(f"img{i}", _image(i), np.ones((64, 64), bool)) for i in range(3)]
    counter = _Counter(tiny_model)
    try:
        events = list(iter_score_images(tiny_model, images, tile=64, overlap=16))
    finally:
        counter.handle.remove()
    assert counter.calls == 3  # one tile each: exactly one forward per image
    results = [e for e in events if isinstance(e, ImageScores)]
    progress = [e for e in events if isinstance(e, ProgressEvent)]
    assert [r.name for r in results] == ["img0", "img1", "img2"]
    assert [(p.done, p.total) for p in progress] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    for (name, img, _), res in zip(images, results):
        ref = predict_image(tiny_model, img, tile=64, overlap=16)
        np.testing.assert_allclose(res.probability, ref.probability, atol=1e-6)
        assert res.scores == pytest.approx(uncertainty_scores(ref.probability, ref.entropy))
        # the embedding is the L2-normalised global average pool of the deepest stage
        with torch.no_grad():
            deepest = tiny_model.encoder(torch.from_numpy(img)[None, None])[-1]
        emb = deepest.mean(dim=(2, 3))[0].numpy()
        np.testing.assert_allclose(res.embedding, emb / np.linalg.norm(emb), atol=1e-5)
        assert np.linalg.norm(res.embedding) == pytest.approx(1.0, abs=1e-5)


def test_score_images_tiles_batched_and_extra_passes(tiny_model):
    img = _image(5, 96)               # 4 tiles of 64 (overlap 32), batched 4 at a time
    counter = _Counter(tiny_model)
    try:
        res = score_images(tiny_model, [("a", img, None)], tile=64, overlap=32, batch_size=4)
        assert counter.calls == 1
        counter.calls = 0
        res2 = score_images(tiny_model, [("a", img, None)], tile=64, overlap=32, batch_size=4,
                            student=tiny_model, mc_passes=2)
        assert counter.calls == 1 + 1 + 2  # teacher, student, two MC passes
    finally:
        counter.handle.remove()
    assert res2["a"].scores["disagreement"] == 0.0  # same model twice
    assert "bald" in res2["a"].scores and "bald" not in res["a"].scores
    assert res["a"].probability.shape == (96, 96)


def test_score_images_cancel_and_pool_hook_removed(tiny_model):
    cancel = CancelToken()
    gen = iter_score_images(tiny_model, [("a", _image(0), None), ("b", _image(1), None)],
                            tile=64, overlap=16, cancel=cancel)
    got = []
    for ev in gen:
        got.append(ev)
        if isinstance(ev, ImageScores):
            cancel.cancel()
    assert [e.name for e in got if isinstance(e, ImageScores)] == ["a"]
    assert not tiny_model.encoder._forward_hooks
    with pytest.raises(ConfigError):
        list(iter_score_images(tiny_model, [_image(0)], mc_passes=1))
    assert EncoderPool.supports(tiny_model) and not EncoderPool.supports(torch.nn.Conv2d(1, 1, 1))
