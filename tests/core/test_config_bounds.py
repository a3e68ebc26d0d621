"""Configs are bounded before anything is built: no multi-GB model or step from a typo or a file."""

from __future__ import annotations

import pytest
import torch

from napari_crack_al.core.errors import CheckpointError, ConfigError
from napari_crack_al.core.model import ModelConfig, load_checkpoint, preset_config
from napari_crack_al.core.model.checkpoint import CHECKPOINT_FORMAT
from napari_crack_al.core.training.config import TrainConfig


@pytest.mark.parametrize("field, value", [("decoder_channels", 10**6), ("rep_dim", 10**7),
                                          ("low_level_channels", 5000), ("in_channels", 64),
                                          ("num_classes", 10**5),
                                          ("unet_channels", (256, 128, 64, 32, 10**6))])
def test_model_config_refuses_huge_layers(field, value):
    with pytest.raises(ConfigError, match=field):
        ModelConfig(**{**preset_config("fast").to_dict(), field: value})


def test_a_checkpoint_whose_config_would_build_a_huge_model_is_one_error(tmp_path):
    path = tmp_path / "huge.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "state_dict": {},
                "model_config": {**preset_config("fast").to_dict(), "decoder_channels": 10**6},
                "train_config": {}, "metadata": {}}, path)
    with pytest.raises(CheckpointError, match="incompatible model configuration.*"
                                              "decoder_channels") as info:
        load_checkpoint(path)
    assert "huge.pt" in str(info.value)


@pytest.mark.parametrize("kw, phrase", [({"batch_size": 100000}, "batch_size must be an integer in"),
                                        ({"crop_size": 8192}, "crop_size must be an integer in"),
                                        ({"batch_size": 512, "crop_size": 1024},
                                         "pixels per step")])
def test_train_config_refuses_steps_no_machine_can_take(kw, phrase):
    with pytest.raises(ConfigError, match=phrase):
        TrainConfig(**kw)


def test_the_presets_and_gpu_sized_steps_stay_valid():
    TrainConfig(preset="accurate", batch_size=8, unlabeled_batch_size=8, crop_size=512)
    TrainConfig(batch_size=32, unlabeled_batch_size=32, crop_size=1024)
    for name in ("fast", "accurate"):
        ModelConfig(**preset_config(name).to_dict())
