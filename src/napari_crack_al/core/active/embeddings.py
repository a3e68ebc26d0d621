"""Image embeddings for diversity: pooled encoder features, and label-free features for cold start.

* :class:`EncoderPool` registers a forward hook on ``model.encoder`` and keeps the
  global average pool of its deepest stage for every tile that passes through, so
  the scoring pass (:func:`.scoring.iter_score_images`) gets the image's embedding
  from the same forward pass as its probabilities. The embedding is the mean of the
  tiles' pooled features, L2-normalised.
* :func:`label_free_features` describes an image without any model or label
  (histogram of normalised range values, multiscale gradient-magnitude and
  narrow-depression statistics, a small thumbnail); :func:`combine_label_free`
  standardises those over the pool and reduces the thumbnails by PCA, giving the
  vectors the cold-start k-center greedy works on. Deterministic.
* :func:`save_embeddings` / :func:`load_embeddings` keep embeddings beside the scores
  (``.crack-al/embeddings/<model version>.npz``, written atomically).
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from ..io.atomic import atomic_write_bytes

__all__ = [
    "EncoderPool",
    "LabelFreeFeatures",
    "label_free_features",
    "combine_label_free",
    "l2_normalize",
    "embeddings_path",
    "save_embeddings",
    "load_embeddings",
    "iter_label_free_embeddings",
]

log = logging.getLogger(__name__)

HIST_BINS = 16
HIST_RANGE = (-4.0, 4.0)
GRADIENT_SIGMAS = (1.0, 2.0, 4.0)
GRADIENT_PERCENTILES = (50.0, 90.0, 99.0)
DEPRESSION_SIGMAS = (1.0, 2.0)
DEPRESSION_PERCENTILES = (90.0, 99.0, 99.9)


def l2_normalize(vector: np.ndarray) -> np.ndarray:
    """``vector / ||vector||`` as float32 (a zero vector is returned unchanged)."""
    v = np.asarray(vector, dtype=np.float32)
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


class EncoderPool:
    """Collect the pooled deepest-stage encoder features of every forward pass (a hook).

    Use as a context manager around the passes of ONE image, then read
    :meth:`embedding`; :meth:`reset` before the next image.

    Parameters
    ----------
    model : nn.Module
        A model with an ``encoder`` attribute whose forward returns the stage outputs
        (a list/tuple, the deepest last) or a single tensor.
    """

    def __init__(self, model: Any) -> None:
        if not self.supports(model):
            raise TypeError(f"{type(model).__name__} has no .encoder module to pool")
        self.module = model.encoder
        self._handle: Any = None
        self._sum: np.ndarray | None = None
        self._count = 0

    @staticmethod
    def supports(model: Any) -> bool:
        """Whether ``model`` has an ``encoder`` submodule."""
        import torch.nn as nn

        return isinstance(getattr(model, "encoder", None), nn.Module)

    def _hook(self, _module: Any, _inputs: Any, output: Any) -> None:
        deepest = output[-1] if isinstance(output, (list, tuple)) else output
        pooled = deepest.detach().float().mean(dim=(2, 3))  # (B, C)
        total = pooled.sum(dim=0).cpu().numpy().astype(np.float64)
        self._sum = total if self._sum is None else self._sum + total
        self._count += int(pooled.shape[0])

    def __enter__(self) -> EncoderPool:
        self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def reset(self) -> None:
        """Forget the features collected so far."""
        self._sum = None
        self._count = 0

    def embedding(self) -> np.ndarray | None:
        """L2-normalised mean of the pooled features seen since :meth:`reset` (None if none)."""
        if self._sum is None or self._count == 0:
            return None
        return l2_normalize(self._sum / self._count)


# ---------------------------------------------------------------------------- label-free
@dataclass(frozen=True)
class LabelFreeFeatures:
    """Model-free description of one image.

    Attributes
    ----------
    stats : ndarray
        float64 (D,) histogram + gradient + depression statistics + valid fraction.
    thumbnail : ndarray
        float64 (thumb * thumb,) block-averaged image.
    """

    stats: np.ndarray
    thumbnail: np.ndarray


def _block_reduce(a: np.ndarray, f: int) -> np.ndarray:
    if f <= 1:
        return a.astype(np.float64)
    h, w = (a.shape[0] // f) * f, (a.shape[1] // f) * f
    if h == 0 or w == 0:
        return a.astype(np.float64)
    return a[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))


def _percentiles(values: np.ndarray, mask: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    v = values[mask]
    if v.size == 0:
        return [0.0] * len(qs)
    return [float(x) for x in np.percentile(v, qs)]


def label_free_features(image: np.ndarray, valid: np.ndarray | None = None, *,
                        max_side: int = 512, thumb: int = 16) -> LabelFreeFeatures:
    """Features of one normalised image that need no model and no label.

    Parameters
    ----------
    image : ndarray
        float32 (H, W) image normalised for the model (``normalize_for_model``).
    valid : ndarray or None
        bool (H, W) valid pixels (None: all).
    max_side : int
        The image is block-averaged so that its longer side is at most this.
    thumb : int
        Thumbnail side.

    Returns
    -------
    LabelFreeFeatures
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {img.shape}")
    val = np.ones(img.shape, bool) if valid is None else np.asarray(valid, dtype=bool)
    f = max(1, int(math.ceil(max(img.shape) / max_side)))
    small = _block_reduce(np.where(val, img, 0.0), f)
    vfrac = _block_reduce(val.astype(np.float64), f)
    vsmall = vfrac > 0.5
    small = np.where(vfrac > 0, small / np.maximum(vfrac, 1e-9), 0.0)
    inner = ndimage.binary_erosion(vsmall, iterations=2) if vsmall.any() else vsmall
    if not inner.any():
        inner = vsmall

    parts: list[float] = []
    values = np.clip(small[vsmall], *HIST_RANGE)
    hist, _ = np.histogram(values, bins=HIST_BINS, range=HIST_RANGE)
    parts += list(hist / max(1, values.size))
    for s in GRADIENT_SIGMAS:
        grad = ndimage.gaussian_gradient_magnitude(small, s)
        parts += _percentiles(grad, inner, GRADIENT_PERCENTILES)
    for s in DEPRESSION_SIGMAS:  # narrow dips (cracks are lower than their surroundings)
        dip = ndimage.gaussian_filter(small, 4.0 * s) - ndimage.gaussian_filter(small, s)
        parts += _percentiles(dip, inner, DEPRESSION_PERCENTILES)
    parts.append(float(val.mean()))

    ty = np.linspace(0, small.shape[0], thumb + 1).astype(int)
    tx = np.linspace(0, small.shape[1], thumb + 1).astype(int)
    thumbnail = np.zeros((thumb, thumb), np.float64)
    for i in range(thumb):
        for j in range(thumb):
            block = small[ty[i]:max(ty[i + 1], ty[i] + 1), tx[j]:max(tx[j + 1], tx[j] + 1)]
            thumbnail[i, j] = float(block.mean()) if block.size else 0.0
    return LabelFreeFeatures(stats=np.asarray(parts, np.float64), thumbnail=thumbnail.ravel())


def _standardize(m: np.ndarray) -> np.ndarray:
    mu = m.mean(axis=0)
    sd = m.std(axis=0)
    sd[sd < 1e-12] = 1.0
    return (m - mu) / sd


def combine_label_free(features: Mapping[str, LabelFreeFeatures], *,
                       n_components: int = 8) -> dict[str, np.ndarray]:
    """Pool-level cold-start vectors from :func:`label_free_features` of every image.

    The statistics are standardised per dimension over the pool; the thumbnails are
    centred and projected on their first ``n_components`` principal components (sign
    fixed, so the result is deterministic). Each block is scaled to a mean squared norm
    of 1 so that both count equally.

    Returns
    -------
    dict of str to ndarray
        float32 vectors by name (same keys as ``features``).
    """
    names = sorted(features)
    if not names:
        return {}
    stats = np.stack([features[n].stats for n in names])
    thumbs = np.stack([features[n].thumbnail for n in names])
    blocks = [_standardize(stats) / math.sqrt(stats.shape[1])]
    centred = thumbs - thumbs.mean(axis=0)
    ncomp = min(n_components, len(names) - 1, centred.shape[1])
    if ncomp > 0 and np.abs(centred).max() > 0:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        vt = vt[:ncomp]
        signs = np.sign(vt[np.arange(ncomp), np.abs(vt).argmax(axis=1)])
        vt = vt * np.where(signs == 0, 1.0, signs)[:, None]
        proj = centred @ vt.T
        scale = math.sqrt(float(np.mean(np.sum(proj ** 2, axis=1))))
        blocks.append(proj / scale if scale > 0 else proj)
    combined = np.concatenate(blocks, axis=1).astype(np.float32)
    return {n: combined[i] for i, n in enumerate(names)}


# ---------------------------------------------------------------------------- storage
def embeddings_path(state_dir: str | Path, model_version: str) -> Path:
    """``state_dir/embeddings/<version>.npz`` (unsafe characters of the version replaced)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", model_version)
    return Path(state_dir) / "embeddings" / f"{safe}.npz"


def save_embeddings(state_dir: str | Path, model_version: str,
                    embeddings: Mapping[str, np.ndarray]) -> Path:
    """Write ``{name: vector}`` atomically for ``model_version``; returns the file."""
    path = embeddings_path(state_dir, model_version)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = sorted(embeddings)
    vectors = np.stack([np.asarray(embeddings[n], np.float32) for n in names]) if names \
        else np.zeros((0, 0), np.float32)
    buf = io.BytesIO()
    np.savez(buf, names=np.asarray(names, dtype=str), vectors=vectors,
             model_version=np.asarray(model_version))
    return atomic_write_bytes(path, buf.getvalue())


def load_embeddings(state_dir: str | Path, model_version: str) -> dict[str, np.ndarray] | None:
    """The embeddings stored for ``model_version``, or None when there are none (or unreadable)."""
    path = embeddings_path(state_dir, model_version)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            names = [str(n) for n in data["names"]]
            vectors = data["vectors"]
    except (OSError, ValueError, KeyError) as exc:
        log.warning("ignoring unreadable embeddings %s (%s)", path, exc)
        return None
    return {n: vectors[i].astype(np.float32) for i, n in enumerate(names)}


def iter_label_free_embeddings(images: Any, *, total: int | None = None,
                               cancel: Any = None) -> Generator[Any, None, dict | None]:
    """Cold-start vectors of a pool: :func:`label_free_features` per image, then combined.

    Parameters
    ----------
    images : iterable
        ``(name, image, valid)`` items or objects with ``.name``, ``.image``, ``.valid``
        (normalised images), consumed lazily.
    total : int or None
        Number of images for the progress events.
    cancel : CancelToken or None
        Checked between images.

    Yields
    ------
    ProgressEvent
        ``ProgressEvent(i, total, "features")``.

    Returns
    -------
    dict of str to ndarray or None
        :func:`combine_label_free` vectors by name; None when cancelled.
    """
    from ..events import ProgressEvent

    if total is None:
        total = len(images) if hasattr(images, "__len__") else 0
    feats: dict[str, LabelFreeFeatures] = {}
    for i, item in enumerate(images):
        if cancel is not None and cancel.cancelled:
            return None
        yield ProgressEvent(i, total, "features")
        if isinstance(item, tuple):
            name, image, valid = item
        else:
            name, image, valid = item.name, item.image, item.valid
        feats[str(name)] = label_free_features(image, valid)
    yield ProgressEvent(len(feats), total if total else len(feats), "features")
    return combine_label_free(feats)
