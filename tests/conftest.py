"""Shared fixtures: tiny deterministic data, offline everything."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

#: Why a ``cuda``-marked test did not run.
NO_CUDA = "needs a CUDA GPU (torch.cuda.is_available() is False)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``cuda`` on a machine without a CUDA GPU.

    torch is imported only when such a test was collected, so that a run of tests that
    need no torch stays free of it.
    """
    marked = [item for item in items if item.get_closest_marker("cuda") is not None]
    if not marked:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=NO_CUDA)
    for item in marked:
        item.add_marker(skip)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def uav75_dir() -> Path:
    """The real crack photographs beside the checkout; skip only where they are absent."""
    path = SHARED_DATA / "uav75"
    if not (path / "images").is_dir():
        pytest.skip("../shared/data/uav75 is not present beside this checkout")
    return path
