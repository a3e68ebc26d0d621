"""The candidate set a round scores: bounded, whatever the size of the pool.

Scoring every waiting image each round makes a round's cost grow with the pool (a
survey has thousands of images). A round scores at most ``limit`` of them: the images
never scored yet first, then the top of the previous ranking (the queue order), and a
random share of the rest, so that no image is starved of a fresh score. The others keep
their stored scores, marked with the model version that made them, and their place in
the queue after the ranked candidates.

numpy only; deterministic for a seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .strategies import unlabeled_candidates

__all__ = ["candidate_set", "scoring_order", "DEFAULT_MAX_CANDIDATES", "RANDOM_CANDIDATE_SHARE",
           "SCORE_TIME_SHARE"]

#: Waiting images scored per round at most (0: all).
DEFAULT_MAX_CANDIDATES = 400
#: Share of the candidate set drawn at random from the images it would leave out.
RANDOM_CANDIDATE_SHARE = 0.1
#: Scoring time of a round, as a share of its training time (RoundConfig.score_seconds=None).
SCORE_TIME_SHARE = 0.5


def candidate_set(project: Any, limit: int, *, seed: int = 0) -> list[str]:
    """The waiting images a round scores, in queue order.

    Parameters
    ----------
    project : Project
        Its waiting images (status new or suggested) are the pool; annotated and skipped
        images are never candidates.
    limit : int
        Largest candidate set; 0 (or a pool no larger) gives every waiting image.
    seed : int
        Seed of the random share.

    Returns
    -------
    list of str
        Never-scored images first (as many as fit), then the top of the queue, then a
        random share of the rest; listed in queue order.
    """
    pending = unlabeled_candidates(project)
    if limit <= 0 or len(pending) <= limit:
        return pending
    scored = {r.name for r in project.records() if r.score_model_version is not None}
    n_random = int(round(limit * RANDOM_CANDIDATE_SHARE))
    chosen: dict[str, None] = dict.fromkeys(
        [n for n in pending if n not in scored][:limit - n_random])
    for name in pending:  # the top of the previous ranking
        if len(chosen) >= limit - n_random:
            break
        chosen.setdefault(name)
    rest = [n for n in pending if n not in chosen]
    picks = np.random.default_rng(seed).permutation(len(rest))[:limit - len(chosen)]
    chosen.update(dict.fromkeys(rest[i] for i in picks.tolist()))
    return [n for n in pending if n in chosen]


def scoring_order(project: Any, candidates: list[str], k: int) -> list[str]:
    """The candidates in the order a time-bounded scoring reaches them.

    First the next ``2 * k`` images of the queue (the annotator opens them next, so they
    get fresh suggestions), then the images never scored, then the rest in queue order.

    Parameters
    ----------
    project : Project
        Its records say which images were ever scored.
    candidates : list of str
        The candidate set, in queue order (:func:`candidate_set`).
    k : int
        Images suggested per round.

    Returns
    -------
    list of str
        The same names, reordered.
    """
    head = candidates[:2 * max(1, k)]
    scored = {r.name for r in project.records() if r.score_model_version is not None}
    rest = candidates[len(head):]
    never = [n for n in rest if n not in scored]
    return head + never + [n for n in rest if n in scored]
