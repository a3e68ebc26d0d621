"""The one validator of config fields (core/checks.py) and the configs built on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from napari_crack_al.core.checks import Problems
from napari_crack_al.core.detector.ridge import DetectorConfig
from napari_crack_al.core.errors import ConfigError
from napari_crack_al.core.model.config import ModelConfig
from napari_crack_al.core.training.contrastive import ContrastiveConfig


@dataclass
class _Fields:
    widths: Any = (1, 2)
    scales: Any = (0.5, 2)


def test_integers_returns_a_tuple_or_records_the_problem():
    check = Problems(_Fields(widths=[3, 4]))
    assert check.integers("widths", 1, 10, count=2) == (3, 4)
    assert not check.messages
    for bad in ([3], [3, 0], [3, True], "ab", None):
        check = Problems(_Fields(widths=bad))
        assert check.integers("widths", 1, 10, count=2) is None
        assert check.messages == [f"widths must be 2 integers in [1, 10] (got {bad!r})"]
    check = Problems(_Fields(widths=None))
    assert check.integers("widths", 1, none_ok=True) is None and not check.messages


def test_numbers_refuses_non_positive_and_non_finite_values():
    assert Problems(_Fields(scales=[0.5, 2])).numbers("scales", 0.0, low_open=True) == (0.5, 2.0)
    for bad in ([0.0], [1.0, float("nan")], [], [False]):
        check = Problems(_Fields(scales=bad))
        assert check.numbers("scales", 0.0, low_open=True) is None
        assert "scales must be a non-empty sequence of numbers > 0.0" in check.messages[0]


@pytest.mark.parametrize("cls, kwargs, phrases", [
    (ModelConfig, dict(encoder="vgg", dropout=1.0, output_stride=4),
     ["encoder must be one of resnet18", "dropout", "output_stride must be one of 16, 8, 32"]),
    (ContrastiveConfig, dict(temperature=0, low_rank=2, high_rank=2, label_mode="min"),
     ["temperature", "1 <= low_rank < high_rank", "label_mode must be one of nearest, max"]),
    (DetectorConfig, dict(sigmas=(), min_length=0, darker=-1),
     ["sigmas", "min_length must be an integer >= 1", "darker"]),
])
def test_a_config_lists_every_problem_in_one_error(cls, kwargs, phrases):
    with pytest.raises(ConfigError, match=f"invalid {cls.__name__}: ") as info:
        cls(**kwargs)
    for phrase in phrases:
        assert phrase in str(info.value)


def test_sequences_are_stored_as_tuples():
    cfg = ModelConfig(unet_channels=[64, 32, 16, 8, 4], multi_grid=[1, 2])
    assert cfg.unet_channels == (64, 32, 16, 8, 4) and cfg.multi_grid == (1, 2)
    assert DetectorConfig(sigmas=[1, 3]).sigmas == (1.0, 3.0)


@dataclass
class _Ranges:
    width: Any = (1, 3)
    kinds: Any = ("a",)


def test_pair_checks_order_bounds_and_integers():
    assert Problems(_Ranges(width=[1, 3])).pair("width", 0, 10) == (1.0, 3.0)
    assert Problems(_Ranges()).pair("width", 0, 10, integer=True) == (1, 3)
    for bad, phrase in (((3, 1), "0 <= min <= max <= 10"), ((1, 11), "0 <= min <= max <= 10"),
                        ((1.5, 2), "integers"), (5, "pair"), (("a", 1), "pair")):
        check = Problems(_Ranges(width=bad))
        assert check.pair("width", 0, 10, integer=True) is None
        assert phrase in check.messages[0]
    assert Problems(_Ranges(width=(9, 2))).pair("width", 0, 10, ordered=False) == (9.0, 2.0)


def test_members_normalise_a_name_to_a_tuple_and_list_the_valid_ones():
    assert Problems(_Ranges(kinds="a")).members("kinds", ("a", "b")) == ("a",)
    check = Problems(_Ranges(kinds=["a", "z"]))
    assert check.members("kinds", ("a", "b")) is None
    assert check.messages == ["unknown kinds ['z']; valid: a, b"]
