"""Tiled sliding-window prediction: crack probability and entropy for images of any size.

An image is cut into overlapping tiles (``tile`` pixels, ``overlap`` pixels shared
by neighbours), the tiles are run through the model in batches, and the class
probabilities are blended back with a weight window that is 1 in the tile centre
and falls off as a raised cosine across the overlap, reaching 0 over the outer
quarter of the overlap so that pixels near a tile edge (which see the tile's
zero padding) do not contribute; sides touching the image border are not
tapered, so a tiled prediction equals a whole-image one for a model whose
receptive field radius is at most ``overlap // 4``. Only two full-size float32
accumulators are allocated (crack probability x weight, and weight) for a
two-class model, whatever the image size; logits exist only per batch of tiles.
Images smaller than a tile are reflect-padded (to a multiple of 32) and cropped
back.

Entropy is the Shannon entropy of the blended class distribution **normalised
to [0, 1]** (divided by ``ln(num_classes)``): 0 = certain, 1 = p(crack) = 0.5.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .entropy import entropy_from_probability
from .errors import ConfigError, CrackALError, ModelOutputError
from .events import CancelToken, ProgressEvent
from .memory_advice import is_out_of_memory

__all__ = [
    "Prediction",
    "ImagePrediction",
    "InferenceCancelled",
    "predict_image",
    "iter_predict_image",
    "iter_predict_images",
    "entropy_from_probability",
    "tile_starts",
    "blend_ramp",
]

log = logging.getLogger(__name__)

_ALIGN = 32  # small images are padded to a multiple of this (the encoder's coarsest stride)


class InferenceCancelled(CrackALError):
    """:func:`predict_image` was cancelled through its :class:`CancelToken`."""


@dataclass(frozen=True)
class Prediction:
    """Per-pixel model output for one image.

    Attributes
    ----------
    probability : ndarray
        float32 (H, W) probability of the crack class (class 1), in [0, 1].
    entropy : ndarray
        float32 (H, W) entropy of the class distribution normalised to [0, 1]
        (nats divided by ``ln(num_classes)``); 1 where p(crack) = 0.5 for two classes.
    """

    probability: np.ndarray
    entropy: np.ndarray


@dataclass(frozen=True)
class ImagePrediction:
    """One result of :func:`iter_predict_images`: image ``index`` (0-based) called ``name``."""

    index: int
    name: str
    prediction: Prediction


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length`` with step ``stride``."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


def blend_ramp(overlap: int) -> np.ndarray:
    """Weights of a tile's first ``overlap`` pixels on a side shared with a neighbour.

    The outer ``overlap // 4`` pixels get weight 0 (they see the tile's zero padding),
    then a raised cosine rises to 1. The ramp is antisymmetric
    (``r[i] + r[overlap - 1 - i] == 1``), so two neighbours sharing exactly
    ``overlap`` pixels blend with weights summing to one.
    """
    if overlap <= 0:
        return np.ones(0, dtype=np.float32)
    margin = overlap // 4
    width = overlap - 2 * margin
    t = np.clip((np.arange(overlap) - margin + 0.5) / width, 0.0, 1.0)
    return (0.5 - 0.5 * np.cos(np.pi * t)).astype(np.float32)


def _ramp_window(size: int, overlap: int, taper_start: bool, taper_end: bool) -> np.ndarray:
    w = np.ones(size, dtype=np.float32)
    if overlap > 0:
        ramp = blend_ramp(overlap)
        if taper_start:
            w[:overlap] = np.minimum(w[:overlap], ramp)
        if taper_end:
            w[size - overlap:] = np.minimum(w[size - overlap:], ramp[::-1])
    return w


def _resolve_overlap(tile: int, overlap: int | float) -> int:
    if isinstance(overlap, float) and 0.0 <= overlap < 1.0:
        px = int(round(overlap * tile))
    elif isinstance(overlap, (int, np.integer)) and not isinstance(overlap, bool):
        px = int(overlap)
    else:
        raise ConfigError(
            f"overlap must be pixels (int) or a fraction of the tile in [0, 0.5], got {overlap!r}"
        )
    if not 0 <= px <= tile // 2:
        raise ConfigError(
            f"overlap must be between 0 and half the tile ({tile // 2} pixels), got {px}"
        )
    return px


def _logits_of(out: object) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    logits = getattr(out, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise TypeError(f"model output {type(out).__name__} has no logits tensor")


def _model_path(model: nn.Module) -> Path | None:
    """The file a model was loaded from, when known (for error messages)."""
    path = getattr(model, "checkpoint_path", None) or getattr(model, "path", None)
    return Path(path) if isinstance(path, (str, Path)) else None


def _run_tiles(model: nn.Module, x_t: torch.Tensor, dev: torch.device) -> torch.Tensor:
    """The logits of a batch of tiles, checked: shape (B, C >= 2, H, W) and finite.

    Raises
    ------
    ModelOutputError
        The model failed (out of memory, a foreign TorchScript error) or returned logits of
        the wrong shape or with NaN / infinite values.
    """
    where = _model_path(model)
    try:
        with _autocast(dev):
            logits = _logits_of(model(x_t))
    except (MemoryError, RuntimeError, TypeError) as exc:
        if is_out_of_memory(exc):  # CUDA / MPS / host: advice, not allocator statistics
            raise ModelOutputError(where, f"ran out of memory on tiles of {tuple(x_t.shape)} "
                                          "(predict with a smaller --tile or batch, or on the "
                                          "CPU)") from None
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ModelOutputError(where, f"failed on tiles of {tuple(x_t.shape)} ({first})") from None
    b, _, th, tw = x_t.shape
    if logits.ndim != 4 or logits.shape[0] != b or logits.shape[1] < 2 or \
            tuple(logits.shape[-2:]) != (th, tw):
        raise ModelOutputError(where, f"returned logits of shape {tuple(logits.shape)} for tiles "
                                      f"of shape {tuple(x_t.shape)}; expected ({b}, classes >= 2, "
                                      f"{th}, {tw})")
    if not bool(torch.isfinite(logits).all()):
        raise ModelOutputError(where, "returned NaN or infinite values (its weights are "
                                      "damaged or training diverged); no mask was written")
    return logits


def _prepare_model(model: nn.Module, device: str | torch.device | None) -> torch.device:
    if device is None:
        param = next(iter(model.parameters()), None)
        return param.device if param is not None else torch.device("cpu")
    device = torch.device(device)
    model.to(device)
    return device


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast(device_type="cuda", dtype=dtype)
    return contextlib.nullcontext()


def _as_chw(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3 or image.shape[1] == 0 or image.shape[2] == 0:
        raise ValueError(f"expected an image of shape (H, W) or (C, H, W), got {image.shape}")
    image = image.astype(np.float32, copy=False)
    if not np.isfinite(image).all():
        raise ValueError(
            "the image holds NaN or inf values; normalise it first (normalize_for_model)"
        )
    return image


def _axis_plan(length: int, tile: int) -> tuple[int, int]:
    """(tile size along the axis, padded length) for an axis of ``length`` pixels."""
    if length >= tile:
        return tile, length
    size = min(tile, _ALIGN * math.ceil(length / _ALIGN))
    return size, size


def iter_predict_image(model: nn.Module, image: np.ndarray, *, tile: int = 512,
                       overlap: int | float = 64, batch_size: int = 4,
                       device: str | torch.device | None = None,
                       cancel: CancelToken | None = None,
                       ) -> Iterator[ProgressEvent | Prediction]:
    """Predict one image tile by tile, yielding progress and finally the :class:`Prediction`.

    Yields ``ProgressEvent(done_tiles, total_tiles, "tiles")`` after each batch and the
    :class:`Prediction` as the last item. When ``cancel`` is set the generator stops
    between batches without yielding a prediction. Parameters as :func:`predict_image`.
    """
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 16:
        raise ConfigError(f"tile must be an integer >= 16 pixels, got {tile!r}")
    if (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1):
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    tile = int(tile)
    ov = _resolve_overlap(tile, overlap)
    img = _as_chw(image)
    _, h, w = img.shape
    th, hp = _axis_plan(h, tile)
    tw, wp = _axis_plan(w, tile)
    if (hp, wp) != (h, w):
        img = np.pad(img, ((0, 0), (0, hp - h), (0, wp - w)), mode="reflect")
    # an axis shorter than the tile has a single (padded) tile and needs no overlap
    ov_y = ov if hp > th else 0
    ov_x = ov if wp > tw else 0
    ys = tile_starts(hp, th, th - ov_y)
    xs = tile_starts(wp, tw, tw - ov_x)
    boxes = [(y, x) for y in ys for x in xs]
    total = len(boxes)

    dev = _prepare_model(model, device)
    acc: np.ndarray | None = None  # (C-1, hp, wp), allocated once C is known
    wsum = np.zeros((hp, wp), dtype=np.float32)
    num_classes = 0
    done = 0
    with _eval_mode(model), torch.inference_mode():
        for start in range(0, total, batch_size):
            if cancel is not None and cancel.cancelled:
                log.info("prediction cancelled after %d of %d tiles", done, total)
                return
            chunk = boxes[start:start + batch_size]
            batch = np.stack([img[:, y:y + th, x:x + tw] for y, x in chunk])
            x_t = torch.from_numpy(batch).to(dev, non_blocking=True)
            logits = _run_tiles(model, x_t, dev)
            probs = torch.softmax(logits.float(), dim=1)[:, 1:].cpu().numpy()
            if acc is None:
                num_classes = probs.shape[1] + 1
                acc = np.zeros((num_classes - 1, hp, wp), dtype=np.float32)
            for (y, x), p in zip(chunk, probs):
                wy = _ramp_window(th, ov_y, y > 0, y + th < hp)
                wx = _ramp_window(tw, ov_x, x > 0, x + tw < wp)
                win = wy[:, None] * wx[None, :]
                acc[:, y:y + th, x:x + tw] += p * win
                wsum[y:y + th, x:x + tw] += win
            done += len(chunk)
            yield ProgressEvent(done, total, "tiles")
    assert acc is not None
    np.divide(acc, wsum, out=acc)
    del wsum
    probs = acc[:, :h, :w]
    np.clip(probs, 0.0, 1.0, out=probs)
    entropy = entropy_from_probability(probs, num_classes)
    yield Prediction(probability=np.ascontiguousarray(probs[0]), entropy=entropy)


def predict_image(model: nn.Module, image: np.ndarray, *, tile: int = 512,
                  overlap: int | float = 64, batch_size: int = 4,
                  device: str | torch.device | None = None,
                  cancel: CancelToken | None = None) -> Prediction:
    """Crack probability and entropy of an image of any size, by tiled sliding-window inference.

    Parameters
    ----------
    model : nn.Module
        A segmenter whose forward returns logits (B, C, h, w) at input size, either as a
        tensor or as an object with ``.logits`` (:class:`SegmenterOutput`). It is run in
        eval mode under ``torch.inference_mode`` (autocast on CUDA); its mode is restored.
    image : ndarray
        float32 (H, W) (or (C, H, W)) image already normalised for the model, finite.
    tile : int
        Tile side in pixels.
    overlap : int or float
        Pixels shared by neighbouring tiles (at most ``tile // 2``), or a fraction of
        ``tile`` in [0, 0.5]. The outer quarter of the overlap is discarded.
    batch_size : int
        Tiles per forward pass.
    device : str, torch.device or None
        Where to run; None uses the model's device, otherwise the model is moved there.
    cancel : CancelToken or None
        Checked between batches.

    Returns
    -------
    Prediction
        ``probability`` and normalised ``entropy``, float32 (H, W).

    Raises
    ------
    InferenceCancelled
        If ``cancel`` was set before the last batch.
    ConfigError
        For invalid ``tile``, ``overlap`` or ``batch_size``.
    """
    result = None
    for item in iter_predict_image(model, image, tile=tile, overlap=overlap,
                                   batch_size=batch_size, device=device, cancel=cancel):
        if isinstance(item, Prediction):
            result = item
    if result is None:
        raise InferenceCancelled("prediction was cancelled")
    return result


def iter_predict_images(model: nn.Module,
                        images: Iterable[np.ndarray | tuple[str, np.ndarray]], *,
                        total: int | None = None, tile: int = 512, overlap: int | float = 64,
                        batch_size: int = 4, device: str | torch.device | None = None,
                        cancel: CancelToken | None = None, tile_progress: bool = False,
                        ) -> Iterator[ProgressEvent | ImagePrediction]:
    """Predict a sequence of images, yielding progress events and one result per image.

    ``images`` is consumed lazily, so a generator that reads (and normalises) each image
    on demand keeps only one image in memory. Items are arrays or ``(name, array)`` pairs.

    Yields
    ------
    ProgressEvent
        ``ProgressEvent(i, total, "images")`` before image ``i`` and once more at the end;
        with ``tile_progress`` also the per-image ``ProgressEvent(done, n, "tiles")``.
    ImagePrediction
        After each image.

    Stops early (without error) when ``cancel`` is set; closing the generator is safe.
    ``total`` defaults to ``len(images)`` when available, else 0 (unknown).
    """
    if total is None:
        total = len(images) if hasattr(images, "__len__") else 0  # type: ignore[arg-type]
    done = 0
    for index, item in enumerate(images):
        if cancel is not None and cancel.cancelled:
            return
        name, array = item if isinstance(item, tuple) else (str(index), item)
        yield ProgressEvent(done, total, "images")
        prediction = None
        for event in iter_predict_image(model, array, tile=tile, overlap=overlap,
                                        batch_size=batch_size, device=device, cancel=cancel):
            if isinstance(event, Prediction):
                prediction = event
            elif tile_progress:
                yield event
        if prediction is None:  # cancelled inside the image
            return
        done += 1
        yield ImagePrediction(index=index, name=str(name), prediction=prediction)
    yield ProgressEvent(done, total if total else done, "images")
