"""Per-image informativeness scores, and scoring a pool from ONE forward pass per image.

Every score is a float where **higher means more worth annotating**. Invalid pixels
(``valid == False``) never count. Entropies are normalised to [0, 1] (divided by
``ln 2`` for the two classes), as in :mod:`napari_crack_al.core.inference`.

Score kinds (:data:`SCORE_KINDS`)
---------------------------------
``entropy``
    Mean pixel entropy over the valid pixels (the course project's criterion). It is
    dominated by the easy background: a thin uncertain crack barely moves it.
``crack_entropy``
    Mean entropy over the *crack region*: pixels whose crack probability exceeds
    ``crack_threshold`` (0.1), dilated by ``dilation_px`` (3) pixels. 0 when the model
    sees no crack at all. Not diluted by the background.
``topk_entropy``
    Mean of the ``topk_fraction`` (1 %) most uncertain valid pixels.
``margin``
    ``1 - |p(crack) - p(background)|`` averaged over the crack region.
``least_confidence``
    ``1 - max(p(crack), p(background))`` averaged over the top-k pixels.
    (For two classes both per-pixel quantities are proportional to ``min(p, 1 - p)``;
    the two kinds differ by where they are averaged: crack region vs top-k.)
``disagreement``
    With a second model (the student): pixels where the two argmaxes differ, divided
    by the pixels predicted crack by either model (``1 - IoU`` of the two masks).
``disagreement_kl``
    Mean symmetric KL divergence between the two models over the union of their
    crack regions (in nats).
``bald``
    MC-dropout mutual information (see :mod:`.mc_dropout`) averaged over the top-k
    pixels. Costs ``mc_passes`` extra forward passes per image.

:func:`iter_score_images` runs the model once per image (tiled, tiles batched, via
:func:`napari_crack_al.core.inference.iter_predict_image`) and gets the probability,
the entropy and the pooled encoder embedding (:class:`.embeddings.EncoderPool`, a
forward hook) from that single pass. The student and the MC-dropout passes are the
only extra passes, and only when asked for.

This module imports torch lazily (only :func:`iter_score_images` needs it).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from ..checks import Problems
from ..entropy import binary_entropy
from ..errors import ConfigError
from ..events import CancelToken, ProgressEvent

__all__ = [
    "SCORE_KINDS",
    "UNCERTAINTY_KINDS",
    "ScoreConfig",
    "ImageScores",
    "binary_entropy",
    "crack_region",
    "topk_mean",
    "region_mean",
    "uncertainty_scores",
    "disagreement_scores",
    "iter_score_images",
    "score_images",
    "scores_by_kind",
]

log = logging.getLogger(__name__)

#: Scores computed from one model's single forward pass.
UNCERTAINTY_KINDS = ("entropy", "crack_entropy", "topk_entropy", "margin", "least_confidence")
#: Every score kind this module can produce.
SCORE_KINDS = UNCERTAINTY_KINDS + ("disagreement", "disagreement_kl", "bald")

_EPS = 1e-7


@dataclass(frozen=True)
class ScoreConfig:
    """How pixel uncertainties are aggregated into image scores.

    Parameters
    ----------
    crack_threshold : float
        Crack probability above which a pixel belongs to the crack region, in (0, 1).
    dilation_px : int
        The crack region is dilated by this many pixels (square neighbourhood).
    topk_fraction : float
        Share of the valid pixels averaged by the top-k scores, in (0, 1].
    """

    crack_threshold: float = 0.1
    dilation_px: int = 3
    topk_fraction: float = 0.01

    def __post_init__(self) -> None:
        check = Problems(self)
        check.number("crack_threshold", 0.0, 1.0, low_open=True, high_open=True)
        check.integer("dilation_px", 0)
        check.number("topk_fraction", 0.0, 1.0, low_open=True)
        check.raise_if_any("ScoreConfig")


@dataclass(frozen=True)
class ImageScores:
    """Scores of one image (one item yielded by :func:`iter_score_images`).

    Attributes
    ----------
    index : int
        Position of the image in the input sequence.
    name : str
        Image name.
    scores : dict of str to float
        ``{kind: value}`` (see :data:`SCORE_KINDS`).
    embedding : ndarray or None
        float32 (C,) L2-normalised global average pool of the encoder's deepest stage.
    probability : ndarray
        float32 (H, W) crack probability of the main model.
    """

    index: int
    name: str
    scores: dict[str, float]
    embedding: np.ndarray | None = field(repr=False)
    probability: np.ndarray = field(repr=False)


# ---------------------------------------------------------------------------- pixel maps
def _valid_or_all(valid: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if valid is None:
        return np.ones(shape, dtype=bool)
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != shape:
        raise ValueError(f"valid mask {valid.shape} does not match the map {shape}")
    return valid


def crack_region(probability: np.ndarray, valid: np.ndarray | None = None, *,
                 threshold: float = 0.1, dilation_px: int = 3) -> np.ndarray:
    """Pixels near a possible crack: ``probability > threshold`` dilated, restricted to ``valid``.

    Parameters
    ----------
    probability : ndarray
        (H, W) crack probability.
    valid : ndarray or None
        bool (H, W); None means every pixel is valid.
    threshold : float
        Probability above which a pixel is a crack candidate.
    dilation_px : int
        Dilation radius (square structuring element of side ``2 * dilation_px + 1``).

    Returns
    -------
    ndarray
        bool (H, W).
    """
    prob = np.asarray(probability)
    valid = _valid_or_all(valid, prob.shape)
    region = (prob > threshold) & valid
    if dilation_px > 0 and region.any():
        region = ndimage.maximum_filter(region, size=2 * int(dilation_px) + 1)
    return region & valid


def region_mean(values: np.ndarray, region: np.ndarray) -> float:
    """Mean of ``values`` over ``region`` (0.0 for an empty region)."""
    n = int(np.count_nonzero(region))
    if n == 0:
        return 0.0
    return float(np.sum(values, where=region, dtype=np.float64) / n)


def topk_mean(values: np.ndarray, valid: np.ndarray | None = None, *,
              fraction: float = 0.01) -> float:
    """Mean of the ``ceil(fraction * n_valid)`` largest valid values (0.0 without valid pixels)."""
    vals = np.asarray(values)
    valid = _valid_or_all(valid, vals.shape)
    flat = vals[valid] if not valid.all() else vals.ravel()
    n = flat.size
    if n == 0:
        return 0.0
    k = min(n, max(1, int(math.ceil(fraction * n))))
    top = np.partition(flat, n - k)[n - k:]
    return float(np.mean(top, dtype=np.float64))


# ---------------------------------------------------------------------------- image scores
def uncertainty_scores(probability: np.ndarray, entropy: np.ndarray | None = None,
                       valid: np.ndarray | None = None,
                       config: ScoreConfig | None = None) -> dict[str, float]:
    """The single-model scores of one image (:data:`UNCERTAINTY_KINDS`).

    Parameters
    ----------
    probability : ndarray
        float (H, W) crack probability.
    entropy : ndarray or None
        Normalised entropy map (computed from ``probability`` when None).
    valid : ndarray or None
        bool (H, W) valid pixels; None means all.
    config : ScoreConfig or None
        Aggregation settings (defaults when None).

    Returns
    -------
    dict of str to float
    """
    cfg = config if config is not None else ScoreConfig()
    prob = np.asarray(probability, dtype=np.float32)
    if prob.ndim != 2:
        raise ValueError(f"probability must be 2-D, got shape {prob.shape}")
    valid = _valid_or_all(valid, prob.shape)
    ent = binary_entropy(prob) if entropy is None else np.asarray(entropy, dtype=np.float32)
    if ent.shape != prob.shape:
        raise ValueError(f"entropy {ent.shape} does not match probability {prob.shape}")
    if not valid.any():
        return {k: 0.0 for k in UNCERTAINTY_KINDS}
    region = crack_region(prob, valid, threshold=cfg.crack_threshold, dilation_px=cfg.dilation_px)
    minority = np.minimum(prob, 1.0 - prob)  # min(p, 1 - p)
    return {
        "entropy": region_mean(ent, valid),
        "crack_entropy": region_mean(ent, region),
        "topk_entropy": topk_mean(ent, valid, fraction=cfg.topk_fraction),
        "margin": region_mean(2.0 * minority, region),          # 1 - |p1 - p0|
        "least_confidence": topk_mean(minority, valid, fraction=cfg.topk_fraction),  # 1 - max p
    }


def disagreement_scores(teacher: np.ndarray, student: np.ndarray, valid: np.ndarray | None = None,
                        config: ScoreConfig | None = None) -> dict[str, float]:
    """Teacher-student disagreement of one image.

    Parameters
    ----------
    teacher, student : ndarray
        float (H, W) crack probabilities of the two models.
    valid : ndarray or None
        bool (H, W) valid pixels.
    config : ScoreConfig or None
        For the crack region of the KL average.

    Returns
    -------
    dict
        ``disagreement``: pixels whose argmax differs / pixels predicted crack by either
        model (0 when neither predicts a crack); ``disagreement_kl``: mean symmetric KL
        (nats) over the union of both models' crack regions.
    """
    cfg = config if config is not None else ScoreConfig()
    pt = np.asarray(teacher, dtype=np.float32)
    ps = np.asarray(student, dtype=np.float32)
    if pt.shape != ps.shape or pt.ndim != 2:
        raise ValueError(f"teacher {pt.shape} and student {ps.shape} must be equal 2-D shapes")
    valid = _valid_or_all(valid, pt.shape)
    mt, ms = (pt > 0.5) & valid, (ps > 0.5) & valid
    union = int(np.count_nonzero(mt | ms))
    differ = int(np.count_nonzero(mt ^ ms))
    frac = differ / union if union else 0.0
    a = np.clip(pt, _EPS, 1.0 - _EPS)
    b = np.clip(ps, _EPS, 1.0 - _EPS)
    # KL(a||b) + KL(b||a) = (a - b) * (log a - log b) + ((1-a) - (1-b)) * (log(1-a) - log(1-b))
    skl = (a - b) * (np.log(a) - np.log(b)) + (b - a) * (np.log1p(-a) - np.log1p(-b))
    region = crack_region(np.maximum(pt, ps), valid, threshold=cfg.crack_threshold,
                          dilation_px=cfg.dilation_px)
    return {"disagreement": float(frac), "disagreement_kl": region_mean(skl, region)}


# ---------------------------------------------------------------------------- pools
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
