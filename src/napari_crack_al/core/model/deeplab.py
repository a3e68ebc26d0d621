"""DeepLabV3+ decoder (ASPP + low-level fusion) and the heads on top of it.

The decoder returns the concatenation of the upsampled ASPP output and the
projected layer1 features at 1/4 resolution; the classifier head and the
representation head both start from that concatenation (as in U2PL), the
auxiliary head reads layer3.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ASPP",
    "DeepLabV3PlusDecoder",
    "ClassifierHead",
    "LogitsHead",
    "RepresentationHead",
    "AuxHead",
    "aspp_rates",
    "conv_bn_relu",
]


def aspp_rates(output_stride: int) -> tuple[int, int, int]:
    """Atrous rates of the ASPP's 3x3 branches: (6, 12, 18) at OS 16, (12, 24, 36) at OS 8,
    (3, 6, 9) at OS 32."""
    return {8: (12, 24, 36), 32: (3, 6, 9)}.get(output_stride, (6, 12, 18))


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, dilation: int = 1) -> nn.Sequential:
    """Convolution (no bias, 'same' padding) -> BatchNorm -> ReLU."""
    pad = dilation * (kernel - 1) // 2
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _ImagePooling(nn.Module):
    """Global average pooling -> 1x1 conv (with bias, no norm) -> ReLU -> broadcast.

    There is no batch norm here: with a 1x1 map, BN in training mode fails for a
    batch of one image (a single value per channel), and GroupNorm would zero it.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        size = x.shape[-2:]
        y = self.relu(self.conv(F.adaptive_avg_pool2d(x, 1)))
        return y.expand(-1, -1, size[0], size[1])


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling with five branches.

    Image pooling + 1x1, a 1x1 conv and three 3x3 atrous convs (each conv-BN-ReLU),
    concatenated and projected by a 1x1 conv-BN-ReLU followed by dropout.
    """

    def __init__(self, cin: int, cout: int, rates: Sequence[int], dropout: float = 0.1) -> None:
        super().__init__()
        self.pool = _ImagePooling(cin, cout)
        self.branches = nn.ModuleList(
            [conv_bn_relu(cin, cout, 1)] + [conv_bn_relu(cin, cout, 3, r) for r in rates]
        )
        self.project = nn.Sequential(
            nn.Conv2d(cout * (len(rates) + 2), cout, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        outs = [self.pool(x)] + [b(x) for b in self.branches]
        return self.project(torch.cat(outs, dim=1))


class DeepLabV3PlusDecoder(nn.Module):
    """ASPP on the deepest features, upsampled to 1/4 and concatenated with projected layer1.

    Parameters
    ----------
    high_channels, low_channels : int
        Channels of the encoder's layer4 and layer1 outputs.
    decoder_channels : int
        Width of the ASPP.
    low_level_channels : int
        Width of the 1x1 projection of layer1.
    rates : sequence of int
        ASPP atrous rates.
    dropout : float
        Dropout after the ASPP projection.

    Attributes
    ----------
    out_channels : int
        ``decoder_channels + low_level_channels``.
    rep_channels : int
        Channels of the features the representation head reads (the same fused map).
    """

    def __init__(self, high_channels: int, low_channels: int, decoder_channels: int,
                 low_level_channels: int, rates: Sequence[int], dropout: float = 0.1) -> None:
        super().__init__()
        self.aspp = ASPP(high_channels, decoder_channels, rates, dropout)
        self.low_level = conv_bn_relu(low_channels, low_level_channels, 1)
        self.out_channels = decoder_channels + low_level_channels
        self.rep_channels = self.out_channels

    def fuse(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """Return the fused features (B, out_channels, H/4, W/4) of layer1 and layer4."""
        y = self.aspp(high)
        y = F.interpolate(y, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return torch.cat([y, self.low_level(low)], dim=1)

    def forward(self, x: torch.Tensor, stages: Sequence[torch.Tensor],
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(head features, representation features): both the fused map at 1/4.

        ``stages`` are the encoder's ``[stem, layer1, layer2, layer3, layer4]``; ``x``
        (the input) is not used by this decoder.
        """
        fused = self.fuse(stages[1], stages[4])
        return fused, fused


class ClassifierHead(nn.Module):
    """Two 3x3 conv-BN-ReLU(-dropout) -> 1x1 conv to the class logits."""

    def __init__(self, cin: int, mid: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_relu(cin, mid, 3), nn.Dropout(dropout),
            conv_bn_relu(mid, mid, 3), nn.Dropout(dropout),
        )
        self.classifier = nn.Conv2d(mid, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.classifier(self.body(x))


class LogitsHead(nn.Module):
    """A 1x1 conv from full-resolution decoder features to the class logits."""

    def __init__(self, cin: int, num_classes: int) -> None:
        super().__init__()
        self.classifier = nn.Conv2d(cin, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.classifier(x)


class RepresentationHead(nn.Module):
    """3x3 conv-BN-ReLU -> 1x1 conv to ``rep_dim`` features (no normalisation at the end)."""

    def __init__(self, cin: int, mid: int, rep_dim: int) -> None:
        super().__init__()
        self.body = conv_bn_relu(cin, mid, 3)
        self.proj = nn.Conv2d(mid, rep_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.proj(self.body(x))


class AuxHead(nn.Module):
    """Auxiliary head on layer3: 3x3 conv-BN-ReLU(-dropout) -> 1x1 conv to the class logits."""

    def __init__(self, cin: int, mid: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(cin, mid, 3), nn.Dropout(dropout))
        self.classifier = nn.Conv2d(mid, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.classifier(self.body(x))
