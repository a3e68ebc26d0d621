"""Shared fixtures: tiny deterministic data, offline everything."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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
