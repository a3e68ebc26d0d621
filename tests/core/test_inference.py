"""Tiled sliding-window inference, and device selection."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from napari_crack_al.core.device import configure_threads, cpu_cores, describe_device, select_device
from napari_crack_al.core.errors import ConfigError
from napari_crack_al.core.events import CancelToken, ProgressEvent
from napari_crack_al.core.inference import (
    ImagePrediction,
    InferenceCancelled,
    Prediction,
    blend_ramp,
    entropy_from_probability,
    iter_predict_images,
    predict_image,
    tile_starts,
)
from napari_crack_al.core.model import ModelConfig, SegmenterOutput, build_model

torch.set_num_threads(1)


class TinyNet(nn.Module):
    """Two 3x3 convs (receptive field radius 2) with the segmenter's output protocol."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.Tanh(),
                                  nn.Conv2d(6, 2, 3, padding=1))
        self.batches: list[tuple[int, ...]] = []
        self.modes: list[bool] = []

    def forward(self, x, with_features=False):
        self.batches.append(tuple(x.shape))
        self.modes.append(self.training)
        return SegmenterOutput(self.body(x), None, None)


class PointNet(nn.Module):
    """logits = (0, x): p(crack) = sigmoid(x) pixel by pixel, so the answer is known anywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x, with_features=False):
        return SegmenterOutput(torch.cat([torch.zeros_like(x), x + self.dummy], dim=1), None, None)


def _image(h, w, seed=0):
    return np.random.default_rng(seed).standard_normal((h, w)).astype(np.float32)


def test_tiled_equals_whole_image_inference():
    model = TinyNet().eval()
    image = _image(203, 171)
    with torch.no_grad():
        whole = torch.softmax(model(torch.from_numpy(image)[None, None]).logits, 1)[0, 1].numpy()
    model.batches.clear()
    pred = predict_image(model, image, tile=64, overlap=16, batch_size=3)
    assert len(model.batches) > 3 and all(b[0] <= 3 and b[2:] == (64, 64) for b in model.batches)
    assert pred.probability.shape == (203, 171) and pred.probability.dtype == np.float32
    interior = (slice(4, -4), slice(4, -4))
    assert np.abs(pred.probability[interior] - whole[interior]).max() < 1e-4
    # the border tiles see the same zero padding as the whole image, so it matches there too
    assert np.abs(pred.probability - whole).max() < 1e-4
    # without the zero-weight margin tile edges would show: overlap 2 keeps no margin
    seams = predict_image(model, image, tile=64, overlap=2, batch_size=3)
    assert np.abs(seams.probability - whole).max() > 1e-3


@pytest.mark.parametrize("shape", [(37, 53), (101, 67), (64, 200), (1, 5), (300, 31)])
def test_placement_and_shapes_for_odd_sizes(shape):
    image = _image(*shape, seed=sum(shape)) * 3
    pred = predict_image(PointNet(), image, tile=64, overlap=0.25, batch_size=2)
    assert pred.probability.shape == shape and pred.entropy.shape == shape
    assert pred.probability.dtype == np.float32 and pred.entropy.dtype == np.float32
    expected = 1.0 / (1.0 + np.exp(-image))
    assert np.abs(pred.probability - expected).max() < 1e-5  # tiles and padding put back exactly
    assert pred.probability.min() >= 0.0 and pred.probability.max() <= 1.0
    assert np.isfinite(pred.entropy).all()
    assert pred.entropy.min() >= 0.0 and pred.entropy.max() <= 1.0


def test_entropy_is_normalised_and_peaks_at_half():
    p = np.linspace(0.0, 1.0, 101, dtype=np.float32)[None, None, :]
    ent = entropy_from_probability(p, 2)[0]
    assert np.isfinite(ent).all()
    assert int(np.argmax(ent)) == 50 and ent[50] == pytest.approx(1.0, abs=1e-6)
    assert ent[0] == pytest.approx(0.0, abs=1e-6) and ent[-1] == pytest.approx(0.0, abs=1e-6)
    assert np.allclose(ent, ent[::-1], atol=1e-6)
    q = 0.9
    h = -(q * math.log(q) + (1 - q) * math.log(1 - q)) / math.log(2)
    assert ent[90] == pytest.approx(h, abs=1e-5)
    # a model that is unsure everywhere gives p = 0.5 and maximal entropy
    pred = predict_image(PointNet(), np.zeros((40, 40), np.float32), tile=32, overlap=8)
    assert np.allclose(pred.probability, 0.5) and np.allclose(pred.entropy, 1.0)


def test_real_segmenter_tiles_large_odd_image():
    torch.manual_seed(0)
    model = build_model(ModelConfig(encoder="resnet18", decoder_channels=16, low_level_channels=8,
                                    rep_dim=8)).train()
    pred = predict_image(model, _image(100, 130), tile=64, overlap=16, batch_size=4)
    assert model.training  # mode restored
    assert pred.probability.shape == (100, 130)
    assert np.isfinite(pred.probability).all() and np.isfinite(pred.entropy).all()
    assert 0.0 <= pred.probability.min() and pred.probability.max() <= 1.0


def test_eval_mode_inside_and_restored():
    model = TinyNet().train()
    predict_image(model, _image(50, 50), tile=32, overlap=8)
    assert model.modes and not any(model.modes)
    assert model.training


def test_blend_ramp_partition_of_unity():
    for overlap in (1, 2, 7, 16, 64):
        r = blend_ramp(overlap)
        assert r.shape == (overlap,)
        assert np.allclose(r + r[::-1], 1.0)
        assert (r[: overlap // 4] == 0).all() and (np.diff(r) >= 0).all()
    assert tile_starts(100, 64, 48) == [0, 36]
    assert tile_starts(64, 64, 48) == [0]
    assert tile_starts(200, 64, 48) == [0, 48, 96, 136]


def test_invalid_arguments():
    model, image = PointNet(), _image(40, 40)
    with pytest.raises(ConfigError, match="overlap"):
        predict_image(model, image, tile=64, overlap=40)
    with pytest.raises(ConfigError, match="overlap"):
        predict_image(model, image, tile=64, overlap=1.5)
    with pytest.raises(ConfigError, match="tile"):
        predict_image(model, image, tile=8)
    with pytest.raises(ConfigError, match="batch_size"):
        predict_image(model, image, batch_size=0)
    bad = image.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        predict_image(model, bad)


def test_cancel_before_start_raises():
    token = CancelToken()
    token.cancel()
    with pytest.raises(InferenceCancelled):
        predict_image(PointNet(), _image(40, 40), tile=32, overlap=8, cancel=token)


def test_iter_predict_images_events_and_lazy_input():
    loaded: list[str] = []

    def images():
        for i, shape in enumerate([(40, 50), (70, 33), (20, 20)]):
            loaded.append(f"im{i}")
            yield f"im{i}", _image(*shape, seed=i)

    gen = iter_predict_images(PointNet(), images(), total=3, tile=32, overlap=8)
    first = next(gen)
    assert first == ProgressEvent(0, 3, "images")
    assert loaded == ["im0"]  # consumed lazily: one image in memory at a time
    events = [first, *gen]
    results = [e for e in events if isinstance(e, ImagePrediction)]
    assert [r.name for r in results] == ["im0", "im1", "im2"]
    assert [r.index for r in results] == [0, 1, 2]
    assert results[1].prediction.probability.shape == (70, 33)
    progress = [e for e in events if isinstance(e, ProgressEvent)]
    assert [(e.done, e.total) for e in progress] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert isinstance(events[-1], ProgressEvent) and events[-1].done == 3


def test_iter_predict_images_tile_progress_and_cancel():
    token = CancelToken()
    arrays = [_image(64, 64, seed=i) for i in range(3)]
    seen = []
    for event in iter_predict_images(PointNet(), arrays, tile=32, overlap=8, batch_size=2,
                                     tile_progress=True, cancel=token):
        seen.append(event)
        if isinstance(event, ImagePrediction):
            token.cancel()
    results = [e for e in seen if isinstance(e, ImagePrediction)]
    assert len(results) == 1 and results[0].name == "0"
    assert isinstance(results[0].prediction, Prediction)
    tiles = [e for e in seen if isinstance(e, ProgressEvent) and e.what == "tiles"]
    assert tiles and tiles[-1].done == tiles[-1].total == 9  # 3 x 3 tiles of 32 with overlap 8


def test_select_and_describe_device():
    dev = select_device("auto")
    if torch.cuda.is_available():
        assert dev.type == "cuda"
    elif torch.backends.mps.is_available():
        assert dev.type == "mps"
    else:
        assert dev.type == "cpu"
    assert select_device("CPU") == torch.device("cpu")
    with pytest.raises(ConfigError, match="auto, cpu, cuda, mps"):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="not available"):
            select_device("cuda")
    n = torch.get_num_threads()
    assert describe_device("cpu") == f"CPU ({n} thread{'s' if n != 1 else ''})"


def test_configure_threads():
    before = torch.get_num_threads()
    try:
        n = configure_threads(reserve_for_ui=1)
        assert n == max(1, cpu_cores() - 1) == torch.get_num_threads()
        assert configure_threads(reserve_for_ui=10_000) == 1
        with pytest.raises(ConfigError):
            configure_threads(reserve_for_ui=-1)
    finally:
        torch.set_num_threads(before)
