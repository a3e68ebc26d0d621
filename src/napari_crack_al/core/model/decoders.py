"""Decoders chosen by name, composed like segmentation_models_pytorch: encoder -> decoder -> head.

=====================  ==========================================================  ==========
name                   what                                                        logits at
=====================  ==========================================================  ==========
``deeplabv3plus``      DeepLabV3+ (U2PL's own): ASPP + layer1, classifier at 1/4   1/4, ×4
``deeplabv3plus_unet`` DeepLabV3+ then a U-Net refinement with the stem and input  full size
``unet``               plain U-Net decoder on the encoder stages, stem and input   full size
=====================  ==========================================================  ==========

:func:`build_decoder` returns the decoder and the classification head that fits it.
Every decoder's ``forward(x, stages)`` returns ``(head features, representation
features)``; the representation features are at 1/4 resolution for all of them.
"""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError
from .config import DECODERS, ModelConfig
from .deeplab import ClassifierHead, DeepLabV3PlusDecoder, LogitsHead, aspp_rates
from .resnet import ResNetEncoder
from .unet import DeepLabV3PlusUNetDecoder, UNetDecoder

__all__ = ["DECODERS", "build_decoder"]


def build_decoder(config: ModelConfig, encoder: ResNetEncoder) -> tuple[nn.Module, nn.Module, int]:
    """The decoder named by ``config.decoder``, its classification head and its output stride.

    Parameters
    ----------
    config : ModelConfig
        The architecture.
    encoder : ResNetEncoder
        The encoder whose stages the decoder reads (its channels).

    Returns
    -------
    (nn.Module, nn.Module, int)
        Decoder, head, and the stride of the head's logits (4 or 1).

    Raises
    ------
    ConfigError
        Unknown decoder name (the message lists the valid ones).
    """
    c1, _, _, c4 = encoder.out_channels
    name = config.decoder
    if name in ("deeplabv3plus", "deeplabv3plus_unet"):
        deeplab = DeepLabV3PlusDecoder(c4, c1, config.decoder_channels, config.low_level_channels,
                                       aspp_rates(config.output_stride), config.dropout)
        if name == "deeplabv3plus":
            head = ClassifierHead(deeplab.out_channels, config.decoder_channels,
                                  config.num_classes, config.dropout)
            return deeplab, head, 4
        decoder = DeepLabV3PlusUNetDecoder(deeplab, config.decoder_channels,
                                           encoder.stem_channels, encoder.in_channels,
                                           config.refine_channels, config.dropout)
        return decoder, LogitsHead(decoder.out_channels, config.num_classes), 1
    if name == "unet":
        stages = (encoder.stem_channels, *encoder.out_channels)
        decoder = UNetDecoder(stages, encoder.in_channels, config.unet_channels, config.dropout)
        return decoder, LogitsHead(decoder.out_channels, config.num_classes), 1
    raise ConfigError(f"unknown decoder {name!r}; valid decoders: {', '.join(DECODERS)}")
