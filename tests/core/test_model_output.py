"""A model whose output cannot be used is refused in one line: NaN weights or logits, wrong shapes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from napari_crack_al.core.errors import CheckpointError, ModelOutputError
from napari_crack_al.core.inference import predict_image
from napari_crack_al.core.model import ModelConfig, build_model, load_model, save_checkpoint

torch.set_num_threads(1)
CFG = ModelConfig(encoder="resnet18", decoder_channels=16, low_level_channels=8, rep_dim=8)
IMAGE = np.random.default_rng(0).random((64, 64)).astype(np.float32)


class _Fake(nn.Module):
    """Returns what ``make(x)`` gives; ``path`` plays the file it was loaded from."""

    def __init__(self, make, path="fake-model.pt"):
        super().__init__()
        self.make = make
        self.path = Path(path)

    def forward(self, x):
        return self.make(x)


def _nan_checkpoint(tmp_path: Path) -> Path:
    model = build_model(CFG)
    with torch.no_grad():
        next(model.parameters())[0].fill_(float("nan"))
    return save_checkpoint(tmp_path / "nan.pt", model, model_config=CFG)


def test_nan_weights_are_refused_on_load(tmp_path):
    path = _nan_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="NaN or infinite weights") as info:
        load_model(path)
    assert "nan.pt" in str(info.value)


@pytest.mark.parametrize("make, phrase", [
    (lambda x: torch.full((x.shape[0], 2, *x.shape[-2:]), float("nan")), "NaN or infinite"),
    (lambda x: torch.zeros(x.shape[0], 2, 8, 8), "returned logits of shape"),
    (lambda x: torch.zeros(x.shape[0], 1, *x.shape[-2:]), "classes >= 2"),
    (lambda x: torch.zeros(3), "returned logits of shape"),
])
def test_unusable_logits_are_one_error_naming_the_model(make, phrase):
    with pytest.raises(ModelOutputError, match=phrase) as info:
        predict_image(_Fake(make), IMAGE, tile=64, overlap=16)
    assert str(info.value).startswith("fake-model.pt: ")


def test_a_model_failing_inside_is_one_error():
    def explode(_x):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 80 GB\nmore")

    with pytest.raises(ModelOutputError, match="failed on tiles .*can't allocate memory"):
        predict_image(_Fake(explode), IMAGE, tile=64, overlap=16)


@pytest.mark.parametrize("error", [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has ..."),
    RuntimeError("MPS backend out of memory (MPS allocated: 9 GB)"), MemoryError()])
def test_out_of_memory_in_inference_gives_advice_not_allocator_statistics(error):
    def exhaust(_x):
        raise error

    with pytest.raises(ModelOutputError, match="ran out of memory on tiles") as info:
        predict_image(_Fake(exhaust), IMAGE, tile=64, overlap=16)
    assert "smaller --tile" in str(info.value) and "allocate" not in str(info.value)


def test_cli_predict_with_nan_weights_exits_2_with_one_line(tmp_path):
    path = _nan_checkpoint(tmp_path)
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray((IMAGE * 60000).astype(np.uint16)).save(images / "a.png")
    res = subprocess.run([sys.executable, "-m", "napari_crack_al.cli.main", "predict", str(path),
                          str(images), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("error: ") and "NaN or infinite weights" in lines[-1]
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "out" / "a.png").exists()
