"""The shared to_dict / from_dict of frozen configurations."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from napari_crack_al.core.config_io import ConfigIO
from napari_crack_al.core.errors import ConfigError
from napari_crack_al.core.model.config import ModelConfig
from napari_crack_al.core.synthetic.config import SyntheticConfig
from napari_crack_al.core.training.config import TrainConfig


@dataclass(frozen=True)
class Toy(ConfigIO):
    size: tuple[int, int] = (4, 5)
    name: str = "x"


def test_round_trip_through_json_restores_tuples():
    toy = Toy(size=(7, 8))
    data = json.loads(json.dumps(toy.to_dict()))
    assert data == {"size": [7, 8], "name": "x"}
    assert Toy.from_dict(data) == toy
    assert hash(Toy.from_dict(data)) == hash(toy)


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown Toy keys \['colour'\]; valid keys: size, name"):
        Toy.from_dict({"colour": 1})


def test_not_a_mapping():
    with pytest.raises(ConfigError, match="must be a mapping"):
        Toy.from_dict([1, 2])


@pytest.mark.parametrize("config", [
    ModelConfig(encoder="resnet18", multi_grid=(1, 2, 4), output_stride=8),
    TrainConfig.from_preset("fast", iterations=7),
    SyntheticConfig(size=(64, 96)),
])
def test_project_configs_round_trip(config):
    assert type(config).from_dict(json.loads(json.dumps(config.to_dict()))) == config
