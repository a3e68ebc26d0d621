"""A training run checks where its model goes before step 1, and a failed save is one clear error."""

from __future__ import annotations

import errno
from collections import namedtuple

import numpy as np
import pytest
import torch

from napari_crack_al.core.errors import CheckpointError
from napari_crack_al.core.events import StepEvent
from napari_crack_al.core.io.range_io import RangeImage
from napari_crack_al.core.synthetic import SyntheticConfig, generate_range_image
from napari_crack_al.core.training import checkpointing
from napari_crack_al.core.training.config import TrainConfig
from napari_crack_al.core.training.data import from_range_image
from napari_crack_al.core.training.trainer import train

torch.set_num_threads(1)

SMALL = SyntheticConfig(size=80, width_px=(2, 6), depth_mm=(2, 5), texture_mm=0.3,
                        distractors=False, no_crack_fraction=0.0)
_Usage = namedtuple("_Usage", "total used free")


@pytest.fixture(scope="module")
def labeled():
    items = []
    for i in range(2):
        s = generate_range_image((0, i), SMALL)
        ri = RangeImage(s.range_image.astype(np.float32), s.range_image > 0, None, "uint16")
        items.append(from_range_image(ri, s.mask, name=f"img{i}"))
    return items


def _cfg() -> TrainConfig:
    return TrainConfig(mode="supervised", iterations=3, crop_size=64, batch_size=2, threads=1,
                       seed=0, device="cpu")


def _drive(gen) -> list:
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration:
            return events


def test_a_full_disk_is_refused_before_the_first_step(labeled, tmp_path, monkeypatch):
    monkeypatch.setattr(checkpointing.shutil, "disk_usage", lambda _p: _Usage(10**9, 10**9, 10**6))
    events = []
    with pytest.raises(CheckpointError, match="not enough free space for the model") as info:
        gen = train(labeled, [], _cfg(), checkpoint_path=tmp_path / "m.pt")
        while True:
            events.append(next(gen))
    assert str(tmp_path) in str(info.value)
    assert not [e for e in events if isinstance(e, StepEvent)]  # no step was wasted
    assert not (tmp_path / "m.pt").exists()


def test_an_unwritable_folder_is_refused_before_the_first_step(labeled, tmp_path, monkeypatch):
    def refuse(_folder):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(checkpointing, "probe_writable", refuse)
    with pytest.raises(CheckpointError, match="cannot be written here .permission denied"):
        _drive(train(labeled, [], _cfg(), checkpoint_path=tmp_path / "m.pt"))


def test_checkpoint_size_estimate_covers_the_real_file(labeled, tmp_path):
    from napari_crack_al.core.model import build_model, preset_config

    model = build_model(preset_config("fast"))
    _drive(train(labeled, [], _cfg(), checkpoint_path=tmp_path / "m.pt"))
    size = (tmp_path / "m.pt").stat().st_size
    assert size <= checkpointing.checkpoint_bytes(model) <= size + 8 * 2**20


def test_a_failed_save_is_one_error_and_keeps_the_previous_model(labeled, tmp_path, monkeypatch):
    out = tmp_path / "m.pt"
    _drive(train(labeled, [], _cfg(), checkpoint_path=out))
    before = out.read_bytes()

    def disk_full(*_a, **_kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    import napari_crack_al.core.model.checkpoint as ckpt_module

    monkeypatch.setattr(ckpt_module.torch, "save", disk_full)
    with pytest.raises(CheckpointError, match="could not write the model .No space left"):
        _drive(train(labeled, [], _cfg(), checkpoint_path=out))
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left
