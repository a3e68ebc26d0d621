"""MC-dropout BALD: mutual information between the prediction and the model weights.

Only the dropout layers are switched to training mode (batch-norm layers keep
their running statistics), the image is predicted ``T`` times with tiled
inference, and per pixel

``MI = H(mean_t p_t) - mean_t H(p_t)``

(two-class entropies normalised to [0, 1] by ``ln 2``). MI is 0 when the passes
agree (no dropout, or dropout probability 0) and grows when the dropout masks
change the prediction: it measures what more labels could teach the model
(epistemic uncertainty), not the noise of the data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..events import CancelToken
from ..entropy import binary_entropy

__all__ = ["DropoutOnly", "dropout_layers", "mutual_information", "mc_dropout_mutual_information"]

log = logging.getLogger(__name__)


def dropout_layers(model: nn.Module) -> list[nn.Module]:
    """The dropout modules of ``model`` (``nn.Dropout``, ``Dropout2d``, ...)."""
    return [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]


class DropoutOnly(nn.Module):
    """Wrap a model so that "eval mode" means: everything in eval except the dropout layers.

    :func:`napari_crack_al.core.inference.iter_predict_image` puts the model it gets in
    eval mode and restores the mode afterwards; through this wrapper both calls leave
    the dropout layers sampling. Call :meth:`restore` when done.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self._was_training = model.training
        self.train(False)

    def train(self, mode: bool = True) -> DropoutOnly:  # noqa: D102
        self.training = mode
        self.model.train(mode)
        if not mode:
            for m in dropout_layers(self.model):
                m.train(True)
        return self

    def forward(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102
        return self.model(*args, **kwargs)

    def restore(self) -> None:
        """Put the wrapped model back in the mode it had before wrapping."""
        self.model.train(self._was_training)


def mutual_information(passes: np.ndarray) -> np.ndarray:
    """Per-pixel mutual information of ``T`` crack-probability maps.

    Parameters
    ----------
    passes : ndarray
        (T, H, W) crack probabilities of the ``T`` stochastic passes.

    Returns
    -------
    ndarray
        float32 (H, W), ``H(mean p) - mean H(p)`` >= 0 (normalised entropies).
    """
    p = np.asarray(passes, dtype=np.float64)
    if p.ndim != 3 or p.shape[0] < 1:
        raise ValueError(f"passes must have shape (T, H, W), got {p.shape}")
    mean_entropy = np.mean([binary_entropy(x).astype(np.float64) for x in p], axis=0)
    mi = binary_entropy(p.mean(axis=0)).astype(np.float64) - mean_entropy
    return np.clip(mi, 0.0, 1.0).astype(np.float32)


def _passes_iter(model: nn.Module, image: np.ndarray, passes: int,
                 kwargs: dict[str, Any]) -> Iterator[np.ndarray | None]:
    from ..inference import Prediction, iter_predict_image

    for _ in range(passes):
        pred = None
        for ev in iter_predict_image(model, image, **kwargs):
            if isinstance(ev, Prediction):
                pred = ev
        yield None if pred is None else pred.probability


def mc_dropout_mutual_information(model: nn.Module, image: np.ndarray, *, passes: int = 8,
                                  seed: int = 0, tile: int = 512, overlap: int | float = 64,
                                  batch_size: int = 4, device: Any = None,
                                  cancel: CancelToken | None = None) -> np.ndarray | None:
    """MC-dropout mutual information map of one image.

    Parameters
    ----------
    model : nn.Module
        The segmenter; its mode is restored afterwards.
    image : ndarray
        float32 (H, W) normalised image.
    passes : int
        Number of stochastic passes T (>= 2).
    seed : int
        Seed of the dropout masks (the global torch RNG state is restored afterwards).
    tile, overlap, batch_size, device, cancel
        As :func:`~napari_crack_al.core.inference.predict_image`.

    Returns
    -------
    ndarray or None
        float32 (H, W) mutual information in [0, 1]; None when cancelled.
    """
    if isinstance(passes, bool) or not isinstance(passes, int) or passes < 2:
        raise ConfigError(f"MC-dropout needs passes >= 2, got {passes!r}")
    layers = dropout_layers(model)
    if not any(getattr(m, "p", 0.0) > 0 for m in layers):
        log.warning("the model has no dropout layer with p > 0: every MC pass is identical "
                    "and BALD is 0")
    kwargs = dict(tile=tile, overlap=overlap, batch_size=batch_size, device=device, cancel=cancel)
    wrapper = DropoutOnly(model)
    param = next(iter(model.parameters()), None)
    dev = torch.device(device) if device is not None else (
        param.device if param is not None else torch.device("cpu"))
    fork_devices = [dev.index or 0] if dev.type == "cuda" else []
    sum_p: np.ndarray | None = None
    sum_h: np.ndarray | None = None
    try:
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(int(seed))
            for prob in _passes_iter(wrapper, image, passes, kwargs):
                if prob is None:
                    return None
                p64 = prob.astype(np.float64)
                h = binary_entropy(prob).astype(np.float64)
                sum_p = p64 if sum_p is None else sum_p + p64
                sum_h = h if sum_h is None else sum_h + h
    finally:
        wrapper.restore()
    assert sum_p is not None and sum_h is not None
    mi = binary_entropy(sum_p / passes).astype(np.float64) - sum_h / passes
    return np.clip(mi, 0.0, 1.0).astype(np.float32)
