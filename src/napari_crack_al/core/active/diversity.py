"""Diversity selection on embeddings: k-center greedy (farthest-first), k-means++ seeding, k-medoids.

k-center greedy picks, one at a time, the point farthest (Euclidean) from everything
chosen so far and from the existing ``centers`` (e.g. the embeddings of the images
already annotated), which approximately minimises the largest distance from any
point to its nearest chosen point (a 2-approximation of the k-center problem). It is
fully deterministic: the first point is the one closest to the mean of the pool
(the most typical image) unless given, and distance ties go to the lower index
(callers order points by image name).

:func:`kmeans_pp_init` is the seeded, randomised alternative (D² sampling); it is
deterministic for a seed. :func:`k_medoids` picks representatives rather than
outliers (the cold start of a project).
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import ConfigError

__all__ = ["pairwise_distances", "k_center_greedy", "kmeans_pp_init", "k_medoids"]

log = logging.getLogger(__name__)


def _as_points(points: np.ndarray, name: str = "points") -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (N, D), got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError(f"{name} hold NaN or inf values")
    return p


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances (len(a), len(b)) between the rows of two arrays."""
    a = _as_points(a, "a")
    b = _as_points(b, "b")
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(d2, 0.0))


def _distances_to(points: np.ndarray, center: np.ndarray) -> np.ndarray:
    return np.sqrt(((points - center[None, :]) ** 2).sum(axis=1))


def k_center_greedy(points: np.ndarray, k: int | None = None, *,
                    centers: np.ndarray | None = None, first: int | None = None) -> list[int]:
    """Farthest-first selection of ``k`` points.

    Parameters
    ----------
    points : ndarray
        (N, D) candidate points.
    k : int or None
        Number of points to pick (None or > N: all N, i.e. a full farthest-first order).
    centers : ndarray or None
        (M, D) points already covered (e.g. annotated images); the first pick is then
        the point farthest from them.
    first : int or None
        Index of the first pick when there are no ``centers`` (default: the point
        closest to the mean of ``points``).

    Returns
    -------
    list of int
        Indices into ``points`` in the order they were picked.
    """
    pts = _as_points(points)
    n = pts.shape[0]
    if k is None:
        k = n
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ConfigError(f"k must be an integer >= 0, got {k!r}")
    k = min(int(k), n)
    if k == 0:
        return []
    min_dist = np.full(n, np.inf)
    picked: list[int] = []
    taken = np.zeros(n, dtype=bool)
    if centers is not None and len(centers):
        c = _as_points(centers, "centers")
        if c.shape[1] != pts.shape[1]:
            raise ValueError(f"centers have {c.shape[1]} dimensions, points {pts.shape[1]}")
        min_dist = pairwise_distances(pts, c).min(axis=1)
    else:
        if first is None:
            first = int(np.argmin(_distances_to(pts, pts.mean(axis=0))))
        if not 0 <= first < n:
            raise ValueError(f"first must be an index in [0, {n}), got {first}")
        picked.append(int(first))
        taken[first] = True
        min_dist = _distances_to(pts, pts[first])
    while len(picked) < k:
        score = np.where(taken, -np.inf, min_dist)
        idx = int(np.argmax(score))  # ties: lowest index
        picked.append(idx)
        taken[idx] = True
        min_dist = np.minimum(min_dist, _distances_to(pts, pts[idx]))
    return picked


def kmeans_pp_init(points: np.ndarray, k: int, *, seed: int = 0) -> list[int]:
    """k-means++ seeding: indices of ``k`` points drawn with probability ∝ D².

    Deterministic for a ``seed``. The first point is drawn uniformly. When every
    remaining point coincides with a chosen one, the lowest remaining index is taken.

    Returns
    -------
    list of int
        Indices into ``points`` in the order they were drawn.
    """
    pts = _as_points(points)
    n = pts.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ConfigError(f"k must be an integer >= 0, got {k!r}")
    k = min(int(k), n)
    if k == 0:
        return []
    rng = np.random.default_rng(seed)
    picked = [int(rng.integers(n))]
    taken = np.zeros(n, dtype=bool)
    taken[picked[0]] = True
    d2 = _distances_to(pts, pts[picked[0]]) ** 2
    while len(picked) < k:
        w = np.where(taken, 0.0, d2)
        total = float(w.sum())
        if total > 0:
            idx = int(rng.choice(n, p=w / total))
        else:
            idx = int(np.flatnonzero(~taken)[0])
        picked.append(idx)
        taken[idx] = True
        d2 = np.minimum(d2, _distances_to(pts, pts[idx]) ** 2)
    return picked


def _medoid_alternation(dist: np.ndarray, medoids: list[int], iterations: int) -> list[int]:
    for _ in range(max(1, int(iterations))):
        assign = np.argmin(dist[:, medoids], axis=1)
        new = []
        for j in range(len(medoids)):
            members = np.flatnonzero(assign == j)
            if members.size == 0:
                new.append(medoids[j])
                continue
            cost = dist[np.ix_(members, members)].sum(axis=1)
            new.append(int(members[int(np.argmin(cost))]))  # ties: lowest index
        if new == medoids:
            break
        medoids = new
    return medoids


def k_medoids(points: np.ndarray, k: int, *, seed: int = 0, iterations: int = 20,
              restarts: int = 8) -> list[int]:
    """Representatives: the medoids of ``k`` clusters (k-means++ seeding, then alternation).

    Unlike farthest-first selection, which favours outliers, each medoid is the point
    with the smallest summed distance to the members of its cluster: a typical image of
    one region of the data. The alternation runs from ``restarts`` k-means++ seedings
    (seeds derived from ``seed``) and the solution of the smallest total distance is
    kept, so an outlier drawn as a seed does not spoil the result. Deterministic for a
    ``seed``.

    Parameters
    ----------
    points : ndarray
        (N, D) points.
    k : int
        Number of clusters (at most N).
    seed : int
        Seed of the k-means++ seedings.
    iterations : int
        Upper bound of assign / update alternations per seeding (stops when stable).
    restarts : int
        Number of seedings.

    Returns
    -------
    list of int
        The medoids' indices, largest cluster first (ties: lower index).
    """
    pts = _as_points(points)
    first = kmeans_pp_init(pts, k, seed=seed)
    if len(first) <= 1:
        return first
    dist = pairwise_distances(pts, pts)
    best, best_cost = first, np.inf
    for r in range(max(1, int(restarts))):
        start = first if r == 0 else kmeans_pp_init(pts, k, seed=seed * 7919 + r)
        medoids = _medoid_alternation(dist, start, iterations)
        cost = float(dist[:, medoids].min(axis=1).sum())
        if cost < best_cost - 1e-12:
            best, best_cost = medoids, cost
    sizes = np.bincount(np.argmin(dist[:, best], axis=1), minlength=len(best))
    order = sorted(range(len(best)), key=lambda j: (-int(sizes[j]), best[j]))
    return [best[j] for j in order]
