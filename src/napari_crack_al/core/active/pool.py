"""Scoring and ranking the pool of unlabeled images of a project (with or without a model).

:func:`iter_score_project` scores every unlabeled image with a trained model, stores
the scores, suggestions and probability maps, ranks the images with a strategy and
re-sorts the queue; :func:`iter_cold_start` ranks them without a model (k-medoids
on label-free features). :func:`load_images` and :func:`stored_scores` are
the helpers they share with :mod:`.round`, which re-exports these names.
"""

from __future__ import annotations

import time
from dataclasses import replace
from collections.abc import Generator, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import InputError, MaskError
from ..events import CancelToken, MessageEvent, ProgressEvent
from ..distributed import shard
from .candidates import candidate_set, scoring_order
from .embeddings import iter_label_free_embeddings, save_embeddings
from .next_suggestions import iter_suggest_next
from .probability import write_probability
from .scores import ImageScores, ScoreConfig
from .scoring import iter_score_images, scores_by_kind
from .strategies import (
    DIVERSITY_STRATEGIES,
    SCORE_STRATEGIES,
    MissingScoresError,
    get_strategy,
    unlabeled_candidates,
    with_random_share,
)

__all__ = [
    "COLD_START_VERSION",
    "load_images",
    "lazy_project_images",
    "stored_scores",
    "iter_score_project",
    "iter_cold_start",
]

COLD_START_VERSION = "cold-start"


def load_images(project: Any, names: Sequence[str], *, masks: dict[str, np.ndarray] | None = None,
                profile: str = "none") -> Iterator[tuple[str, Any]]:
    """Read and normalise project images lazily: ``(name, TrainingImage or InputError)``."""
    from ..io.range_io import read_range_image
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


def lazy_project_images(project: Any, names: Sequence[str], *, profile: str = "none",
                        cache_bytes: int) -> Any:
    """Unlabelled project images read when a training batch draws them (bounded cache).

    Returns
    -------
    LazyImages
        ``names`` in order; an unreadable image is listed in its ``failed``.
    """
    from ..training.lazy_images import LazyImages

    def load(name: str) -> Any:
        _, item = next(load_images(project, [name], profile=profile))
        if isinstance(item, InputError):
            raise item
        return item

    return LazyImages(names, load, cache_bytes=cache_bytes)


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
                mark = getattr(project, "mark_unreadable", None)
                if mark is not None and not isinstance(item, MaskError):  # the image itself
                    mark(name, item.problem)
            else:
                yield item


def _rank_or_keep(strat: Any, pending: list[str], scores: Any, embeddings: Any, k: int, seed: int,
                  unreadable: Sequence[str]) -> tuple[list[str], str | None]:
    """The strategy's ranking, or (when no waiting image could be scored or embedded, e.g.
    every one failed to load) the current queue order with the reason, naming the files."""
    try:
        return strat.rank(pending, scores, embeddings, k, seed), None
    except MissingScoresError:
        shown = "; ".join(list(unreadable)[:3]) + ("; ..." if len(unreadable) > 3 else "")
        why = (f"{len(unreadable)} image(s) could not be read: {shown}" if unreadable
               else "the model gave them no score")
        return list(pending), (f"none of the {len(pending)} waiting image(s) could be ranked "
                               f"({why}); the queue keeps its order")


def iter_score_project(project: Any, model: Any, model_version: str, *, strategy: str = "hybrid",
                       k: int = 5, seed: int = 0, names: Sequence[str] | None = None,
                       student: Any = None, mc_passes: int = 0, suggest_threshold: float = 0.5,
                       write_suggestions: bool = True, store_probabilities: bool = True,
                       embed_annotated: bool = True, profile: str = "none",
                       cache: dict[str, Any] | None = None, score_config: ScoreConfig | None = None,
                       tile: int = 512, overlap: int = 64, batch_size: int = 4, device: Any = None,
                       random_share: float = 0.0, max_candidates: int = 0,
                       score_seconds: float | None = None, suggest_next: int | None = None,
                       distributed: Any = None,
                       cancel: CancelToken | None = None) -> Generator[Any, None, list[str] | None]:
    """Score the unlabeled images with ``model``, store everything, rank, re-sort the queue.

    With ``max_candidates`` > 0 at most that many waiting images are scored
    (:func:`~.candidates.candidate_set`: never-scored ones, the top of the queue, a random
    share); the others keep their stored scores and follow the ranked ones in their
    previous order. With ``score_seconds``, no new image is started once scoring has
    taken that long and at least ``2 * k`` images are scored; the candidates are reached
    in :func:`~.candidates.scoring_order` (the next images of the queue first, then the
    never-scored ones), and the rest keep their scores and places as above.

    With ``suggest_next``, no suggestion or probability map is written while scoring:
    after the ranking, the first ``suggest_next`` images of the queue are predicted and
    get theirs (:func:`~.next_suggestions.iter_suggest_next`); the others keep what
    they have (an image opened without a current suggestion gets one in the background).
    With ``distributed`` (several ranks started by ``torchrun``), each rank scores its
    share of the candidates; rank 0 gathers the scores and embeddings, stores them,
    ranks and writes the suggestions of the next images (the other ranks only read the
    project and return None).

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
    from ..distributed import SINGLE

    dist = distributed or SINGLE
    strat = get_strategy(strategy)
    candidates = list(names) if names is not None else candidate_set(project, max_candidates,
                                                                     seed=seed)
    if score_seconds is not None:
        candidates = scoring_order(project, candidates, k)
    candidates = dist.share(candidates)  # rank 0's list: the shards never overlap
    mine = shard(candidates, dist)
    reached: list[str] = []
    if score_seconds is not None:
        at_least = -(-2 * k // dist.world_size)
        names_in_time: Iterable[str] = _within_seconds(mine, score_seconds, at_least, reached)
    else:
        names_in_time = reached = mine
    skipped: list[str] = []
    common = dict(config=score_config, tile=tile, overlap=overlap, batch_size=batch_size,
                  device=device, cancel=cancel)
    later = suggest_next is not None or dist.active  # the files of the next images only
    results, embeddings = yield from _iter_score_candidates(
        project, model, model_version, _cached_images(project, names_in_time, cache, profile,
                                                      skipped),
        len(mine), skipped, suggest_threshold=suggest_threshold,
        write_suggestions=write_suggestions and not later,
        store_probabilities=store_probabilities and not later,
        score_kwargs=dict(student=student, mc_passes=mc_passes, seed=seed, **common))
    if dist.active:
        results, embeddings, reached, skipped = _gathered(
            dist.gather((results, embeddings, list(reached), skipped)), candidates)
        if not dist.is_main:
            return None
    if cancel is not None and cancel.cancelled:
        return None
    if len(reached) < len(candidates):
        yield MessageEvent(f"scored {len(reached)} of {len(candidates)} candidate images in the "
                           f"scoring time of {score_seconds:.0f} s; the others keep their "
                           "scores and places")
        candidates = list(reached)
    for text in skipped:
        yield MessageEvent(f"skipped: {text}")
    _store_pool_scores(project, strat, strategy, model_version, results)

    if strategy in DIVERSITY_STRATEGIES and embed_annotated and embeddings:
        yield from _iter_embed_annotated(project, model, cache, profile, skipped, embeddings,
                                         common)
        if cancel is not None and cancel.cancelled:
            return None
    if embeddings:
        save_embeddings(project.state_dir, model_version, embeddings)
    ranking = yield from _iter_rank_pool(project, strat, strategy, model_version, candidates,
                                         embeddings, k=k, seed=seed, skipped=skipped,
                                         random_share=random_share)
    if later and (write_suggestions or store_probabilities):
        head = ranking[:len(ranking) if suggest_next is None else suggest_next]
        yield from iter_suggest_next(
            project, model, model_version, head, _cached_images(project, head, cache, profile, []),
            threshold=suggest_threshold, write_suggestions=write_suggestions,
            store_probabilities=store_probabilities, tile=tile, overlap=overlap,
            batch_size=batch_size, device=device, cancel=cancel)
    return ranking


def _gathered(parts: list[tuple], candidates: list[str]) -> tuple:
    """Every rank's (results, embeddings, reached, skipped) merged, in candidate order."""
    results: dict[str, ImageScores] = {}
    embeddings: dict[str, np.ndarray] = {}
    reached: set[str] = set()
    skipped: list[str] = []
    for r, e, done, s in parts:
        results.update(r)
        embeddings.update(e)
        reached.update(done)
        skipped.extend(s)
    return results, embeddings, [n for n in candidates if n in reached], skipped


def _within_seconds(names: Sequence[str], seconds: float, at_least: int,
                    reached: list[str]) -> Iterator[str]:
    """``names`` one by one until ``seconds`` have passed and ``at_least`` were given.

    The time runs from the first name; each name given is appended to ``reached``.
    """
    t0 = time.perf_counter()
    for name in names:
        if len(reached) >= at_least and time.perf_counter() - t0 >= seconds:
            return
        reached.append(name)
        yield name


def _iter_score_candidates(project: Any, model: Any, model_version: str, images: Iterator[Any],
                           total: int, skipped: list[str], *, suggest_threshold: float,
                           write_suggestions: bool, store_probabilities: bool,
                           score_kwargs: dict[str, Any],
                           ) -> Generator[Any, None,
                                          tuple[dict[str, ImageScores], dict[str, np.ndarray]]]:
    """Score the candidate images, storing each one's suggestion and probability map.

    Parameters
    ----------
    project, model, model_version
        As in :func:`iter_score_project`.
    images : iterator
        The candidate images (:func:`_cached_images`).
    total : int
        Number of candidates (for the progress events).
    skipped : list of str
        Gets one line per image whose suggestion could not be stored.
    suggest_threshold, write_suggestions, store_probabilities
        As in :func:`iter_score_project`.
    score_kwargs : dict
        Keyword arguments of :func:`~.scoring.iter_score_images`.

    Yields
    ------
    ProgressEvent
        Those of :func:`~.scoring.iter_score_images`.

    Returns
    -------
    tuple of dict
        ``{name: ImageScores}`` and ``{name: embedding}`` of the scored images.
    """
    results: dict[str, ImageScores] = {}
    embeddings: dict[str, np.ndarray] = {}
    for ev in iter_score_images(model, images, total=total, **score_kwargs):
        if isinstance(ev, ImageScores):
            if ev.embedding is not None:
                embeddings[ev.name] = ev.embedding
            try:  # one image that cannot be written must not abort the pool
                if write_suggestions:
                    project.set_suggestion(ev.name, ev.probability > suggest_threshold,
                                           model_version)
                if store_probabilities:
                    write_probability(project, ev.name, ev.probability)
            except (InputError, OSError) as exc:
                skipped.append(f"{ev.name}: its suggestion could not be stored ({exc})")
            results[ev.name] = replace(ev, probability=None)  # memory: scores only
        else:
            yield ev
    return results, embeddings


def _store_pool_scores(project: Any, strat: Any, strategy: str, model_version: str,
                       results: dict[str, ImageScores]) -> None:
    """Store every score kind with ``model_version``, the strategy's kind also as ``"score"``.

    Parameters
    ----------
    project : Project
        The project.
    strat : Strategy
        The strategy object (its ``kind``, when it has one, is the primary score).
    strategy : str
        The strategy's name.
    model_version : str
        Version the scores are stored with.
    results : dict of str to ImageScores
        The scored images.
    """
    by_kind = scores_by_kind(results)
    for kind, values in sorted(by_kind.items()):
        project.set_scores(values, model_version, kind=kind)
    primary = getattr(strat, "kind", None) or SCORE_STRATEGIES.get(strategy, "crack_entropy")
    if primary in by_kind:
        project.set_scores(by_kind[primary], model_version, kind="score")


def _iter_embed_annotated(project: Any, model: Any, cache: dict[str, Any] | None, profile: str,
                          skipped: list[str], embeddings: dict[str, np.ndarray],
                          common: dict[str, Any]) -> Generator[ProgressEvent, None, None]:
    """Add the embeddings of the annotated images (the covered centers of diversity strategies).

    Parameters
    ----------
    project, model, cache, profile
        As in :func:`iter_score_project`.
    skipped : list of str
        Gets the images that could not be read.
    embeddings : dict of str to ndarray
        Updated in place.
    common : dict
        Keyword arguments of :func:`~.scoring.iter_score_images`.

    Yields
    ------
    ProgressEvent
        ``"embedding annotated"`` progress.
    """
    from ..project import ImageStatus

    annotated = [r.name for r in project.records() if r.status == ImageStatus.ANNOTATED]
    for ev in iter_score_images(model, _cached_images(project, annotated, cache, profile,
                                                      skipped),
                                total=len(annotated), **common):
        if isinstance(ev, ImageScores):
            if ev.embedding is not None:
                embeddings[ev.name] = ev.embedding
        else:
            yield ProgressEvent(ev.done, ev.total, "embedding annotated")


def _iter_rank_pool(project: Any, strat: Any, strategy: str, model_version: str,
                    candidates: list[str], embeddings: dict[str, np.ndarray], *, k: int,
                    seed: int, skipped: list[str], random_share: float,
                    ) -> Generator[MessageEvent, None, list[str]]:
    """Rank the waiting candidates from the stored scores and re-sort the queue.

    Images annotated meanwhile are left out; waiting images not scored this round
    follow the ranked ones in their previous order.

    Parameters
    ----------
    project, strategy, model_version, k, seed, random_share
        As in :func:`iter_score_project`.
    strat : Strategy
        The strategy object.
    candidates : list of str
        The images scored this round.
    embeddings : dict of str to ndarray
        Embeddings for the diversity strategies (empty: none).
    skipped : list of str
        The images that could not be read (named when nothing could be ranked).

    Yields
    ------
    MessageEvent
        Why the queue keeps its order, when nothing could be ranked (then the queue
        is not re-sorted).

    Returns
    -------
    list of str
        The ranking.
    """
    waiting = unlabeled_candidates(project)  # images annotated meanwhile are left out
    scored = set(candidates)
    pending = [n for n in waiting if n in scored]
    left_out = [n for n in waiting if n not in scored]  # not scored this round: previous order
    ranking, problem = _rank_or_keep(strat, pending, stored_scores(project, model_version),
                                     embeddings or None, k, seed, skipped)
    if problem is not None:
        yield MessageEvent(problem)
        return ranking + left_out  # the queue keeps its order
    if random_share > 0 and strategy != "random":
        ranking = with_random_share(ranking, k, random_share, seed)
    ranking = ranking + left_out
    project.set_queue_order(ranking)
    return ranking


def iter_cold_start(project: Any, *, k: int = 5, seed: int = 0, profile: str = "none",
                    cancel: CancelToken | None = None) -> Generator[Any, None, list[str] | None]:
    """Rank the unlabeled images without a model: representatives (k-medoids) of label-free features.

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
    if not vectors:
        ranking, problem = sorted(candidates), None
    else:
        ranking, problem = _rank_or_keep(get_strategy("kmedoids"), candidates, {}, vectors, k,
                                         seed, skipped)
    if problem is not None:
        yield MessageEvent(problem)
        return ranking
    project.set_queue_order(ranking)
    return ranking
