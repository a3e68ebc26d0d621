"""ResNet encoder (18/34/50/101) in plain torch, with dilation for output stride 16 or 8.

Parameter and buffer names follow torchvision's ``ResNet`` (``conv1``, ``bn1``,
``layer1.0.conv1``, ..., ``layerN.0.downsample.0/1``; no ``fc``), so that a
torchvision ImageNet state dict saved to a local file can be loaded with
:func:`napari_crack_al.core.model.segmenter.load_encoder_weights`. Nothing is
ever downloaded.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ConfigError
from .config import ENCODERS, OUTPUT_STRIDES

__all__ = ["BasicBlock", "Bottleneck", "ResNetEncoder", "build_encoder"]

log = logging.getLogger(__name__)


def _conv3x3(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride, dilation)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes, 1, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        """The batch norm whose gamma is zero-initialised."""
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided, dilated) -> 1x1 with a residual connection (ResNet-50/101)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        """The batch norm whose gamma is zero-initialised."""
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNetEncoder(nn.Module):
    """ResNet trunk returning the four stage outputs (strides 4, 8, 16|8, 16|8).

    Parameters
    ----------
    depth : int
        18, 34, 50 or 101.
    in_channels : int
        Input channels (1 for range images).
    output_stride : int
        16: layer4 dilated (rate 2); 8: layer3 (rate 2) and layer4 (rate 4) dilated;
        32: no dilation (torchvision's ResNet).
    multi_grid : sequence of int or None
        Multipliers of layer4's dilation per block (cycled), e.g. ``(1, 2, 4)``.
    zero_init_residual : bool
        Zero the gamma of the last batch norm of each residual block, so that every
        block starts as the identity.

    Attributes
    ----------
    out_channels : tuple of int
        Channels of the outputs of layer1..layer4.
    reductions : tuple of int
        Downsampling factor of the outputs of layer1..layer4.
    stem_channels : int
        Channels of the stem (conv1-bn1-relu) output at stride 2, the finest feature map
        (see :meth:`forward` with ``with_stem=True``).
    """

    def __init__(self, depth: int = 50, in_channels: int = 1, output_stride: int = 16,
                 multi_grid: Sequence[int] | None = None, zero_init_residual: bool = True) -> None:
        super().__init__()
        name = f"resnet{depth}"
        if name not in ENCODERS:
            valid = ", ".join(k.removeprefix("resnet") for k in ENCODERS)
            raise ConfigError(f"unknown ResNet depth {depth!r}; valid depths: {valid}")
        if output_stride not in OUTPUT_STRIDES:
            raise ConfigError(
                f"output_stride must be one of {', '.join(map(str, OUTPUT_STRIDES))}, "
                f"got {output_stride!r}"
            )
        if in_channels < 1:
            raise ConfigError(f"in_channels must be >= 1, got {in_channels!r}")
        block: type[BasicBlock] | type[Bottleneck] = BasicBlock if depth < 50 else Bottleneck
        layers = ENCODERS[name]
        self.depth = depth
        self.in_channels = in_channels
        self.output_stride = output_stride
        self.inplanes = 64
        self.dilation = 1

        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        dilate3 = output_stride == 8
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2, dilate=dilate3)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2,
                                       dilate=output_stride < 32, multi_grid=multi_grid)
        e = block.expansion
        self.out_channels: tuple[int, int, int, int] = (64 * e, 128 * e, 256 * e, 512 * e)
        self.reductions: tuple[int, int, int, int] = (4, 8, 8 if dilate3 else 16, output_stride)
        self.stem_channels = 64
        self._init_weights(zero_init_residual)

    def _make_layer(self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int,
                    stride: int = 1, dilate: bool = False,
                    multi_grid: Sequence[int] | None = None) -> nn.Sequential:
        # Same rule as torchvision's replace_stride_with_dilation: a dilated layer keeps
        # stride 1 and multiplies the dilation; its first block uses the previous rate.
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        if multi_grid:
            rates = [self.dilation * multi_grid[i % len(multi_grid)] for i in range(blocks)]
        else:
            rates = [previous_dilation] + [self.dilation] * (blocks - 1)
        modules = [block(self.inplanes, planes, stride, rates[0], downsample)]
        self.inplanes = planes * block.expansion
        modules += [block(self.inplanes, planes, 1, rate) for rate in rates[1:]]
        return nn.Sequential(*modules)

    def _init_weights(self, zero_init_residual: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    nn.init.zeros_(m.last_bn.weight)

    def forward(self, x: torch.Tensor, with_stem: bool = False) -> list[torch.Tensor]:
        """Return the outputs of layer1..layer4 (and first the stem's, with ``with_stem``).

        Parameters
        ----------
        x : Tensor
            (B, in_channels, H, W).
        with_stem : bool
            Also return the stem output (conv1-bn1-relu, stride 2) first.

        Returns
        -------
        list of Tensor
            ``[c1, c2, c3, c4]`` with channels ``out_channels`` and strides ``reductions``;
            ``[stem, c1, c2, c3, c4]`` with ``with_stem`` (the stem has ``stem_channels``
            at stride 2). The deepest stage is always last.
        """
        stem = self.relu(self.bn1(self.conv1(x)))
        c1 = self.layer1(self.maxpool(stem))
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        c4 = self.layer4(c3)
        return [stem, c1, c2, c3, c4] if with_stem else [c1, c2, c3, c4]


def build_encoder(name: str, *, in_channels: int = 1, output_stride: int = 16,
                  multi_grid: Sequence[int] | None = None) -> ResNetEncoder:
    """Build a randomly initialised encoder by name (``"resnet18"`` ... ``"resnet101"``).

    Raises
    ------
    ConfigError
        For an unknown name or output stride; the message lists the valid options.
    """
    if name not in ENCODERS:
        raise ConfigError(f"unknown encoder {name!r}; valid encoders: {', '.join(ENCODERS)}")
    return ResNetEncoder(int(name.removeprefix("resnet")), in_channels=in_channels,
                         output_stride=output_stride, multi_grid=multi_grid)
