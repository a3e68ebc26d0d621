"""The crack segmenter: ResNet encoder -> decoder (by name) -> classifier, representation, aux."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError
from .config import ModelConfig
from .decoders import build_decoder
from .prior import RidgePrior
from .deeplab import AuxHead, RepresentationHead
from .resnet import ResNetEncoder, build_encoder

__all__ = ["SegmenterOutput", "CrackSegmenter", "build_model", "load_encoder_weights",
           "adapt_input_conv"]

log = logging.getLogger(__name__)


class SegmenterOutput(NamedTuple):
    """What :meth:`CrackSegmenter.forward` returns.

    Attributes
    ----------
    logits : Tensor
        (B, num_classes, H, W) class logits at the input size (computed there by the
        full-resolution decoders, bilinearly upsampled from 1/4 by ``deeplabv3plus``).
    features : Tensor or None
        (B, rep_dim, H/4, W/4) representation features (un-normalised) when
        ``with_features=True``, else None.
    aux_logits : Tensor or None
        (B, num_classes, H, W) logits of the auxiliary head on layer3, only in
        training mode and when the model has an aux head, else None.
    """

    logits: torch.Tensor
    features: torch.Tensor | None
    aux_logits: torch.Tensor | None


def _init_module(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class CrackSegmenter(nn.Module):
    """Encoder -> decoder -> classifier, with a U2PL representation head and an aux head.

    Parameters
    ----------
    config : ModelConfig
        The architecture.

    Attributes
    ----------
    config : ModelConfig
    encoder : ResNetEncoder
    decoder : nn.Module
        The decoder named by ``config.decoder`` (see :mod:`.decoders`).
    classifier : nn.Module
        Its classification head.
    logits_stride : int
        Stride of the classifier's logits (4 for ``deeplabv3plus``, else 1).
    representation : RepresentationHead
    aux : AuxHead or None
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.prior: RidgePrior | None = RidgePrior() if config.ridge_prior else None
        self.encoder: ResNetEncoder = build_encoder(
            config.encoder, in_channels=config.in_channels + (1 if config.ridge_prior else 0),
            output_stride=config.output_stride, multi_grid=config.multi_grid,
        )
        c3 = self.encoder.out_channels[2]
        self.decoder, self.classifier, self.logits_stride = build_decoder(config, self.encoder)
        self.representation = RepresentationHead(self.decoder.rep_channels,
                                                 config.decoder_channels, config.rep_dim)
        self.aux: AuxHead | None = (
            AuxHead(c3, config.decoder_channels, config.num_classes, config.dropout)
            if config.aux_head else None
        )
        for head in (self.decoder, self.classifier, self.representation, self.aux):
            if head is not None:
                _init_module(head)

    def forward(self, x: torch.Tensor, with_features: bool = False,
                feature_dropout: float = 0.0) -> SegmenterOutput:
        """Segment ``x``.

        Parameters
        ----------
        x : Tensor
            (B, in_channels, H, W) normalised images, any H and W (>= 32 recommended).
        with_features : bool
            Also compute the representation features (for the contrastive loss).
        feature_dropout : float
            Channel dropout on every encoder stage before the decoder (the feature
            perturbation stream of weak-to-strong training; applied in any mode).

        Returns
        -------
        SegmenterOutput
        """
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"expected input of shape (B, {self.config.in_channels}, H, W), "
                f"got {tuple(x.shape)}"
            )
        size = x.shape[-2:]
        if self.prior is not None:
            x = torch.cat([x, self.prior(x)], dim=1)
        stages = self.encoder(x, with_stem=True)  # a call, so forward hooks see it
        if feature_dropout > 0:
            stages = [F.dropout2d(s, feature_dropout, training=True) for s in stages]
        head_in, rep_in = self.decoder(x, stages)
        logits = self.classifier(head_in)
        if logits.shape[-2:] != size:
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        features = self.representation(rep_in) if with_features else None
        aux = None
        if self.aux is not None and self.training:
            aux = F.interpolate(self.aux(stages[3]), size=size, mode="bilinear",
                                align_corners=False)
        return SegmenterOutput(logits, features, aux)

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the encoder (for a smaller learning rate than the heads)."""
        return self.encoder.parameters()

    def head_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the decoder and all heads."""
        for name, p in self.named_parameters():
            if not name.startswith("encoder."):
                yield p


def build_model(config: ModelConfig) -> CrackSegmenter:
    """Build a randomly initialised :class:`CrackSegmenter` (nothing is downloaded).

    Parameters
    ----------
    config : ModelConfig
        The architecture (see also :data:`~napari_crack_al.core.model.config.PRESETS`).
    """
    if not isinstance(config, ModelConfig):
        raise TypeError(f"build_model expects a ModelConfig, got {type(config).__name__}")
    return CrackSegmenter(config)


def adapt_input_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Adapt a first-conv weight (out, 3, k, k) trained on RGB to ``in_channels`` inputs.

    For one channel the RGB filters are summed, so a grey image (R = G = B) gives the
    same response as before. For other counts the RGB filters are tiled and scaled by
    ``3 / in_channels``, which keeps the expected response to equal channels.
    """
    cin = weight.shape[1]
    if cin == in_channels:
        return weight
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    reps = math.ceil(in_channels / cin)
    return weight.repeat(1, reps, 1, 1)[:, :in_channels] * (cin / in_channels)


def _unwrap_state_dict(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise CheckpointError(
            path, "not a ResNet state dict (expected a mapping of names to tensors)"
        )
    sd = {k.removeprefix("module."): v for k, v in obj.items()}
    if any(k.startswith("encoder.") for k in sd):  # a full CrackSegmenter state dict
        sd = {k.removeprefix("encoder."): v for k, v in sd.items() if k.startswith("encoder.")}
    return {k: v for k, v in sd.items() if not k.startswith("fc.")}


def _list(keys: list[str], limit: int = 12) -> str:
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_encoder_weights(model: CrackSegmenter | ResNetEncoder, path: str | Path) -> None:
    """Load a torchvision-compatible ResNet state dict from a LOCAL file into the encoder.

    ``fc.*`` entries are dropped; a 3-channel first conv is reduced to the model's input
    channels (see :func:`adapt_input_conv`); ``module.`` prefixes and a ``state_dict``
    wrapper are accepted. The file is read with ``torch.load(weights_only=True)``.

    Parameters
    ----------
    model : CrackSegmenter or ResNetEncoder
        The model whose encoder receives the weights (in place).
    path : str or Path
        A ``.pth`` file, e.g. torchvision's ``resnet50-*.pth`` copied by the user.

    Raises
    ------
    CheckpointError
        Missing/unreadable/unsafe file, or keys/shapes that do not match the encoder
        (the message lists them).
    """
    from .torch_load import safe_torch_load

    path = Path(path)
    encoder = model.encoder if isinstance(model, CrackSegmenter) else model
    if not isinstance(encoder, ResNetEncoder):
        raise TypeError(f"expected a CrackSegmenter or ResNetEncoder, got {type(model).__name__}")
    sd = _unwrap_state_dict(safe_torch_load(path), path)
    expected = encoder.state_dict()
    optional = {k for k in expected if k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(sd) - optional)
    unexpected = sorted(set(sd) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {_list(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_list(unexpected)}")
        raise CheckpointError(
            path, f"does not match a ResNet-{encoder.depth} encoder; " + "; ".join(parts)
        )
    w = sd["conv1.weight"]
    if w.ndim == 4 and w.shape[1] != encoder.in_channels:
        if w.shape[1] != 3:
            raise CheckpointError(
                path, f"conv1 has {w.shape[1]} input channels; expected 3 (RGB) or "
                f"{encoder.in_channels}"
            )
        sd["conv1.weight"] = adapt_input_conv(w, encoder.in_channels)
    bad = [f"{k} {tuple(sd[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
           if k in sd and sd[k].shape != v.shape]
    if bad:
        raise CheckpointError(path, f"tensor shapes do not match the encoder: {_list(bad, 6)}")
    for k in optional - set(sd):
        sd[k] = expected[k].clone()
    encoder.load_state_dict(sd, strict=True)
    log.info("loaded encoder weights from %s", path)
