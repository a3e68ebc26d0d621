"""The segmentation model: ResNet encoder -> decoder (by name) -> heads; presets; checkpoints.

The public names are re-exported lazily, so that ``from napari_crack_al.core.model.config
import PRESETS`` (e.g. for a CLI ``--preset`` choice list) does not import torch; every
other submodule does.
"""

from __future__ import annotations

from ..lazy import lazy_exports

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

__getattr__, __dir__, __all__ = lazy_exports(__name__, globals(), _EXPORTS)
