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


def _check_widths(name: str, value: Any, count: int) -> tuple[int, ...]:
    widths = tuple(value) if isinstance(value, (list, tuple)) else None
    if widths is None or len(widths) != count or any(
            isinstance(w, bool) or not isinstance(w, int) or not 1 <= w <= MAX_CHANNELS
            for w in widths):
        raise ConfigError(f"{name} must be {count} integers in [1, {MAX_CHANNELS}], "
                          f"got {value!r}")
    return widths


def _check_int(name: str, value: Any, minimum: int, maximum: int = MAX_CHANNELS) -> None:
    if (isinstance(value, bool) or not isinstance(value, int) or value < minimum
            or value > maximum):
        raise ConfigError(f"{name} must be an integer in [{minimum}, {maximum}], got {value!r}")


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
        if self.encoder not in ENCODERS:
            raise ConfigError(
                f"unknown encoder {self.encoder!r}; valid encoders: {', '.join(ENCODERS)}"
            )
        if self.decoder not in DECODERS:
            raise ConfigError(
                f"unknown decoder {self.decoder!r}; valid decoders: {', '.join(DECODERS)}"
            )
        object.__setattr__(self, "refine_channels",
                           _check_widths("refine_channels", self.refine_channels, 2))
        object.__setattr__(self, "unet_channels",
                           _check_widths("unet_channels", self.unet_channels, 5))
        if self.output_stride not in OUTPUT_STRIDES:
            raise ConfigError(
                f"output_stride must be one of {', '.join(map(str, OUTPUT_STRIDES))}, "
                f"got {self.output_stride!r}"
            )
        _check_int("in_channels", self.in_channels, 1, MAX_IN_CHANNELS)
        _check_int("num_classes", self.num_classes, 2, MAX_CLASSES)
        _check_int("decoder_channels", self.decoder_channels, 1)
        _check_int("low_level_channels", self.low_level_channels, 1)
        _check_int("rep_dim", self.rep_dim, 1)
        if not isinstance(self.ridge_prior, bool):
            raise ConfigError(f"ridge_prior must be True or False, got {self.ridge_prior!r}")
        if not isinstance(self.aux_head, bool):
            raise ConfigError(f"aux_head must be True or False, got {self.aux_head!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not (
            0.0 <= float(self.dropout) < 1.0
        ):
            raise ConfigError(f"dropout must be a number in [0, 1), got {self.dropout!r}")
        if self.multi_grid is not None:
            grid = tuple(self.multi_grid) if isinstance(self.multi_grid, (list, tuple)) else None
            if not grid or any(
                isinstance(g, bool) or not isinstance(g, int) or g < 1 for g in grid
            ):
                raise ConfigError(
                    f"multi_grid must be None or a non-empty sequence of integers >= 1 "
                    f"(e.g. [1, 2, 4]), got {self.multi_grid!r}"
                )
            object.__setattr__(self, "multi_grid", grid)


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
        _check_int("crop_size", self.crop_size, 32)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("iterations", self.iterations, 1, 10**9)

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
