"""Scoring a pool of images from ONE forward pass per image (:mod:`.scores` for the numbers).

:func:`iter_score_images` runs the model once per image (tiled, tiles batched, via
:func:`napari_crack_al.core.inference.iter_predict_image`) and gets the probability,
the entropy and the pooled encoder embedding (:class:`.embeddings.EncoderPool`, a
forward hook) from that single pass. The student and the MC-dropout passes are the
only extra passes, and only when asked for.

torch is imported lazily (by the prediction, once an image is scored).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..events import CancelToken, ProgressEvent
from .scores import ImageScores, ScoreConfig, disagreement_scores, topk_mean, uncertainty_scores

__all__ = ["iter_score_images", "score_images", "scores_by_kind"]


def _unpack(item: Any, index: int) -> tuple[str, np.ndarray, np.ndarray | None]:
    """(name, image, valid) from a TrainingImage-like object or a tuple."""
    if hasattr(item, "image") and hasattr(item, "name"):
        return str(item.name), item.image, getattr(item, "valid", None)
    if isinstance(item, tuple):
        if len(item) == 3:
            return str(item[0]), item[1], item[2]
        if len(item) == 2:
            return str(item[0]), item[1], None
    if isinstance(item, np.ndarray):
        return str(index), item, None
    raise TypeError("images must be arrays, (name, image[, valid]) tuples or objects with "
                    f".name/.image/.valid, got {type(item).__name__}")


def iter_score_images(model: Any, images: Iterable[Any], *, student: Any = None,
                      mc_passes: int = 0, config: ScoreConfig | None = None,
                      tile: int = 512, overlap: int | float = 64, batch_size: int = 4,
                      device: Any = None, seed: int = 0, total: int | None = None,
                      cancel: CancelToken | None = None,
                      ) -> Iterator[ProgressEvent | ImageScores]:
    """Score images one by one, yielding progress and one :class:`ImageScores` per image.

    Parameters
    ----------
    model : nn.Module
        The main model (the teacher). ONE tiled pass per image gives the probability,
        the entropy and the pooled encoder embedding (when the model has an ``encoder``).
    images : iterable
        Items ``(name, image, valid)``, ``(name, image)``, bare arrays, or objects with
        ``.name``, ``.image`` and ``.valid`` (:class:`~..training.data.TrainingImage`).
        Images are normalised float32 (H, W); consumed lazily (a generator that reads
        each image on demand keeps one image in memory).
    student : nn.Module or None
        A second model for the disagreement scores (one more pass per image).
    mc_passes : int
        MC-dropout passes for BALD (0: no BALD; otherwise >= 2).
    config : ScoreConfig or None
        Aggregation settings.
    tile, overlap, batch_size : int
        Tiled inference settings (see :func:`~napari_crack_al.core.inference.predict_image`);
        tiles are run ``batch_size`` at a time.
    device : str, torch.device or None
        Where to run (None: the model's device).
    seed : int
        Seed of the MC-dropout masks.
    total : int or None
        Number of images for the progress events (default ``len(images)`` when known).
    cancel : CancelToken or None
        Checked between images and between tile batches; the generator stops early.

    Yields
    ------
    ProgressEvent
        ``ProgressEvent(i, total, "scoring")`` before image ``i`` and at the end.
    ImageScores
        After each image.
    """
    from .embeddings import EncoderPool

    cfg = config if config is not None else ScoreConfig()
    if isinstance(mc_passes, bool) or not isinstance(mc_passes, int) or mc_passes < 0 \
            or mc_passes == 1:
        raise ConfigError(f"mc_passes must be 0 (no BALD) or an integer >= 2, got {mc_passes!r}")
    if total is None:
        total = len(images) if hasattr(images, "__len__") else 0  # type: ignore[arg-type]
    kw = dict(tile=tile, overlap=overlap, batch_size=batch_size, device=device, cancel=cancel)
    done = 0
    pool = EncoderPool(model) if EncoderPool.supports(model) else None
    for index, item in enumerate(images):
        if cancel is not None and cancel.cancelled:
            return
        name, image, valid = _unpack(item, index)
        yield ProgressEvent(done, total, "scoring")
        result = _score_one_image(model, index, name, image, valid, pool=pool, student=student,
                                  mc_passes=mc_passes, seed=seed, cfg=cfg, kw=kw)
        if result is None:  # cancelled inside the image
            return
        done += 1
        yield result
    yield ProgressEvent(done, total if total else done, "scoring")


def _final_prediction(model: Any, image: np.ndarray, kw: dict[str, Any]) -> Any:
    """Run one tiled prediction of ``image`` to its end.

    Parameters
    ----------
    model : nn.Module
        The model.
    image : ndarray
        Normalised float32 (H, W) image.
    kw : dict
        Keyword arguments of :func:`~napari_crack_al.core.inference.iter_predict_image`.

    Returns
    -------
    Prediction or None
        The last :class:`~napari_crack_al.core.inference.Prediction`; None when cancelled.
    """
    from ..inference import Prediction, iter_predict_image

    pred = None
    for ev in iter_predict_image(model, image, **kw):
        if isinstance(ev, Prediction):
            pred = ev
    return pred


def _predict_with_embedding(model: Any, image: np.ndarray, pool: Any, kw: dict[str, Any],
                            ) -> tuple[Any, np.ndarray | None]:
    """The main model's prediction and, with an encoder pool, its pooled embedding.

    Parameters
    ----------
    model : nn.Module
        The main model.
    image : ndarray
        Normalised float32 (H, W) image.
    pool : EncoderPool or None
        The forward hook on ``model``'s encoder (None: no embedding).
    kw : dict
        Keyword arguments of :func:`~napari_crack_al.core.inference.iter_predict_image`.

    Returns
    -------
    tuple
        ``(Prediction or None, embedding or None)``; the prediction is None when cancelled.
    """
    if pool is None:
        return _final_prediction(model, image, kw), None
    pool.reset()
    with pool:
        pred = _final_prediction(model, image, kw)
    return pred, pool.embedding()


def _score_one_image(model: Any, index: int, name: str, image: np.ndarray,
                     valid: np.ndarray | None, *, pool: Any, student: Any, mc_passes: int,
                     seed: int, cfg: ScoreConfig, kw: dict[str, Any]) -> ImageScores | None:
    """Every score of one image: the main pass, then the student's and the MC-dropout passes.

    Parameters
    ----------
    model, student, mc_passes, seed
        As in :func:`iter_score_images`.
    index : int
        Position of the image in the input (also offsets the MC-dropout seed).
    name : str
        Image name.
    image : ndarray
        Normalised float32 (H, W) image.
    valid : ndarray or None
        bool (H, W) valid pixels.
    pool : EncoderPool or None
        The forward hook giving the embedding.
    cfg : ScoreConfig
        Aggregation settings.
    kw : dict
        Keyword arguments of :func:`~napari_crack_al.core.inference.iter_predict_image`.

    Returns
    -------
    ImageScores or None
        None when cancelled inside the image.
    """
    pred, embedding = _predict_with_embedding(model, image, pool, kw)
    if pred is None:  # cancelled inside the image
        return None
    scores = uncertainty_scores(pred.probability, pred.entropy, valid, cfg)
    if student is not None:
        pred_s = _final_prediction(student, image, kw)
        if pred_s is None:
            return None
        scores.update(disagreement_scores(pred.probability, pred_s.probability, valid, cfg))
    if mc_passes:
        from .mc_dropout import mc_dropout_mutual_information

        mi = mc_dropout_mutual_information(model, image, passes=mc_passes, seed=seed + index,
                                           **kw)
        if mi is None:
            return None
        scores["bald"] = topk_mean(mi, valid, fraction=cfg.topk_fraction)
    return ImageScores(index=index, name=name, scores=scores, embedding=embedding,
                       probability=pred.probability)


def score_images(model: Any, images: Iterable[Any], **kwargs: Any) -> dict[str, ImageScores]:
    """Score every image (see :func:`iter_score_images` for the parameters).

    Returns
    -------
    dict of str to ImageScores
        By image name, in input order; a cancelled run returns the images finished so far.
    """
    out: dict[str, ImageScores] = {}
    for item in iter_score_images(model, images, **kwargs):
        if isinstance(item, ImageScores):
            out[item.name] = item
    return out


def scores_by_kind(results: Mapping[str, ImageScores]) -> dict[str, dict[str, float]]:
    """Regroup ``{name: ImageScores}`` as ``{kind: {name: value}}`` (for ``Project.set_scores``)."""
    out: dict[str, dict[str, float]] = {}
    for name, res in results.items():
        for kind, value in res.scores.items():
            out.setdefault(kind, {})[name] = float(value)
    return out
