"""Stored crack-probability maps of a project: ``.crack-al/probabilities/NAME.png``.

A round writes each unlabeled image's crack probability as a uint8 PNG (0..255,
atomically) so the napari panel can show it as an overlay without re-running the
model. :mod:`.round` re-exports these names.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..io.atomic import atomic_write_bytes

__all__ = ["PROBABILITY_DIR", "probability_path", "write_probability", "read_probability"]

log = logging.getLogger(__name__)

PROBABILITY_DIR = "probabilities"


def probability_path(project: Any, name: str) -> Path:
    """``.crack-al/probabilities/NAME.png``: the stored crack probability of an image."""
    from ..project.records import safe_component

    return Path(project.state_dir) / PROBABILITY_DIR / f"{safe_component(name)}.png"


def write_probability(project: Any, name: str, probability: np.ndarray) -> Path:
    """Store a crack probability map as a uint8 PNG (0..255), atomically."""
    from PIL import Image

    prob = np.asarray(probability, dtype=np.float32)
    if prob.ndim != 2:
        raise ValueError(f"probability must be 2-D, got shape {prob.shape}")
    u8 = np.round(np.clip(np.nan_to_num(prob), 0.0, 1.0) * 255.0).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="PNG")
    path = probability_path(project, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(path, buf.getvalue())


def read_probability(project: Any, name: str) -> np.ndarray | None:
    """The stored crack probability of ``name`` as float32 (H, W) in [0, 1], or None.

    None when no map was stored (or the file cannot be decoded; a warning is logged).
    """
    from PIL import Image, UnidentifiedImageError

    path = probability_path(project, name)
    if not path.is_file():
        return None
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("L"), dtype=np.float32)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        log.warning("%s: cannot read the stored probability (%s)", path, exc)
        return None
    return arr / np.float32(255.0)
