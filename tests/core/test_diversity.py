"""k-center greedy and k-means++ seeding on hand-made 2-D points."""

from __future__ import annotations

import numpy as np
import pytest

from napari_crack_al.core.active.diversity import (
    k_center_greedy,
    kmeans_pp_init,
    pairwise_distances,
)
from napari_crack_al.core.errors import ConfigError

#: Three near-copies at the origin, three far corners and the centre.
POINTS = np.array([[0, 0], [0.1, 0], [0, 0.1], [10, 0], [0, 10], [10, 10], [5, 5]], float)


def test_pairwise_distances():
    d = pairwise_distances(POINTS[:2], POINTS[3:5])
    np.testing.assert_allclose(d, [[10, 10], [9.9, np.hypot(0.1, 10)]])


def test_k_center_greedy_full_order_puts_near_copies_last():
    # first: closest to the mean (the centre); then the farthest point, ties to the lowest index
    order = k_center_greedy(POINTS)
    assert order == [6, 0, 3, 4, 5, 1, 2]
    assert k_center_greedy(POINTS, 3) == [6, 0, 3]
    picks = k_center_greedy(POINTS, 4)
    assert len({tuple(POINTS[i]) for i in picks}) == 4
    assert sum(np.linalg.norm(POINTS[i]) < 1 for i in picks) == 1  # one near-copy at most


def test_k_center_greedy_with_existing_centers_and_first():
    # the origin is already annotated: its near-copies come last
    assert k_center_greedy(POINTS, centers=np.array([[0.0, 0.0]])) == [5, 3, 4, 6, 1, 2, 0]
    assert k_center_greedy(POINTS, 2, first=1) == [1, 5]
    assert k_center_greedy(POINTS, 0) == []
    assert k_center_greedy(POINTS, 99) == k_center_greedy(POINTS)


def test_k_center_greedy_covers_better_than_the_first_k():
    rng = np.random.default_rng(0)
    clusters = np.concatenate([rng.normal(c, 0.05, (20, 2)) for c in ([0, 0], [5, 0], [0, 5])])
    picks = k_center_greedy(clusters, 3)
    assert sorted(i // 20 for i in picks) == [0, 1, 2]  # one per cluster
    radius = pairwise_distances(clusters, clusters[picks]).min(axis=1).max()
    assert radius < 0.5


def test_k_center_greedy_validation():
    with pytest.raises(ConfigError):
        k_center_greedy(POINTS, -1)
    with pytest.raises(ValueError):
        k_center_greedy(POINTS[:, 0])
    with pytest.raises(ValueError):
        k_center_greedy(POINTS, 2, centers=np.zeros((1, 3)))


def test_kmeans_pp_init_deterministic_and_spread():
    rng = np.random.default_rng(1)
    clusters = np.concatenate([rng.normal(c, 0.01, (10, 2)) for c in ([0, 0], [9, 0], [0, 9])])
    for seed in range(5):
        picks = kmeans_pp_init(clusters, 3, seed=seed)
        assert picks == kmeans_pp_init(clusters, 3, seed=seed)
        assert sorted(i // 10 for i in picks) == [0, 1, 2]
    assert kmeans_pp_init(clusters, 3, seed=0) != kmeans_pp_init(clusters, 3, seed=1)
    same = np.zeros((4, 2))
    assert kmeans_pp_init(same, 4, seed=0)[1:] == sorted(kmeans_pp_init(same, 4, seed=0)[1:])
