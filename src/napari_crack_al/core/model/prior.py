"""A fixed dark-ridge filter: the training-free detector's response as an extra input channel.

:class:`RidgePrior` computes, inside the network, the multi-scale Hessian response of
the training-free detector (:mod:`napari_crack_al.core.detector.ridge`): at each scale
sigma, the larger eigenvalue of the Gaussian-derivative Hessian, scale-normalised by
sigma², is positive across a line darker than its surroundings; the channel is its
positive part, the maximum over the scales. It has no trainable parameters (its kernels
are buffers), so it travels with the model into checkpoints and TorchScript/ONNX
exports and every caller (training, predict, scoring) feeds the model as before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["RidgePrior", "hessian_kernels"]


def hessian_kernels(sigma: float, radius: int) -> np.ndarray:
    """Second-derivative-of-Gaussian kernels ``(3, 2r+1, 2r+1)``: d²/dy², d²/dx², d²/dxdy."""
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-t ** 2 / (2 * sigma ** 2))
    g /= g.sum()
    d1 = -t / sigma ** 2 * g
    d2 = (t ** 2 / sigma ** 4 - 1 / sigma ** 2) * g
    d2 -= d2.mean()  # exactly zero response to a constant
    yy = np.outer(d2, g)
    xx = np.outer(g, d2)
    xy = np.outer(d1, d1)
    return np.stack([yy, xx, xy]).astype(np.float32)


class RidgePrior(nn.Module):
    """Dark-ridge response of the first input channel, at several scales (no parameters).

    Parameters
    ----------
    sigmas : sequence of float
        Scales in pixels (the detector's: 1 and 2 for 1-8 px wide cracks).
    """

    def __init__(self, sigmas: Sequence[float] = (1.0, 2.0)) -> None:
        super().__init__()
        self.sigmas = tuple(float(s) for s in sigmas)
        self.radius = int(math.ceil(3 * max(self.sigmas)))
        size = 2 * self.radius + 1
        bank = np.zeros((3 * len(self.sigmas), 1, size, size), dtype=np.float32)
        for i, s in enumerate(self.sigmas):
            k = hessian_kernels(s, int(math.ceil(3 * s)))
            off = self.radius - int(math.ceil(3 * s))
            bank[3 * i:3 * i + 3, 0, off:off + k.shape[1], off:off + k.shape[2]] = k * s ** 2
        self.register_buffer("kernels", torch.from_numpy(bank), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) ridge response of ``x[:, :1]`` (0 where nothing darker runs through)."""
        r = self.radius
        src = x[:, :1]
        mode = "reflect" if min(src.shape[-2:]) > r else "replicate"
        h = F.conv2d(F.pad(src, (r, r, r, r), mode=mode), self.kernels.to(src.dtype))
        hyy, hxx, hxy = h[:, 0::3], h[:, 1::3], h[:, 2::3]
        largest = 0.5 * (hxx + hyy + torch.sqrt((hxx - hyy) ** 2 + 4 * hxy ** 2 + 1e-12))
        return torch.relu(largest).amax(dim=1, keepdim=True)
