"""Model configuration and presets.

:class:`ModelConfig` describes the architecture (encoder, output stride, decoder
widths, heads) with JSON-able primitives only, so that it is stored inside a
checkpoint and loaded back with ``torch.load(weights_only=True)``.
A :class:`Preset` bundles a model configuration with the crop size, batch size
and number of iterations suggested for training it on a given kind of machine.

This module does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..checks import Problems
from ..config_io import ConfigIO
from ..errors import ConfigError

__all__ = [
    "DECODERS",
    "LEGACY_DECODER",
    "ENCODERS",
    "OUTPUT_STRIDES",
    "ModelConfig",
    "Preset",
    "PRESETS",
    "get_preset",
    "preset_config",
]

#: Supported encoders and their number of residual blocks per stage.
ENCODERS: dict[str, tuple[int, int, int, int]] = {
    "resnet18": (2, 2, 2, 2),
    "resnet34": (3, 4, 6, 3),
    "resnet50": (3, 4, 6, 3),
    "resnet101": (3, 4, 23, 3),
}
#: Supported output strides (ratio of input size to the encoder's last feature map): 32 is
#: the plain ResNet (no dilation; enough for a U-Net decoder, which reads every stage).
OUTPUT_STRIDES: tuple[int, ...] = (16, 8, 32)
#: Decoders by name (see :mod:`napari_crack_al.core.model.decoders`).
DECODERS: tuple[str, ...] = ("unet", "deeplabv3plus", "deeplabv3plus_unet")
#: The decoder of checkpoints written before the decoder could be chosen.
LEGACY_DECODER = "deeplabv3plus"


#: Largest channel count of any layer a config may ask for: a checkpoint whose config would
#: build a model of many GB is refused before anything is allocated (ResNet-101 has 2048).
MAX_CHANNELS = 4096
#: Largest input channel count and class count.
MAX_IN_CHANNELS = 16
MAX_CLASSES = 256


@dataclass(frozen=True)
class ModelConfig(ConfigIO):
    """Architecture of a :class:`~napari_crack_al.core.model.segmenter.CrackSegmenter`.

    Parameters
    ----------
    encoder : str
        One of ``"resnet18"``, ``"resnet34"``, ``"resnet50"``, ``"resnet101"``.
    decoder : str
        One of :data:`DECODERS`: ``"unet"`` (a U-Net decoder on the encoder's stages, to
        full resolution; the presets' choice, measured best per CPU second in
        docs/model.md), ``"deeplabv3plus"`` (U2PL's own, logits at 1/4) or
        ``"deeplabv3plus_unet"`` (DeepLabV3+ with a U-Net refinement to full resolution).
    in_channels : int
        Input channels (1 for range images).
    num_classes : int
        Output classes (2: background, crack).
    output_stride : int
        16 (layer4 dilated), 8 (layer3 and layer4 dilated) or 32 (no dilation).
    decoder_channels : int
        Width of the ASPP and of the DeepLabV3+ decoder.
    low_level_channels : int
        Width of the 1x1 projection of the layer1 (1/4) features.
    rep_dim : int
        Dimension of the representation head's features (contrastive loss).
    aux_head : bool
        Whether to build the auxiliary head on layer3 (used in training only).
    dropout : float
        Dropout probability in the ASPP projection and the decoder, in [0, 1).
    multi_grid : tuple of int or None
        Multi-grid dilation multipliers for the blocks of layer4 (e.g. ``(1, 2, 4)``),
        cycled when layer4 has more blocks; None for a constant dilation.
    refine_channels : (int, int)
        Widths of the ``deeplabv3plus_unet`` refinement at stride 2 and at full resolution.
    unet_channels : tuple of 5 int
        Widths of the ``unet`` decoder's blocks, deepest first.
    ridge_prior : bool
        Feed the network the training-free detector's dark-ridge response as an extra
        input channel, computed inside the model by a fixed filter
        (:class:`~napari_crack_al.core.model.prior.RidgePrior`).
    """

    encoder: str = "resnet50"
    decoder: str = "unet"
    in_channels: int = 1
    num_classes: int = 2
    output_stride: int = 16
    decoder_channels: int = 256
    low_level_channels: int = 48
    rep_dim: int = 256
    aux_head: bool = True
    dropout: float = 0.1
    multi_grid: tuple[int, ...] | None = None
    refine_channels: tuple[int, ...] = (32, 16)
    unet_channels: tuple[int, ...] = (256, 128, 64, 32, 16)
    ridge_prior: bool = False

    def __post_init__(self) -> None:
        check = Problems(self)
        check.choice("encoder", ENCODERS)
        check.choice("decoder", DECODERS)
        check.choice("output_stride", OUTPUT_STRIDES)
        check.integer("in_channels", 1, MAX_IN_CHANNELS)
        check.integer("num_classes", 2, MAX_CLASSES)
        for name in ("decoder_channels", "low_level_channels", "rep_dim"):
            check.integer(name, 1, MAX_CHANNELS)
        check.boolean("ridge_prior", "aux_head")
        check.number("dropout", 0.0, 1.0, high_open=True)
        widths = {"refine_channels": check.integers("refine_channels", 1, MAX_CHANNELS, count=2),
                  "unet_channels": check.integers("unet_channels", 1, MAX_CHANNELS, count=5),
                  "multi_grid": check.integers("multi_grid", 1, none_ok=True)}
        check.raise_if_any("ModelConfig")
        for name, value in widths.items():
            object.__setattr__(self, name, value)


@dataclass(frozen=True)
class Preset:
    """A model configuration with the training settings suggested for it.

    Parameters
    ----------
    name : str
        Preset name (a key of :data:`PRESETS`).
    model : ModelConfig
        The architecture.
    crop_size : int
        Side of the square training crops.
    batch_size : int
        Labelled images per training batch.
    iterations : int
        Suggested number of optimisation steps for one training round.
    description : str
        One line for menus and the CLI help.
    """

    name: str
    model: ModelConfig
    crop_size: int
    batch_size: int
    iterations: int
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.model, ModelConfig):
            raise ConfigError(
                f"preset model must be a ModelConfig, got {type(self.model).__name__}"
            )
        check = Problems(self)
        check.integer("crop_size", 32, MAX_CHANNELS)
        check.integer("batch_size", 1, MAX_CHANNELS)
        check.integer("iterations", 1, 10**9)
        check.raise_if_any("Preset")

    def to_dict(self) -> dict[str, Any]:
        """Return the preset as JSON-able primitives."""
        return {
            "name": self.name,
            "model": self.model.to_dict(),
            "crop_size": self.crop_size,
            "batch_size": self.batch_size,
            "iterations": self.iterations,
            "description": self.description,
        }


PRESETS: dict[str, Preset] = {
    "fast": Preset(
        name="fast",
        model=ModelConfig(
            encoder="resnet18",
            decoder="unet",
            output_stride=32,
            decoder_channels=64,
            low_level_channels=24,
            rep_dim=64,
            aux_head=True,
        ),
        crop_size=256,
        batch_size=4,
        iterations=1000,
        description="ResNet-18, U-Net decoder to full resolution: trains and predicts on a laptop CPU",
    ),
    "accurate": Preset(
        name="accurate",
        model=ModelConfig(
            encoder="resnet50",
            decoder="unet",
            output_stride=32,
            decoder_channels=256,
            low_level_channels=48,
            rep_dim=256,
            aux_head=True,
        ),
        crop_size=512,
        batch_size=8,
        iterations=8000,
        description="ResNet-50, U-Net decoder to full resolution: for a GPU",
    ),
}


def get_preset(name: str) -> Preset:
    """Return the preset called ``name``.

    Raises
    ------
    ConfigError
        If ``name`` is not a preset; the message lists the valid names.
    """
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}"
        ) from None


def preset_config(name: str) -> ModelConfig:
    """Return the :class:`ModelConfig` of the preset called ``name``.

    Use :func:`get_preset` for the crop size, batch size and iterations too.

    Raises
    ------
    ConfigError
        If ``name`` is not a preset; the message lists the valid names.
    """
    return get_preset(name).model
