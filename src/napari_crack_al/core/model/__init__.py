"""The segmentation model: ResNet encoder -> decoder (by name) -> heads; presets; checkpoints.

The public names are re-exported lazily, so that ``from napari_crack_al.core.model.config
import PRESETS`` (e.g. for a CLI ``--preset`` choice list) does not import torch; every
other submodule does.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CHECKPOINT_FORMAT": "checkpoint",
    "Checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "load_model": "checkpoint",
    "safe_torch_load": "torch_load",
    "save_checkpoint": "checkpoint",
    "DECODERS": "config",
    "ENCODERS": "config",
    "OUTPUT_STRIDES": "config",
    "PRESETS": "config",
    "ModelConfig": "config",
    "Preset": "config",
    "get_preset": "config",
    "preset_config": "config",
    "ResNetEncoder": "resnet",
    "build_encoder": "resnet",
    "CrackSegmenter": "segmenter",
    "SegmenterOutput": "segmenter",
    "build_model": "segmenter",
    "load_encoder_weights": "segmenter",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
