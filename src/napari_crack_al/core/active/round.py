"""One active-learning round: snapshot, train, register, score, suggest, rank (napari-free).

:func:`run_round` is a generator driven by the simulation and by the napari Train
panel (in a thread worker); it yields the trainer's events, ``ProgressEvent`` while
loading and scoring, a final ``CheckpointEvent`` and the :class:`RoundFinished`
(also its return value). It returns None when cancelled.

Steps
-----
1. Snapshot: the annotated images and their masks are read into memory now, so the
   annotator can keep annotating during training (the next round uses new masks).
   The unlabelled images of a semi-supervised round are read when a batch draws them,
   with a cache of ``cache_mb`` (:class:`~napari_crack_al.core.training.lazy_images.LazyImages`),
   so memory does not grow with the pool.
   Held-out set: project meta ``"heldout"`` if the user set one, else an automatic
   share kept in meta ``"heldout_auto"`` (once held out, always held out).
2. Train with :func:`~napari_crack_al.core.training.trainer.train` (warm start from the
   project's current model; validation = the held-out images).
3. Only when training finished: the checkpoint is moved atomically to
   ``models/round_RRR.pt`` and registered as ``round-RRR`` with the held-out metrics.
   A cancelled (or failed) round keeps the previous model and registers nothing.
4. The candidate images (at most ``max_candidates``, for at most ``score_seconds``: by
   default half the training time) are scored with the new model (:mod:`.scores`, one
   pass each); its suggestion (``probability > threshold``, the new model's calibrated threshold
   unless ``suggest_threshold`` overrides it) and its crack probability
   (uint8 PNG, :func:`read_probability`) are written, the scores are stored.
5. The strategy ranks the unlabeled images; the queue is re-sorted.
6. With held-out images, the edit fraction of the model's masks, of the tuned detector's
   and of an empty mask is measured on them (:mod:`.suggestion_source`); when the
   model's is not the lowest, the waiting images get the cheapest instead (the ranking
   and the probability overlay stay the model's).

Cold start (nothing annotated yet): no training; the queue is ranked by k-medoids
on label-free features (:func:`iter_cold_start`).

This module holds the round itself (:class:`RoundConfig`, :func:`run_round`); the pool
helpers live in :mod:`.pool` (scoring and ranking), :mod:`.probability` (stored
probability maps) and :mod:`.heldout` (the validation set), and are re-exported here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io.atomic import fsync_dir
from ..errors import InputError
from ..normalize import NORMALIZATION_META
from ..events import CancelToken, CheckpointEvent, MessageEvent, Outcome, ProgressEvent
from .heldout import HELDOUT_AUTO_META, HELDOUT_META, TRAINED_META, select_heldout
from .pool import (
    COLD_START_VERSION,
    iter_cold_start,
    iter_score_project,
    lazy_project_images,
    load_images,
    stored_scores,
)
from .probability import PROBABILITY_DIR, probability_path, read_probability, write_probability
from .candidates import SCORE_TIME_SHARE
from .round_config import RoundConfig
from .strategies import unlabeled_candidates

__all__ = [
    "RoundConfig",
    "RoundFinished",
    "run_round",
    "select_heldout",
    "read_probability",
    "write_probability",
    "probability_path",
    "iter_cold_start",
    "iter_score_project",
    "COLD_START_VERSION",
    "load_images",
    "stored_scores",
    "PROBABILITY_DIR",
    "HELDOUT_META",
    "HELDOUT_AUTO_META",
    "TRAINED_META",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoundFinished:
    """The outcome of a round (last event of :func:`run_round` and its return value).

    Attributes
    ----------
    round_index : int
        1, 2, ... (0 for a cold start, which trains nothing).
    model_version : str
        ``"round-RRR"`` (``"cold-start"`` for a cold start).
    checkpoint : Path or None
        The registered checkpoint (None for a cold start).
    metrics : dict
        Held-out metrics of the new model (empty without held-out images).
    ranking : list of str
        The strategy's full ranking of the unlabeled images (= the new queue head).
    train_seconds, score_seconds : float
        Wall time of training and of scoring + ranking.
    trained_on, heldout : list of str
        Images used for training and for validation in this round.
    threshold : float
        The model's crack-probability threshold (calibrated on the held-out images, else
        the previous model's, else 0.5); the suggestions were cut there.
    kept_previous : bool
        The round made the held-out F1 worse beyond noise, so the registered model holds
        the previous model's weights.
    source : SourceChoice or None
        Which masks the waiting images were given and the held-out edit fractions that
        chose them (:mod:`.suggestion_source`); None when not measured (the model's).
    """

    round_index: int
    model_version: str
    checkpoint: Path | None
    metrics: dict[str, float]
    ranking: list[str]
    train_seconds: float
    score_seconds: float
    trained_on: list[str] = field(default_factory=list)
    heldout: list[str] = field(default_factory=list)
    threshold: float = 0.5
    kept_previous: bool = False
    source: Any = None

    @property
    def suggestion_source(self) -> str:
        """``"model"``, ``"detector"`` or ``"none"``: what the waiting images were given."""
        return "model" if self.source is None else str(self.source.source)


def _next_round(project: Any) -> int:
    return max((int(m["round"]) for m in project.models()), default=0) + 1


def run_round(project: Any, config: RoundConfig, *, cancel: CancelToken | None = None,
              ) -> Generator[Any, None, RoundFinished | None]:
    """Run one active-learning round on ``project`` (see the module docstring).

    Parameters
    ----------
    project : Project
        The open project.
    config : RoundConfig
        Settings.
    cancel : CancelToken or None
        Checked between steps, images and training iterations.

    Yields
    ------
    MessageEvent, ProgressEvent, StepEvent, ValidationEvent, CheckpointEvent, RoundFinished

    Returns
    -------
    RoundFinished or None
        None when cancelled (nothing registered, no re-ranking).
    """
    from ..project import ImageStatus

    if not isinstance(config, RoundConfig):
        raise TypeError(f"config must be a RoundConfig, got {type(config).__name__}")
    cancel = cancel if cancel is not None else CancelToken()
    annotated = sorted(r.name for r in project.records() if r.status == ImageStatus.ANNOTATED)
    if not annotated:
        return (yield from _cold_start_round(project, config, cancel))
    snapshot = yield from _snapshot(project, config, annotated, cancel)
    if snapshot is None:
        return None
    trained = yield from _train_and_register(project, config, snapshot, cancel)
    if trained is None:
        return None
    finished = yield from _score_and_rank(project, config, snapshot, trained, cancel)
    if finished is not None:
        yield finished
    return finished


@dataclass
class _Snapshot:
    """The images of a round: the annotated ones read into memory when it starts."""

    labeled: list[Any]
    validation: list[Any]
    unlabeled: Any  # LazyImages: read when a batch draws them
    loaded: dict[str, Any]


@dataclass
class _Trained:
    """The registered model of a round."""

    index: int
    version: str
    path: Path
    result: Any  # TrainResult
    seconds: float
    metrics: dict[str, float]


def _cold_start_round(project: Any, config: RoundConfig, cancel: CancelToken,
                      ) -> Generator[Any, None, RoundFinished | None]:
    """Nothing annotated yet: rank by label-free diversity, train nothing."""
    yield MessageEvent("no annotated image yet: ranking by label-free diversity (cold start)")
    t0 = time.perf_counter()
    ranking = yield from iter_cold_start(project, k=config.batch_size, seed=config.seed,
                                         profile=config.train.profile, cancel=cancel)
    if ranking is None:
        return None
    finished = RoundFinished(round_index=0, model_version=COLD_START_VERSION, checkpoint=None,
                             metrics={}, ranking=ranking, train_seconds=0.0,
                             score_seconds=time.perf_counter() - t0)
    yield finished
    return finished


def _snapshot(project: Any, config: RoundConfig, annotated: list[str], cancel: CancelToken,
              ) -> Generator[Any, None, _Snapshot | None]:
    """Step 1: held-out split, masks and images read now (None when cancelled)."""
    heldout = select_heldout(project, annotated, config)
    train_names = [n for n in annotated if n not in set(heldout)]
    if not train_names:
        raise InputError(project.root, "every annotated image is held out; accept more images "
                                       "or shrink the held-out list (project meta 'heldout')")
    masks = {}
    for name in annotated:
        mask = project.read_annotation(name)
        if mask is None:
            yield MessageEvent(f"{name}: annotated but its mask file is missing; not used")
        else:
            masks[name] = mask
    train_names = [n for n in train_names if n in masks]
    heldout = [n for n in heldout if n in masks]
    to_load = train_names + heldout
    loaded: dict[str, Any] = {}
    images = load_images(project, to_load, masks=masks, profile=config.train.profile)
    for i, (name, item) in enumerate(images):
        if cancel.cancelled:
            yield MessageEvent("round cancelled while loading images")
            return None
        yield ProgressEvent(i, len(to_load), "loading")
        if isinstance(item, InputError):
            yield MessageEvent(f"skipped: {item}")
        else:
            loaded[name] = item
    yield ProgressEvent(len(to_load), len(to_load), "loading")
    labeled = [loaded[n] for n in train_names if n in loaded]
    if not labeled:
        raise InputError(project.root, "no annotated image could be read for training")
    unlabeled = lazy_project_images(
        project, unlabeled_candidates(project) if config.train.semi else [],
        profile=config.train.profile, cache_bytes=config.cache_mb * 2**20)
    return _Snapshot(labeled=labeled, validation=[loaded[n] for n in heldout if n in loaded],
                     unlabeled=unlabeled, loaded=loaded)


def _warm_start(project: Any) -> Generator[Any, None, Path | None]:
    """The current model's file, when there is one on disk."""
    current = project.current_model()
    if current is None:
        return None
    if Path(current["path"]).is_file():
        return Path(current["path"])
    yield MessageEvent(f"model file {current['path']} is missing; training from scratch")
    return None


def _train_and_register(project: Any, config: RoundConfig, snap: _Snapshot,
                        cancel: CancelToken) -> Generator[Any, None, _Trained | None]:
    """Steps 2-3: train (warm start), move the checkpoint into place, register it."""
    from ..training.trainer import train

    r = _next_round(project)
    version = f"round-{r:03d}"
    project.models_dir.mkdir(parents=True, exist_ok=True)
    final = project.models_dir / f"round_{r:03d}.pt"
    tmp = project.models_dir / f".round_{r:03d}.pt.tmp-training"
    init = yield from _warm_start(project)
    yield MessageEvent(f"round {r}: training on {len(snap.labeled)} image(s), "
                       f"{len(snap.validation)} held out, {len(snap.unlabeled)} unlabeled")
    t_train = time.perf_counter()
    run = Outcome(train(snap.labeled, snap.unlabeled, config.train, checkpoint_path=tmp,
                        init=init, validation=snap.validation, cancel=cancel, round_index=r,
                        extra_metadata={"model_version": version}))
    moved = False
    try:
        for ev in run:
            if not isinstance(ev, CheckpointEvent):  # the final one is re-emitted below
                yield ev
        yield from _report_unreadable(project, snap.unlabeled)
        result = run.value
        if result is None or result.cancelled or result.checkpoint is None:
            yield MessageEvent(f"round {r} cancelled: the previous model is kept")
            return None
        os.replace(tmp, final)
        fsync_dir(final.parent)
        moved = True
    finally:
        run.close()
        if not moved:
            with contextlib.suppress(OSError):
                tmp.unlink()
    trained = _Trained(index=r, version=version, path=final, result=result,
                       seconds=time.perf_counter() - t_train,
                       metrics={k: float(v) for k, v in result.metrics.items()})
    _register(project, config, snap, trained)
    yield CheckpointEvent(step=result.steps, path=final,
                          metadata={"round": r, "final": True, "model_version": version,
                                    "metrics": dict(trained.metrics),
                                    "threshold": result.threshold,
                                    "kept_previous": result.kept_previous})
    return trained


def _report_unreadable(project: Any, unlabeled: Any) -> Generator[MessageEvent, None, None]:
    """Mark the unlabelled images training could not read, and say so."""
    for name, problem in getattr(unlabeled, "failed", {}).items():
        project.mark_unreadable(name, problem)
        yield MessageEvent(f"skipped: {name}: {problem}")


def _register(project: Any, config: RoundConfig, snap: _Snapshot, trained: _Trained) -> None:
    """Register the model with its metrics and threshold; remember what it saw."""
    # the registry holds the threshold also when nothing was held out (previous model's, or 0.5)
    project.add_model(trained.version, trained.path, round=trained.index,
                      metrics={**trained.metrics, "threshold": float(trained.result.threshold)})
    project.set_meta(NORMALIZATION_META, config.train.profile)  # the display shows it
    seen = list(project.get_meta(TRAINED_META, kind=list) or [])
    project.set_meta(TRAINED_META, list(dict.fromkeys(seen + [t.name for t in snap.labeled])))


def _score_and_rank(project: Any, config: RoundConfig, snap: _Snapshot, trained: _Trained,
                    cancel: CancelToken) -> Generator[Any, None, RoundFinished | None]:
    """Steps 4-5: score and suggest every unlabeled image with the new model, rank, re-sort."""
    from ..device import select_device
    from ..model import load_model

    t_score = time.perf_counter()
    model, _ = load_model(trained.path, device=select_device(config.train.device))
    result = trained.result
    threshold = result.threshold if config.suggest_threshold is None else config.suggest_threshold
    ranking = yield from iter_score_project(
        project, model, trained.version, strategy=config.strategy, k=config.batch_size,
        seed=config.seed, mc_passes=config.mc_passes, suggest_threshold=threshold,
        store_probabilities=config.store_probabilities, embed_annotated=config.embed_annotated,
        profile=config.train.profile, cache=snap.loaded, score_config=config.score,
        tile=config.tile, overlap=config.overlap, batch_size=config.infer_batch_size,
        random_share=config.random_share, max_candidates=config.max_candidates,
        score_seconds=_score_seconds(config, trained), suggest_next=config.suggest_next,
        cancel=cancel)
    if ranking is None:
        yield MessageEvent(f"scoring cancelled: model {trained.version} is registered, the "
                           "queue was not re-ranked")
        return None
    source = None
    if config.choose_source and snap.validation:
        source = yield from _choose_and_apply_source(project, config, snap, trained, model,
                                                     threshold, cancel)
    return RoundFinished(round_index=trained.index, model_version=trained.version,
                         checkpoint=trained.path, metrics=trained.metrics, ranking=ranking,
                         train_seconds=trained.seconds,
                         score_seconds=time.perf_counter() - t_score,
                         trained_on=[t.name for t in snap.labeled],
                         heldout=[t.name for t in snap.validation], threshold=float(threshold),
                         kept_previous=result.kept_previous, source=source)


def _score_seconds(config: RoundConfig, trained: _Trained) -> float | None:
    """The round's scoring time (None: no limit)."""
    if config.score_seconds is None:
        return SCORE_TIME_SHARE * trained.seconds
    return None if config.score_seconds == 0 else float(config.score_seconds)


def _choose_and_apply_source(project: Any, config: RoundConfig, snap: _Snapshot,
                             trained: _Trained, model: Any, threshold: float,
                             cancel: CancelToken) -> Generator[Any, None, Any]:
    """Step 6: the cheapest suggestion source on the held-out images replaces the model's."""
    from .on_demand import remember_source
    from .suggestion_source import iter_apply_source, iter_choose_source

    choice = yield from iter_choose_source(project, model, snap.validation, threshold,
                                           tile=config.tile, overlap=config.overlap,
                                           cancel=cancel)
    if choice is None:
        return None
    yield MessageEvent(choice.describe(trained.version))
    yield from iter_apply_source(project, choice, trained.version, cancel=cancel)
    remember_source(project, trained.version, choice.source)  # for on-demand suggestions
    return choice
