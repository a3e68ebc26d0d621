"""Selection strategies: rank the unlabeled images from STORED scores (and embeddings).

Scoring (:mod:`.scores`) and selection are separate: a strategy never runs a model.
It gets the candidate names, the stored scores ``{name: {kind: value}}`` (higher =
more informative) and, for the diversity strategies, embeddings ``{name: vector}``,
and returns the FULL ranking of the candidates; the first ``k`` are the suggested
batch. Rankings are deterministic for a seed, and ties are broken by name.

Candidates without the needed score (e.g. images added after the last scoring) are
ranked after the scored ones, by name. If no candidate has it, the strategy raises
:class:`MissingScoresError`.

Embeddings of names that are *not* candidates (the annotated images) count as
already covered centers for the k-center diversity.

numpy only (no torch).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import ConfigError, CrackALError
from .diversity import k_center_greedy, k_medoids

__all__ = [
    "STRATEGY_NAMES",
    "Strategy",
    "MissingScoresError",
    "ScoreStrategy",
    "RandomStrategy",
    "KCenterStrategy",
    "KMedoidsStrategy",
    "HybridStrategy",
    "get_strategy",
    "with_random_share",
    "unlabeled_candidates",
]

log = logging.getLogger(__name__)

#: Strategy name -> score kind it sorts by (the uncertainty strategies).
SCORE_STRATEGIES: dict[str, str] = {
    "entropy": "entropy",
    "crack_entropy": "crack_entropy",
    "topk_entropy": "topk_entropy",
    "margin": "margin",
    "least_confidence": "least_confidence",
    "bald": "bald",
    "disagreement": "disagreement",
}
#: Every valid strategy name.
STRATEGY_NAMES: tuple[str, ...] = ("random", *SCORE_STRATEGIES, "kcenter", "kmedoids", "hybrid")
#: Strategies that use embeddings.
DIVERSITY_STRATEGIES = ("kcenter", "kmedoids", "hybrid")


class MissingScoresError(CrackALError, ValueError):
    """A strategy needs scores or embeddings that are not stored for any candidate."""


@runtime_checkable
class Strategy(Protocol):
    """Ranks candidate images."""

    name: str

    def rank(self, candidates: Sequence[str], scores: Mapping[str, Mapping[str, float]],
             embeddings: Mapping[str, np.ndarray] | None, k: int, seed: int) -> list[str]:
        """Full ranking of ``candidates``; the first ``k`` are the suggested batch."""
        ...


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ConfigError(f"k (batch size) must be an integer >= 0, got {k!r}")
    return int(k)


def _unique(candidates: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(str(c) for c in candidates))


def _by_score(candidates: Sequence[str], scores: Mapping[str, Mapping[str, float]],
              kind: str, strategy: str) -> tuple[list[str], list[str]]:
    """(scored names sorted by descending score then name, unscored names sorted)."""
    scored = [(float(scores[c][kind]), c) for c in candidates
              if c in scores and kind in scores[c] and np.isfinite(scores[c][kind])]
    if candidates and not scored:
        raise MissingScoresError(
            f"the {strategy!r} ranking needs the model's {kind!r} score of each waiting image, "
            f"and none of the {len(candidates)} has one (a round computes it"
            + (", with MC-dropout passes" if kind == "bald" else "")
            + (", with a student model" if kind == "disagreement" else "") + ")")
    have = {c for _, c in scored}
    ranked = [c for _, c in sorted(scored, key=lambda t: (-t[0], t[1]))]
    rest = sorted(c for c in candidates if c not in have)
    if rest:
        log.info("%d candidate(s) have no %r score and are ranked last", len(rest), kind)
    return ranked, rest


@dataclass(frozen=True)
class ScoreStrategy:
    """Most uncertain first: descending ``scores[name][kind]``, ties by name."""

    name: str
    kind: str

    def rank(self, candidates: Sequence[str], scores: Mapping[str, Mapping[str, float]],
             embeddings: Mapping[str, np.ndarray] | None, k: int, seed: int) -> list[str]:
        """See :class:`Strategy`."""
        _check_k(k)
        ranked, rest = _by_score(_unique(candidates), scores, self.kind, self.name)
        return ranked + rest


@dataclass(frozen=True)
class RandomStrategy:
    """Random order (the baseline), from ``numpy.random.default_rng(seed)`` over sorted names."""

    name: str = "random"

    def rank(self, candidates: Sequence[str], scores: Mapping[str, Mapping[str, float]],
             embeddings: Mapping[str, np.ndarray] | None, k: int, seed: int) -> list[str]:
        """See :class:`Strategy`."""
        _check_k(k)
        names = sorted(_unique(candidates))
        order = np.random.default_rng(seed).permutation(len(names))
        return [names[i] for i in order]


def _split_embedded(candidates: Sequence[str], embeddings: Mapping[str, np.ndarray] | None,
                    strategy: str) -> tuple[list[str], np.ndarray, np.ndarray | None, list[str]]:
    """(embedded candidates sorted by name, their points, centers of non-candidates, rest)."""
    if not embeddings:
        raise MissingScoresError(f"the {strategy!r} ranking needs the model's features of the "
                                 "images, and none were computed")
    cand = set(candidates)
    embedded = sorted(c for c in candidates if c in embeddings)
    if candidates and not embedded:
        raise MissingScoresError(f"the {strategy!r} ranking needs the model's features of each "
                                 f"waiting image, and none of the {len(candidates)} has them")
    pts = np.stack([np.asarray(embeddings[c], np.float64) for c in embedded]) if embedded \
        else np.zeros((0, 1))
    others = sorted(n for n in embeddings if n not in cand)
    centers = np.stack([np.asarray(embeddings[n], np.float64) for n in others]) if others else None
    rest = sorted(c for c in candidates if c not in embeddings)
    return embedded, pts, centers, rest


@dataclass(frozen=True)
class KCenterStrategy:
    """Diversity only: the full farthest-first (k-center greedy) order of the embeddings.

    Used for the cold start (label-free features) and as a pure diversity baseline.
    Annotated images present in ``embeddings`` are covered centers.
    """

    name: str = "kcenter"

    def rank(self, candidates: Sequence[str], scores: Mapping[str, Mapping[str, float]],
             embeddings: Mapping[str, np.ndarray] | None, k: int, seed: int) -> list[str]:
        """See :class:`Strategy`."""
        _check_k(k)
        cands = _unique(candidates)
        if not cands:
            return []
        embedded, pts, centers, rest = _split_embedded(cands, embeddings, self.name)
        order = k_center_greedy(pts, None, centers=centers)
        return [embedded[i] for i in order] + rest


@dataclass(frozen=True)
class KMedoidsStrategy:
    """Representatives first: the medoids of ``k`` clusters of the embeddings, then the rest.

    The cold start of a project: farthest-first (:class:`KCenterStrategy`) picks the
    outliers of the label-free features; the medoids are typical images of ``k``
    regions of the data, largest region first. The candidates after the medoids follow
    in farthest-first order from them. Deterministic for a seed.
    """

    name: str = "kmedoids"

    def rank(self, candidates: Sequence[str], scores: Mapping[str, Mapping[str, float]],
             embeddings: Mapping[str, np.ndarray] | None, k: int, seed: int) -> list[str]:
        """See :class:`Strategy`."""
        k = _check_k(k)
        cands = _unique(candidates)
        if not cands:
            return []
        embedded, pts, centers, rest = _split_embedded(cands, embeddings, self.name)
        medoids = k_medoids(pts, k, seed=seed) if k else []
        chosen = np.concatenate([pts[medoids], centers]) if centers is not None and medoids \
            else (pts[medoids] if medoids else centers)
        others = [i for i in range(len(embedded)) if i not in set(medoids)]
        order = k_center_greedy(pts[others], None, centers=chosen) if others else []
        return [embedded[i] for i in medoids] + [embedded[others[i]] for i in order] + rest


@dataclass(frozen=True)
class HybridStrategy:
    """Uncertainty, then diversity inside the most uncertain candidates.

    The ``pool_factor * k`` candidates with the highest ``kind`` score are taken; k-center
    greedy picks ``k`` of them (starting from the most uncertain one when no annotated
    image is embedded, else from the one farthest from the annotated images). The rest
    follow by descending score. Without embeddings it falls back to the score ranking.
    """

    name: str = "hybrid"
    kind: str = "topk_entropy"
    pool_factor: int = 3

    def rank(self, candidates: Sequence[str], scores: Mapping[str, Mapping[str, float]],
             embeddings: Mapping[str, np.ndarray] | None, k: int, seed: int) -> list[str]:
        """See :class:`Strategy`."""
        k = _check_k(k)
        ranked, rest = _by_score(_unique(candidates), scores, self.kind, self.name)
        m = min(len(ranked), self.pool_factor * k)
        top = ranked[:m]
        if k == 0 or m == 0:
            return ranked + rest
        if not embeddings or any(c not in embeddings for c in top):
            log.warning("hybrid strategy: embeddings missing for some of the top candidates; "
                        "ranking by %s only", self.kind)
            return ranked + rest
        pts = np.stack([np.asarray(embeddings[c], np.float64) for c in top])
        cand = set(ranked) | set(rest)
        others = sorted(n for n in embeddings if n not in cand)
        centers = np.stack([np.asarray(embeddings[n], np.float64) for n in others]) \
            if others else None
        picks = k_center_greedy(pts, k, centers=centers, first=0)
        chosen = [top[i] for i in picks]
        taken = set(chosen)
        return chosen + [c for c in ranked if c not in taken] + rest


def get_strategy(name: str) -> Strategy:
    """The strategy called ``name``.

    Raises
    ------
    ConfigError
        For an unknown name; the message lists the valid names.
    """
    if name in SCORE_STRATEGIES:
        return ScoreStrategy(name=name, kind=SCORE_STRATEGIES[name])
    if name == "random":
        return RandomStrategy()
    if name == "kcenter":
        return KCenterStrategy()
    if name == "kmedoids":
        return KMedoidsStrategy()
    if name == "hybrid":
        return HybridStrategy()
    raise ConfigError(f"unknown strategy {name!r}; valid strategies: {', '.join(STRATEGY_NAMES)}")


def with_random_share(ranking: Sequence[str], k: int, share: float, seed: int) -> list[str]:
    """The ranking with ``round(k * share)`` of its first ``k`` places given to random images.

    The strategy's choices keep the first places; the last places of the batch go to
    images drawn at random from the rest of the ranking, so that a region of the data
    the scores never favour is still visited now and then (the selection never
    starves it). Deterministic for a ``seed``.

    Parameters
    ----------
    ranking : sequence of str
        A strategy's full ranking.
    k : int
        Size of the suggested batch.
    share : float
        Share of the batch drawn at random, in [0, 1].
    seed : int
        Seed of the draw.
    """
    k = _check_k(k)
    if not 0.0 <= float(share) <= 1.0:
        raise ConfigError(f"random share must be in [0, 1], got {share!r}")
    ranking = list(ranking)
    n_random = min(int(k * float(share) + 0.5), max(0, len(ranking) - min(k, len(ranking))))
    if n_random == 0 or k == 0:
        return ranking
    keep = ranking[:k - n_random]
    pool = ranking[k - n_random:]
    picks = np.random.default_rng(seed).choice(len(pool), size=n_random, replace=False)
    drawn = [pool[i] for i in sorted(int(p) for p in picks)]
    taken = set(keep) | set(drawn)
    return keep + drawn + [n for n in ranking if n not in taken]


def unlabeled_candidates(project: Any) -> list[str]:
    """Names of the images that may be suggested (status new or suggested), in queue order.

    Annotated and skipped images are never candidates.
    """
    from ..project import ImageStatus

    pending = {ImageStatus.NEW, ImageStatus.SUGGESTED}
    return [r.name for r in project.records() if r.status in pending]
