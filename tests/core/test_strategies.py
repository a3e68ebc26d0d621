"""Selection strategies: exact rankings on hand-made scores and embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from napari_crack_al.core.active.strategies import (
    STRATEGY_NAMES,
    HybridStrategy,
    KMedoidsStrategy,
    with_random_share,
    MissingScoresError,
    Strategy,
    get_strategy,
    unlabeled_candidates,
)
from napari_crack_al.core.errors import ConfigError

CANDIDATES = ["a", "b", "c", "d", "e"]
KINDS = ("entropy", "crack_entropy", "topk_entropy", "margin", "least_confidence", "bald",
         "disagreement")
_TABLE = {  # entropy, crack, topk, margin, lc, bald, disagreement (None = not stored)
    "a": (0.30, 0.10, 0.50, 0.20, 0.40, 0.01, 0.5),
    "b": (0.10, 0.60, 0.90, 0.70, 0.10, 0.30, 0.1),
    "c": (0.20, 0.60, 0.20, 0.10, 0.30, 0.20, None),
    "d": (0.40, 0.30, 0.70, 0.40, 0.20, 0.05, 0.9),
    "e": (0.05, 0.05, 0.05, 0.05, 0.05, None, None),
    "z": (0.99, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99),  # annotated: not a candidate
}
SCORES = {n: {k: v for k, v in zip(KINDS, row) if v is not None} for n, row in _TABLE.items()}
#: b and c are near-copies; the rest are far apart.
EMB = {"a": [10, 0], "b": [0, 0], "c": [0.05, 0], "d": [0, 10], "e": [10, 10]}
EMB = {n: np.asarray(v, np.float32) for n, v in EMB.items()}
EMB_Z = {**EMB, "z": np.asarray([0, 10.5], np.float32)}  # an annotated image next to d

EXPECTED = {
    "entropy": ["d", "a", "c", "b", "e"],
    "crack_entropy": ["b", "c", "d", "a", "e"],          # b/c tie: by name
    "topk_entropy": ["b", "d", "a", "c", "e"],
    "margin": ["b", "d", "a", "c", "e"],
    "least_confidence": ["a", "c", "d", "b", "e"],
    "bald": ["b", "c", "d", "a", "e"],                   # e has no BALD score: last
    "disagreement": ["d", "a", "b", "c", "e"],           # c, e unscored: last, by name
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_score_strategies_exact_order(name):
    strategy = get_strategy(name)
    assert isinstance(strategy, Strategy)
    assert strategy.rank(CANDIDATES, SCORES, None, 2, 0) == EXPECTED[name]
    # input order and seed do not matter; annotated "z" never appears
    assert strategy.rank(CANDIDATES[::-1], SCORES, EMB, 2, 7) == EXPECTED[name]


def test_random_strategy_seeded():
    s = get_strategy("random")
    r0 = s.rank(CANDIDATES[::-1], SCORES, None, 2, 0)
    expected = [sorted(CANDIDATES)[i] for i in np.random.default_rng(0).permutation(5)]
    assert r0 == expected
    assert s.rank(CANDIDATES, {}, None, 2, 0) == r0            # needs no scores
    assert sorted(r0) == CANDIDATES
    assert len({tuple(s.rank(CANDIDATES, {}, None, 2, seed)) for seed in range(6)}) > 1


def test_kcenter_strategy_exact_order():
    s = get_strategy("kcenter")
    # first the image closest to the mean (c), then farthest-first; b (copy of c) last
    assert s.rank(CANDIDATES, {}, EMB, 2, 0) == ["c", "e", "d", "a", "b"]
    # with the annotated z next to d: d comes late, the b/c pair is split
    assert s.rank(CANDIDATES, {}, EMB_Z, 2, 0) == ["a", "b", "e", "d", "c"]
    # a candidate without an embedding is ranked last
    partial = {n: v for n, v in EMB.items() if n != "e"}
    assert s.rank(CANDIDATES, {}, partial, 2, 0)[-1] == "e"
    with pytest.raises(MissingScoresError):
        s.rank(CANDIDATES, SCORES, None, 2, 0)


def test_hybrid_strategy_exact_order():
    assert get_strategy("hybrid").kind == "topk_entropy"  # not blind to missed cracks
    s = HybridStrategy(kind="crack_entropy")
    # pool = top 3k = all five; first pick the most uncertain (b), then the farthest: e
    assert s.rank(CANDIDATES, SCORES, EMB, 2, 0) == ["b", "e", "c", "d", "a"]
    # pool of 2k = b, c, d, a: the near-copy c is skipped for d, then by crack_entropy
    assert HybridStrategy(kind="crack_entropy", pool_factor=2).rank(CANDIDATES, SCORES, EMB, 2, 0) == \
        ["b", "d", "c", "a", "e"]
    # an annotated image near d: start from the candidate farthest from it
    assert s.rank(CANDIDATES, SCORES, EMB_Z, 2, 0) == ["a", "b", "c", "d", "e"]
    # k = 1: pool of 3 (b, c, d), one pick: the most uncertain
    assert s.rank(CANDIDATES, SCORES, EMB, 1, 0) == EXPECTED["crack_entropy"]
    # no embeddings: plain uncertainty
    assert s.rank(CANDIDATES, SCORES, None, 2, 0) == EXPECTED["crack_entropy"]


def test_every_strategy_is_deterministic_and_a_full_ranking():
    for name in STRATEGY_NAMES:
        s = get_strategy(name)
        a = s.rank(CANDIDATES, SCORES, EMB_Z, 3, 5)
        assert a == s.rank(list(reversed(CANDIDATES)), SCORES, EMB_Z, 3, 5), name
        assert sorted(a) == CANDIDATES, name
        assert s.rank([], SCORES, EMB_Z, 3, 5) == [], name


def test_missing_scores_and_unknown_strategy():
    with pytest.raises(MissingScoresError, match="bald"):
        get_strategy("bald").rank(["e"], SCORES, None, 1, 0)
    with pytest.raises(ConfigError) as info:
        get_strategy("uncertainty")
    for name in STRATEGY_NAMES:
        assert name in str(info.value)
    with pytest.raises(ConfigError):
        get_strategy("entropy").rank(CANDIDATES, SCORES, None, -1, 0)


def test_unlabeled_candidates_exclude_annotated_and_skipped(tmp_path):
    from napari_crack_al.core.project import Project
    from napari_crack_al.core.sample_project import write_sample_images

    write_sample_images(tmp_path, n=4, size=64, seed=0)
    with Project.create(tmp_path) as project:
        names = project.names()
        project.accept(names[0], np.zeros((64, 64), bool))
        project.skip(names[1])
        project.set_suggestion(names[2], np.zeros((64, 64), bool), "m1")
        assert unlabeled_candidates(project) == [names[2], names[3]]
        ranking = get_strategy("entropy").rank(
            unlabeled_candidates(project), {n: {"entropy": float(i)} for i, n in enumerate(names)},
            None, 1, 0)
        assert ranking == [names[3], names[2]]


def test_an_image_with_a_missed_crack_ranks_above_a_crack_free_one():
    """The model sees the crack only faintly (p < 0.1): it is the image most worth labelling."""
    from napari_crack_al.core.active.scores import uncertainty_scores

    clean = np.full((64, 64), 0.002, np.float32)
    missed = clean.copy()
    missed[10:54, 30:32] = 0.06  # a crack the model almost entirely misses
    s_clean, s_missed = uncertainty_scores(clean), uncertainty_scores(missed)
    assert s_clean["crack_entropy"] == s_missed["crack_entropy"] == 0.0  # blind to it
    assert s_missed["topk_entropy"] > 5 * s_clean["topk_entropy"]
    scores = {"clean": s_clean, "missed": s_missed}
    emb = {"clean": np.zeros(2), "missed": np.ones(2)}
    assert get_strategy("hybrid").rank(["clean", "missed"], scores, emb, 1, 0)[0] == "missed"


def test_cold_start_picks_one_image_per_cluster():
    """Three clusters and one outlier: the medoids are one typical image of each cluster."""
    rng = np.random.default_rng(0)
    centres = {"a": (0, 0), "b": (10, 0), "c": (0, 10)}
    emb = {}
    for key, (x, y) in centres.items():
        for i in range(5):
            emb[f"{key}{i}"] = np.asarray([x, y]) + rng.normal(0, 0.3, 2)
    emb["outlier"] = np.asarray([20.0, 20.0])  # farther than anything, cheaper to leave out
    names = sorted(emb)
    for seed in range(5):
        ranking = KMedoidsStrategy().rank(names, {}, emb, 3, seed)
        assert sorted(n[0] for n in ranking[:3]) == ["a", "b", "c"], (seed, ranking)
        assert sorted(ranking) == names
    # farthest-first starts from the centre and goes for the outlier
    assert "outlier" in get_strategy("kcenter").rank(names, {}, emb, 3, 0)[:2]


def test_a_random_share_of_every_batch():
    ranking = [f"i{n:02d}" for n in range(20)]
    mixed = with_random_share(ranking, 5, 0.2, seed=3)
    assert mixed[:4] == ranking[:4]  # the strategy's first four stay
    assert mixed[4] not in ranking[:5]  # the fifth is drawn from the rest
    assert sorted(mixed) == sorted(ranking)
    assert mixed == with_random_share(ranking, 5, 0.2, seed=3)
    assert with_random_share(ranking, 5, 0.0, seed=3) == ranking
    assert with_random_share(ranking, 2, 0.2, seed=3) == ranking  # 0.4 rounds to no random place
    with pytest.raises(ConfigError):
        with_random_share(ranking, 5, 1.5, seed=3)
