"""U-Net decoder blocks: the full-resolution refinement and the plain U-Net decoder.

A 1–3 px crack cannot be drawn from features at 1/4 of the image size: upsampled
×4 it comes out 3–5 px wide. Both decoders here end at full resolution by fusing
finer features on the way up, as U-Net does:

* :class:`FullResolutionRefinement` takes the DeepLabV3+ output at 1/4 and fuses the
  encoder's stem (stride 2) and a feature map computed from the input image itself
  (stride 1) — the hybrid "U-Net with a ResNet encoder and a DeepLabV3+ decoder";
* :class:`UNetDecoder` is a plain U-Net decoder on the same encoder stages
  (layer4 → layer3 → layer2 → layer1 → stem → input).

Upsampling is bilinear to the skip's exact size, so dilated encoders (output stride
8 or 16, where some stages share a size) and odd input sizes work.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .deeplab import conv_bn_relu

__all__ = ["UpBlock", "FullResolutionRefinement", "UNetDecoder", "DeepLabV3PlusUNetDecoder"]


class UpBlock(nn.Module):
    """Upsample to the skip's size, concatenate the skip, two 3x3 conv-BN-ReLU.

    Parameters
    ----------
    cin : int
        Channels of the coarser input.
    skip : int
        Channels of the skip connection.
    cout : int
        Output channels.
    """

    def __init__(self, cin: int, skip: int, cout: int) -> None:
        super().__init__()
        self.conv1 = conv_bn_relu(cin + skip, cout, 3)
        self.conv2 = conv_bn_relu(cout, cout, 3)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if x.shape[-2:] != skip.shape[-2:]:
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv2(self.conv1(torch.cat([x, skip], dim=1)))


class FullResolutionRefinement(nn.Module):
    """Bring 1/4-resolution features to full resolution with the stem and input features.

    Parameters
    ----------
    cin : int
        Channels of the 1/4-resolution features.
    stem_channels : int
        Channels of the encoder's stem (stride 2).
    in_channels : int
        Channels of the input image.
    widths : (int, int)
        Output channels of the stride-2 and the full-resolution blocks.

    Attributes
    ----------
    out_channels : int
        ``widths[1]``: channels of the full-resolution output.
    """

    def __init__(self, cin: int, stem_channels: int, in_channels: int,
                 widths: Sequence[int] = (32, 16)) -> None:
        super().__init__()
        w2, w1 = (int(w) for w in widths)
        self.input_features = conv_bn_relu(in_channels, w1, 3)
        self.up2 = UpBlock(cin, stem_channels, w2)
        self.up1 = UpBlock(w2, w1, w1)
        self.out_channels = w1

    def forward(self, quarter: torch.Tensor, stem: torch.Tensor,
                x: torch.Tensor) -> torch.Tensor:
        """Full-resolution features (B, out_channels, H, W) of ``quarter`` (B, cin, H/4, W/4)."""
        return self.up1(self.up2(quarter, stem), self.input_features(x))


class UNetDecoder(nn.Module):
    """Plain U-Net decoder: layer4 upwards through layer3, 2, 1, the stem and the input.

    Parameters
    ----------
    stage_channels : sequence of int
        Channels of the encoder's ``[stem, layer1, layer2, layer3, layer4]``.
    in_channels : int
        Channels of the input image (its features are the last skip).
    widths : sequence of int
        Output channels of the five blocks, deepest first (e.g. 256, 128, 64, 32, 16).
    dropout : float
        Dropout on the deepest features (the bottleneck), which MC-dropout scoring samples.

    Attributes
    ----------
    out_channels : int
        ``widths[-1]``: channels of the full-resolution output.
    rep_channels : int
        ``widths[2]``: channels of the block at layer1's resolution (1/4), which the
        representation head reads.
    """

    def __init__(self, stage_channels: Sequence[int], in_channels: int,
                 widths: Sequence[int] = (256, 128, 64, 32, 16), dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        stem, c1, c2, c3, c4 = (int(c) for c in stage_channels)
        w = [int(v) for v in widths]
        if len(w) != 5:
            raise ValueError(f"a U-Net decoder needs 5 widths, got {len(w)}")
        self.input_features = conv_bn_relu(in_channels, w[4], 3)
        skips = (c3, c2, c1, stem, w[4])
        ins = (c4, *w[:4])
        self.blocks = nn.ModuleList(UpBlock(i, s, o) for i, s, o in zip(ins, skips, w))
        self.out_channels = w[4]
        self.rep_channels = w[2]

    def forward(self, x: torch.Tensor, stages: Sequence[torch.Tensor],
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (full-resolution features, features at 1/4) for the encoder ``stages``."""
        stem, c1, c2, c3, c4 = stages
        y = self.dropout(c4)
        quarter = y
        for block, skip in zip(self.blocks, (c3, c2, c1, stem, self.input_features(x))):
            y = block(y, skip)
            if skip is c1:
                quarter = y
        return y, quarter


class DeepLabV3PlusUNetDecoder(nn.Module):
    """DeepLabV3+ at 1/4, then a U-Net-style refinement to full resolution.

    The fused DeepLabV3+ map (ASPP on layer4 + projected layer1) goes through the two
    3x3 conv-BN-ReLU(-dropout) of the DeepLabV3+ decoder, then
    :class:`FullResolutionRefinement` fuses the stem (stride 2) and the input's own
    features (stride 1). The representation head reads the fused map at 1/4, as in U2PL.

    Parameters
    ----------
    deeplab : DeepLabV3PlusDecoder
        The 1/4-resolution part.
    mid : int
        Width of the two 3x3 convolutions at 1/4.
    stem_channels, in_channels : int
        Channels of the encoder's stem and of the input image.
    widths : (int, int)
        Widths of the refinement at stride 2 and at full resolution.
    dropout : float
        Dropout after each 3x3 convolution at 1/4.

    Attributes
    ----------
    out_channels, rep_channels : int
        Channels of the full-resolution features and of the representation input.
    """

    def __init__(self, deeplab: nn.Module, mid: int, stem_channels: int, in_channels: int,
                 widths: Sequence[int] = (32, 16), dropout: float = 0.1) -> None:
        super().__init__()
        self.deeplab = deeplab
        self.body = nn.Sequential(
            conv_bn_relu(deeplab.out_channels, mid, 3), nn.Dropout(dropout),
            conv_bn_relu(mid, mid, 3), nn.Dropout(dropout),
        )
        self.refine = FullResolutionRefinement(mid, stem_channels, in_channels, widths)
        self.out_channels = self.refine.out_channels
        self.rep_channels = deeplab.out_channels

    def forward(self, x: torch.Tensor, stages: Sequence[torch.Tensor],
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(full-resolution features, fused features at 1/4)."""
        fused = self.deeplab.fuse(stages[1], stages[4])
        return self.refine(self.body(fused), stages[0], x), fused
