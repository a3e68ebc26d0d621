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
   its suggestion (``probability > suggest_threshold``) and its crack probability
   (uint8 PNG, :func:`read_probability`) are written, the scores are stored.
5. The strategy ranks the unlabeled images; the queue is re-sorted.

Cold start (nothing annotated yet): no training; the queue is ranked by k-center
greedy on label-free features (:func:`iter_cold_start`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_bytes, fsync_dir
from ..errors import ConfigError, InputError
from ..events import CancelToken, CheckpointEvent, MessageEvent, ProgressEvent
from ..training.config import TrainConfig
from .embeddings import iter_label_free_embeddings, save_embeddings
from .scores import ImageScores, ScoreConfig, iter_score_images, scores_by_kind
from .strategies import (
    DIVERSITY_STRATEGIES,
    SCORE_STRATEGIES,
    STRATEGY_NAMES,
    get_strategy,
    unlabeled_candidates,
)

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
]

log = logging.getLogger(__name__)

HELDOUT_META = "heldout"            # set by the user: used as is
HELDOUT_AUTO_META = "heldout_auto"  # managed here: only grows
TRAINED_META = "trained_images"     # every image some registered round trained on


def _num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(float(v))


@dataclass(frozen=True)
class RoundConfig:
    """Settings of one active-learning round.

    Parameters
    ----------
    train : TrainConfig
        Training settings (its ``profile``, ``seed`` and ``device`` are used for scoring too).
    strategy : str
        Selection strategy (see :data:`~.strategies.STRATEGY_NAMES`). ``"disagreement"``
        needs a student model, which a round does not keep (use the CLI ``rank --student``).
    batch_size : int
        k, the number of suggested images (the first k of the ranking).
    heldout_fraction : float
        Share of the accepted images held out for validation, in [0, 1).
    min_heldout_pool : int
        Nothing is held out before this many images are accepted.
    suggest_threshold : float
        Crack probability above which a pixel is in the suggestion mask.
    store_probabilities : bool
        Also store each unlabeled image's crack probability (uint8 PNG) for an overlay.
    mc_passes : int
        MC-dropout passes for the BALD score (0: none; else >= 2).
    seed : int
        Seed of the held-out choice, the strategy and the MC-dropout masks.
    embed_annotated : bool
        Also embed the annotated images, so the diversity strategies avoid near-copies
        of what is already annotated (one extra pass per annotated image).
    score : ScoreConfig
        How pixel uncertainties are aggregated.
    tile, overlap, infer_batch_size : int
        Tiled inference settings for scoring.
    """

    train: TrainConfig
    strategy: str = "hybrid"
    batch_size: int = 5
    heldout_fraction: float = 0.2
    min_heldout_pool: int = 5
    suggest_threshold: float = 0.5
    store_probabilities: bool = True
    mc_passes: int = 0
    seed: int = 0
    embed_annotated: bool = True
    score: ScoreConfig = field(default_factory=ScoreConfig)
    tile: int = 512
    overlap: int = 64
    infer_batch_size: int = 4

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not isinstance(self.train, TrainConfig):
            problems.append(f"train must be a TrainConfig (got {type(self.train).__name__})")
        if self.strategy not in STRATEGY_NAMES:
            problems.append(f"strategy must be one of {', '.join(STRATEGY_NAMES)} "
                            f"(got {self.strategy!r})")
        elif self.strategy == "disagreement":
            problems.append("strategy 'disagreement' needs a student model, which a round does "
                            "not keep; choose another strategy (valid: "
                            + ", ".join(s for s in STRATEGY_NAMES if s != "disagreement") + ")")
        for name, low in (("batch_size", 1), ("min_heldout_pool", 2), ("seed", 0), ("tile", 16),
                          ("overlap", 0), ("infer_batch_size", 1), ("mc_passes", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                problems.append(f"{name} must be an integer >= {low} (got {v!r})")
        if isinstance(self.tile, int) and isinstance(self.overlap, int) \
                and self.overlap > self.tile // 2:
            problems.append(f"overlap must be at most half the tile ({self.tile // 2} px; "
                            f"got {self.overlap})")
        if self.mc_passes == 1:
            problems.append("mc_passes must be 0 (no BALD) or >= 2 (got 1)")
        if self.strategy == "bald" and self.mc_passes == 0:
            problems.append("strategy 'bald' needs mc_passes >= 2")
        if not (_num(self.heldout_fraction) and 0.0 <= self.heldout_fraction < 1.0):
            problems.append(f"heldout_fraction must be a number in [0, 1) "
                            f"(got {self.heldout_fraction!r})")
        if not (_num(self.suggest_threshold) and 0.0 < self.suggest_threshold < 1.0):
            problems.append(f"suggest_threshold must be a number in (0, 1) "
                            f"(got {self.suggest_threshold!r})")
        for name in ("store_probabilities", "embed_annotated"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name} must be true or false (got {getattr(self, name)!r})")
        if not isinstance(self.score, ScoreConfig):
            problems.append(f"score must be a ScoreConfig (got {type(self.score).__name__})")
        if problems:
            raise ConfigError("invalid RoundConfig: " + "; ".join(problems))


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


COLD_START_VERSION = "cold-start"
PROBABILITY_DIR = "probabilities"


# ---------------------------------------------------------------------------- probability maps
def probability_path(project: Any, name: str) -> Path:
    """``.crack-al/probabilities/NAME.png``: the stored crack probability of an image."""
    return Path(project.state_dir) / PROBABILITY_DIR / f"{name}.png"


def write_probability(project: Any, name: str, probability: np.ndarray) -> Path:
    """Store a crack probability map as a uint8 PNG (0..255), atomically."""
    from PIL import Image

    prob = np.asarray(probability, dtype=np.float32)
    if prob.ndim != 2:
        raise ValueError(f"probability must be 2-D, got shape {prob.shape}")
    u8 = np.round(np.clip(np.nan_to_num(prob), 0.0, 1.0) * 255.0).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="PNG")
    path = probability_path(project, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(path, buf.getvalue())


def read_probability(project: Any, name: str) -> np.ndarray | None:
    """The stored crack probability of ``name`` as float32 (H, W) in [0, 1], or None.

    None when no map was stored (or the file cannot be decoded; a warning is logged).
    """
    from PIL import Image, UnidentifiedImageError

    path = probability_path(project, name)
    if not path.is_file():
        return None
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("L"), dtype=np.float32)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        log.warning("%s: cannot read the stored probability (%s)", path, exc)
        return None
    return arr / np.float32(255.0)


# ---------------------------------------------------------------------------- pool helpers
def load_images(project: Any, names: Sequence[str], *, masks: dict[str, np.ndarray] | None = None,
                profile: str = "none") -> Iterator[tuple[str, Any]]:
    """Read and normalise project images lazily: ``(name, TrainingImage or InputError)``."""
    from ..range_io import read_range_image
    from ..training.data import from_range_image

    for name in names:
        try:
            image = read_range_image(project.image_path(name))
            mask = None if masks is None else masks.get(name)
            item = from_range_image(image, mask, name=name, profile=profile)
        except InputError as exc:
            yield name, exc
            continue
        yield name, item


def stored_scores(project: Any, model_version: str | None = None) -> dict[str, dict[str, float]]:
    """Stored scores ``{name: {kind: value}}``, only those of ``model_version`` when given."""
    scores = project.get_scores()
    if model_version is None:
        return scores
    kinds = {k for per in scores.values() for k in per}
    keep = {k: {n for n, v in project.score_versions(k).items() if v == model_version}
            for k in kinds}
    out: dict[str, dict[str, float]] = {}
    for name, per in scores.items():
        sel = {k: v for k, v in per.items() if name in keep[k]}
        if sel:
            out[name] = sel
    return out


def _cached_images(project: Any, names: Sequence[str], cache: dict[str, Any] | None,
                   profile: str, skipped: list[str]) -> Iterator[Any]:
    for name in names:
        if cache is not None and name in cache:
            yield cache[name]
            continue
        for _, item in load_images(project, [name], profile=profile):
            if isinstance(item, InputError):
                skipped.append(str(item))
            else:
                yield item


def iter_score_project(project: Any, model: Any, model_version: str, *, strategy: str = "hybrid",
                       k: int = 5, seed: int = 0, names: Sequence[str] | None = None,
                       student: Any = None, mc_passes: int = 0, suggest_threshold: float = 0.5,
                       write_suggestions: bool = True, store_probabilities: bool = True,
                       embed_annotated: bool = True, profile: str = "none",
                       cache: dict[str, Any] | None = None, score_config: ScoreConfig | None = None,
                       tile: int = 512, overlap: int = 64, batch_size: int = 4, device: Any = None,
                       cancel: CancelToken | None = None) -> Generator[Any, None, list[str] | None]:
    """Score the unlabeled images with ``model``, store everything, rank, re-sort the queue.

    Per image (one pass): scores, embedding, suggestion mask (``probability >
    suggest_threshold``) and, if asked, the probability PNG. Then every score kind is
    stored with ``model_version`` (the strategy's score kind also as ``"score"``), the
    embeddings are saved, the strategy ranks the current unlabeled images from the
    stored scores and the queue is re-sorted.

    Yields
    ------
    ProgressEvent, MessageEvent

    Returns
    -------
    list of str or None
        The ranking; None when cancelled (scores not stored, queue untouched; the
        suggestions already written stay).
    """
    from ..project import ImageStatus

    strat = get_strategy(strategy)
    candidates = list(names) if names is not None else unlabeled_candidates(project)
    skipped: list[str] = []
    results: dict[str, ImageScores] = {}
    embeddings: dict[str, np.ndarray] = {}
    common = dict(config=score_config, tile=tile, overlap=overlap, batch_size=batch_size,
                  device=device, cancel=cancel)
    for ev in iter_score_images(model, _cached_images(project, candidates, cache, profile, skipped),
                                total=len(candidates), student=student, mc_passes=mc_passes,
                                seed=seed, **common):
        if isinstance(ev, ImageScores):
            results[ev.name] = ev
            if ev.embedding is not None:
                embeddings[ev.name] = ev.embedding
            if write_suggestions:
                project.set_suggestion(ev.name, ev.probability > suggest_threshold, model_version)
            if store_probabilities:
                write_probability(project, ev.name, ev.probability)
        else:
            yield ev
    if cancel is not None and cancel.cancelled:
        return None
    for text in skipped:
        yield MessageEvent(f"skipped: {text}")
    by_kind = scores_by_kind(results)
    for kind, values in sorted(by_kind.items()):
        project.set_scores(values, model_version, kind=kind)
    primary = getattr(strat, "kind", None) or SCORE_STRATEGIES.get(strategy, "crack_entropy")
    if primary in by_kind:
        project.set_scores(by_kind[primary], model_version, kind="score")

    if strategy in DIVERSITY_STRATEGIES and embed_annotated and embeddings:
        annotated = [r.name for r in project.records() if r.status == ImageStatus.ANNOTATED]
        for ev in iter_score_images(model, _cached_images(project, annotated, cache, profile,
                                                          skipped),
                                    total=len(annotated), **common):
            if isinstance(ev, ImageScores):
                if ev.embedding is not None:
                    embeddings[ev.name] = ev.embedding
            else:
                yield ProgressEvent(ev.done, ev.total, "embedding annotated")
        if cancel is not None and cancel.cancelled:
            return None
    if embeddings:
        save_embeddings(project.state_dir, model_version, embeddings)
    pending = unlabeled_candidates(project)  # images annotated meanwhile are left out
    ranking = strat.rank(pending, stored_scores(project, model_version), embeddings or None,
                         k, seed)
    project.set_queue_order(ranking)
    return ranking


def iter_cold_start(project: Any, *, k: int = 5, seed: int = 0, profile: str = "none",
                    cancel: CancelToken | None = None) -> Generator[Any, None, list[str] | None]:
    """Rank the unlabeled images without a model: k-center greedy on label-free features.

    Annotated images (if any) are in the feature pool and count as covered centers.
    The vectors are saved as embeddings of version ``"cold-start"``; the queue is re-sorted.

    Returns
    -------
    list of str or None
        The ranking; None when cancelled.
    """
    from ..project import ImageStatus

    candidates = unlabeled_candidates(project)
    annotated = [r.name for r in project.records() if r.status == ImageStatus.ANNOTATED]
    skipped: list[str] = []
    names = candidates + annotated
    vectors = yield from iter_label_free_embeddings(
        _cached_images(project, names, None, profile, skipped), total=len(names), cancel=cancel)
    if vectors is None:
        return None
    for text in skipped:
        yield MessageEvent(f"skipped: {text}")
    if vectors:
        save_embeddings(project.state_dir, COLD_START_VERSION, vectors)
    ranking = get_strategy("kcenter").rank(candidates, {}, vectors, k, seed) if vectors \
        else sorted(candidates)
    project.set_queue_order(ranking)
    return ranking


def _stable_key(seed: int, name: str) -> str:
    import hashlib

    return hashlib.sha1(f"{seed}:{name}".encode()).hexdigest()


def select_heldout(project: Any, annotated: Sequence[str], config: RoundConfig) -> list[str]:
    """The held-out images among ``annotated`` (updates meta ``"heldout_auto"``).

    The user's list (meta ``"heldout"``) wins. Otherwise, once ``min_heldout_pool``
    images are accepted, ``floor(n * heldout_fraction)`` of them are held out (every
    5th for 0.2): images already held out stay; new ones are drawn first among the
    images no registered model was trained on (meta ``"trained_images"``; a warm-started
    model has seen the others), in a fixed pseudo-random order of their names (seeded).
    """
    annotated = list(annotated)
    user = project.get_meta(HELDOUT_META)
    if user:
        return sorted(set(map(str, user)) & set(annotated))
    kept = [n for n in (project.get_meta(HELDOUT_AUTO_META) or []) if n in set(annotated)]
    previous = list(project.get_meta(HELDOUT_AUTO_META) or [])
    if len(annotated) >= config.min_heldout_pool and config.heldout_fraction > 0:
        target = int(len(annotated) * config.heldout_fraction)
        trained = set(project.get_meta(TRAINED_META) or [])
        pool = sorted((n for n in annotated if n not in set(kept)),
                      key=lambda n: (n in trained, _stable_key(config.seed, n)))
        kept += pool[:max(0, target - len(kept))]
    # names no longer annotated are kept in the list: if re-accepted they stay held out
    stored = list(dict.fromkeys(previous + kept))
    if stored != previous:
        project.set_meta(HELDOUT_AUTO_META, stored)
    return sorted(kept)


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
    semi = config.train.mode == "semi"
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
    gen = train(labeled, unlabeled, config.train, checkpoint_path=tmp, init=init,
                validation=validation, cancel=cancel, round_index=r,
                extra_metadata={"model_version": version})
    result = None
    moved = False
    try:
        while True:
            try:
                ev = next(gen)
            except StopIteration as stop:
                result = stop.value
                break
            if not isinstance(ev, CheckpointEvent):  # the final one is re-emitted below
                yield ev
        if result is None or result.cancelled or result.checkpoint is None:
            yield MessageEvent(f"round {r} cancelled: the previous model is kept")
            return None
        os.replace(tmp, final)
        fsync_dir(final.parent)
        moved = True
    finally:
        gen.close()
        if not moved:
            with contextlib.suppress(OSError):
                tmp.unlink()
    train_seconds = time.perf_counter() - t_train
    metrics = {k: float(v) for k, v in result.metrics.items()}
    project.add_model(version, final, round=r, metrics=metrics)
    trained = list(project.get_meta(TRAINED_META) or [])
    project.set_meta(TRAINED_META, list(dict.fromkeys(trained + [t.name for t in labeled])))
    yield CheckpointEvent(step=result.steps, path=final,
                          metadata={"round": r, "final": True, "model_version": version,
                                    "metrics": dict(metrics)})

    # ------------------------------------------------------------------ 4-5. score, rank
    from ..device import select_device
    from ..model import load_model

    t_score = time.perf_counter()
    model, _ = load_model(final, device=select_device(config.train.device))
    ranking = yield from iter_score_project(
        project, model, version, strategy=config.strategy, k=config.batch_size, seed=config.seed,
        mc_passes=config.mc_passes, suggest_threshold=config.suggest_threshold,
        store_probabilities=config.store_probabilities, embed_annotated=config.embed_annotated,
        profile=profile, cache=loaded, score_config=config.score, tile=config.tile,
        overlap=config.overlap, batch_size=config.infer_batch_size, cancel=cancel)
    if ranking is None:
        yield MessageEvent(f"scoring cancelled: model {version} is registered, the queue "
                           "was not re-ranked")
        return None
    finished = RoundFinished(round_index=r, model_version=version, checkpoint=final,
                             metrics=metrics, ranking=ranking, train_seconds=train_seconds,
                             score_seconds=time.perf_counter() - t_score,
                             trained_on=[t.name for t in labeled],
                             heldout=[t.name for t in validation])
    yield finished
    return finished


