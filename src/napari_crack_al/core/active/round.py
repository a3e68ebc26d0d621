"""One active-learning round: snapshot, train, register, score, suggest, rank (napari-free).

:func:`run_round` is a generator driven by the simulation and by the napari Train
panel (in a thread worker); it yields the trainer's events, ``ProgressEvent`` while
loading and scoring, a final ``CheckpointEvent`` and the :class:`RoundFinished`
(also its return value). It returns None when cancelled.

Steps
-----
1. Snapshot: the annotated images and their masks are read into memory now, so the
   annotator can keep annotating during training (the next round uses new masks).
   Held-out set: project meta ``"heldout"`` if the user set one, else an automatic
   share kept in meta ``"heldout_auto"`` (once held out, always held out).
2. Train with :func:`~napari_crack_al.core.training.trainer.train` (warm start from the
   project's current model; validation = the held-out images).
3. Only when training finished: the checkpoint is moved atomically to
   ``models/round_RRR.pt`` and registered as ``round-RRR`` with the held-out metrics.
   A cancelled (or failed) round keeps the previous model and registers nothing.
4. Every unlabeled image is scored with the new model (:mod:`.scores`, one pass each),
   its suggestion (``probability > threshold``, the new model's calibrated threshold
   unless ``suggest_threshold`` overrides it) and its crack probability
   (uint8 PNG, :func:`read_probability`) are written, the scores are stored.
5. The strategy ranks the unlabeled images; the queue is re-sorted.

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

from ..atomic import fsync_dir
from ..errors import InputError
from ..normalize import NORMALIZATION_META
from ..events import CancelToken, CheckpointEvent, MessageEvent, Outcome, ProgressEvent
from .heldout import HELDOUT_AUTO_META, HELDOUT_META, TRAINED_META, select_heldout
from .pool import (
    COLD_START_VERSION,
    iter_cold_start,
    iter_score_project,
    load_images,
    stored_scores,
)
from .probability import PROBABILITY_DIR, probability_path, read_probability, write_probability
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
    profile = config.train.profile
    records = project.records()
    annotated = sorted(r.name for r in records if r.status == ImageStatus.ANNOTATED)

    if not annotated:  # ------------------------------------------------ cold start
        yield MessageEvent("no annotated image yet: ranking by label-free diversity (cold start)")
        t0 = time.perf_counter()
        ranking = yield from iter_cold_start(project, k=config.batch_size, seed=config.seed,
                                             profile=profile, cancel=cancel)
        if ranking is None:
            return None
        finished = RoundFinished(round_index=0, model_version=COLD_START_VERSION, checkpoint=None,
                                 metrics={}, ranking=ranking, train_seconds=0.0,
                                 score_seconds=time.perf_counter() - t0)
        yield finished
        return finished

    # ------------------------------------------------------------------ 1. snapshot
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
    unlabeled_names = unlabeled_candidates(project)
    semi = config.train.semi
    to_load = train_names + heldout + (unlabeled_names if semi else [])
    loaded: dict[str, Any] = {}
    for i, (name, item) in enumerate(load_images(project, to_load, masks=masks, profile=profile)):
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
    validation = [loaded[n] for n in heldout if n in loaded]
    unlabeled = [loaded[n] for n in unlabeled_names if n in loaded] if semi else []
    if not labeled:
        raise InputError(project.root, "no annotated image could be read for training")

    # ------------------------------------------------------------------ 2-3. train, register
    from ..training.trainer import train

    r = _next_round(project)
    version = f"round-{r:03d}"
    project.models_dir.mkdir(parents=True, exist_ok=True)
    final = project.models_dir / f"round_{r:03d}.pt"
    tmp = project.models_dir / f".round_{r:03d}.pt.tmp-training"
    current = project.current_model()
    init = None
    if current is not None:
        if Path(current["path"]).is_file():
            init = Path(current["path"])
        else:
            yield MessageEvent(f"model file {current['path']} is missing; training from scratch")
    yield MessageEvent(f"round {r}: training on {len(labeled)} image(s), "
                       f"{len(validation)} held out, {len(unlabeled)} unlabeled")
    t_train = time.perf_counter()
    run = Outcome(train(labeled, unlabeled, config.train, checkpoint_path=tmp, init=init,
                        validation=validation, cancel=cancel, round_index=r,
                        extra_metadata={"model_version": version}))
    moved = False
    try:
        for ev in run:
            if not isinstance(ev, CheckpointEvent):  # the final one is re-emitted below
                yield ev
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
    train_seconds = time.perf_counter() - t_train
    metrics = {k: float(v) for k, v in result.metrics.items()}
    # the registry holds the threshold also when nothing was held out (previous model's, or 0.5)
    project.add_model(version, final, round=r,
                      metrics={**metrics, "threshold": float(result.threshold)})
    project.set_meta(NORMALIZATION_META, profile)  # the display shows what the model sees
    trained = list(project.get_meta(TRAINED_META, kind=list) or [])
    project.set_meta(TRAINED_META, list(dict.fromkeys(trained + [t.name for t in labeled])))
    yield CheckpointEvent(step=result.steps, path=final,
                          metadata={"round": r, "final": True, "model_version": version,
                                    "metrics": dict(metrics), "threshold": result.threshold,
                                    "kept_previous": result.kept_previous})

    # ------------------------------------------------------------------ 4-5. score, rank
    from ..device import select_device
    from ..model import load_model

    t_score = time.perf_counter()
    model, _ = load_model(final, device=select_device(config.train.device))
    threshold = result.threshold if config.suggest_threshold is None else config.suggest_threshold
    ranking = yield from iter_score_project(
        project, model, version, strategy=config.strategy, k=config.batch_size, seed=config.seed,
        mc_passes=config.mc_passes, suggest_threshold=threshold,
        store_probabilities=config.store_probabilities, embed_annotated=config.embed_annotated,
        profile=profile, cache=loaded, score_config=config.score, tile=config.tile,
        overlap=config.overlap, batch_size=config.infer_batch_size,
        random_share=config.random_share, cancel=cancel)
    if ranking is None:
        yield MessageEvent(f"scoring cancelled: model {version} is registered, the queue "
                           "was not re-ranked")
        return None
    finished = RoundFinished(round_index=r, model_version=version, checkpoint=final,
                             metrics=metrics, ranking=ranking, train_seconds=train_seconds,
                             score_seconds=time.perf_counter() - t_score,
                             trained_on=[t.name for t in labeled],
                             heldout=[t.name for t in validation], threshold=float(threshold),
                             kept_previous=result.kept_previous)
    yield finished
    return finished
