"""The bounded candidate set of a round, on hand-made records."""

from __future__ import annotations

from types import SimpleNamespace

from napari_crack_al.core.active.candidates import (
    RANDOM_CANDIDATE_SHARE,
    candidate_set,
    scoring_order,
)
from napari_crack_al.core.project import ImageStatus


class _Pool:
    """Records in queue order: status and the model version of the stored score."""

    def __init__(self, rows):
        self._records = [SimpleNamespace(name=n, status=s, score_model_version=v) for n, s, v in rows]

    def records(self):
        return list(self._records)


def _pool(n_scored=30, n_new=3, n_annotated=4, n_skipped=2) -> _Pool:
    rows = [(f"s{i:02d}", ImageStatus.SUGGESTED, "round-001") for i in range(n_scored)]
    rows += [(f"a{i}", ImageStatus.ANNOTATED, "round-001") for i in range(n_annotated)]
    rows += [(f"k{i}", ImageStatus.SKIPPED, None) for i in range(n_skipped)]
    rows += [(f"n{i}", ImageStatus.NEW, None) for i in range(n_new)]  # added last, never scored
    return _Pool(rows)


def test_bounded_and_never_scored_first():
    pool = _pool()
    chosen = candidate_set(pool, 10, seed=0)
    assert len(chosen) == 10
    assert {"n0", "n1", "n2"} <= set(chosen)  # never-scored images are included
    assert not any(n.startswith(("a", "k")) for n in chosen)  # annotated, skipped: never
    n_random = round(10 * RANDOM_CANDIDATE_SHARE)
    top = [n for n in chosen if n.startswith("s")][:10 - 3 - n_random]
    assert top == [f"s{i:02d}" for i in range(len(top))]  # the top of the previous ranking
    order = [r.name for r in pool.records()]
    assert chosen == sorted(chosen, key=order.index)  # in queue order


def test_deterministic_for_a_seed_and_the_random_share_varies_with_it():
    pool = _pool(n_scored=200)
    a, b = candidate_set(pool, 50, seed=1), candidate_set(pool, 50, seed=1)
    assert a == b
    others = {tuple(candidate_set(pool, 50, seed=s)) for s in range(5)}
    assert len(others) > 1  # the random share is drawn from the rest
    assert all(len(c) == 50 for c in others)


def test_small_pool_or_no_limit_gives_every_waiting_image():
    pool = _pool(n_scored=5)
    waiting = [r.name for r in pool.records() if r.status in (ImageStatus.NEW, ImageStatus.SUGGESTED)]
    assert candidate_set(pool, 0, seed=0) == waiting
    assert candidate_set(pool, 100, seed=0) == waiting


def test_scoring_order_puts_the_next_images_then_the_never_scored_first():
    pool = _pool(n_scored=10, n_new=3)
    chosen = candidate_set(pool, 0)
    order = scoring_order(pool, chosen, k=2)
    assert order[:4] == ["s00", "s01", "s02", "s03"]  # the next 2k of the queue
    assert order[4:7] == ["n0", "n1", "n2"]  # then the never-scored
    assert order[7:] == [f"s{i:02d}" for i in range(4, 10)]
    assert sorted(order) == sorted(chosen)


def test_a_scoring_time_stops_after_the_minimum_once_it_has_passed():
    from napari_crack_al.core.active.pool import _within_seconds

    reached: list[str] = []
    assert list(_within_seconds(list("abcdef"), 0.0, 2, reached)) == ["a", "b"]
    assert reached == ["a", "b"]
    reached = []
    assert list(_within_seconds(list("abc"), 3600.0, 1, reached)) == ["a", "b", "c"]
