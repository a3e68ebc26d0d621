"""run_round end to end on a tiny project: train, register, score, suggest, rank; cancel; cold
start; the ``rank`` command."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_crack_al.core.events import drain
from napari_crack_al.core.active.embeddings import load_embeddings
from napari_crack_al.core.active.round import (
    COLD_START_VERSION,
    RoundConfig,
    RoundFinished,
    read_probability,
    run_round,
    select_heldout,
    stored_scores,
)
from napari_crack_al.core.active.scores import UNCERTAINTY_KINDS
from napari_crack_al.core.active.strategies import get_strategy, unlabeled_candidates
from napari_crack_al.core.errors import ConfigError
from napari_crack_al.core.events import (
    CancelToken,
    CheckpointEvent,
    ProgressEvent,
    StepEvent,
)
from napari_crack_al.core.io.mask_io import read_mask
from napari_crack_al.core.model import load_checkpoint
from napari_crack_al.core.project import ImageStatus, Project
from napari_crack_al.core.sample_project import write_sample_images
from napari_crack_al.core.training.config import TrainConfig

torch.set_num_threads(1)

TRAIN = TrainConfig(iterations=5, crop_size=64, batch_size=2, unlabeled_batch_size=2,
                    warmup_iterations=2, threads=1, device="cpu", seed=0)
CONFIG = RoundConfig(train=TRAIN, strategy="hybrid", batch_size=2, seed=0)


_drain = drain  # the package's one way to run a generator of events to its end


def _accept_truth(project: Project, names: list[str]) -> None:
    for name in names:
        project.accept(name, read_mask(project.root / "ground_truth" / f"{name}.png"))


def _new_project(root: Path) -> Project:
    write_sample_images(root, n=6, size=96, seed=0)
    return Project.create(root)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict:
    """A project with 3 accepted images after round 1 (closed), and that round's events."""
    root = tmp_path_factory.mktemp("round") / "project"
    with _new_project(root) as project:
        _accept_truth(project, project.names()[:3])
        events, result = _drain(run_round(project, CONFIG))
    return {"root": root, "events": events, "result": result}


@pytest.fixture
def project(base, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(base["root"], root)
    with Project.open(root) as p:
        yield p


def _temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------------------- round 1
def test_round_registers_scores_suggests_and_ranks(project, base):
    events, result = base["events"], base["result"]
    assert isinstance(result, RoundFinished) and events[-1] == result
    assert result.round_index == 1 and result.model_version == "round-001"
    assert result.checkpoint == base["root"] / ".crack-al" / "models" / "round_001.pt"
    assert result.metrics == {} and result.heldout == []      # fewer than 5 accepted
    annotated = [r.name for r in project.records() if r.status == ImageStatus.ANNOTATED]
    assert sorted(result.trained_on) == sorted(annotated) and len(annotated) == 3
    assert result.train_seconds > 0 and result.score_seconds > 0
    assert len([e for e in events if isinstance(e, StepEvent)]) == 5
    ckpt_events = [e for e in events if isinstance(e, CheckpointEvent)]
    assert len(ckpt_events) == 1 and ckpt_events[0].path == result.checkpoint
    assert project.current_model()["path"] == project.models_dir / "round_001.pt"
    scoring = [e for e in events if isinstance(e, ProgressEvent) and e.what == "scoring"]
    assert scoring[-1].done == scoring[-1].total == 3

    # model registered, file in place, no temporary file left
    models = project.models()
    assert [m["version"] for m in models] == ["round-001"] and models[0]["round"] == 1
    assert (project.models_dir / "round_001.pt").is_file()
    assert _temp_files(project.models_dir) == []
    assert load_checkpoint(project.models_dir / "round_001.pt").metadata["round"] == 1

    # every unlabeled image: suggestion, probability map, scores of this version
    unlabeled = unlabeled_candidates(project)
    assert sorted(unlabeled) == sorted(result.ranking) and len(unlabeled) == 3
    scores = stored_scores(project, "round-001")
    for name in unlabeled:
        rec = project.record(name)
        assert rec.status == ImageStatus.SUGGESTED
        assert rec.suggestion_model_version == "round-001"
        assert rec.score_model_version == "round-001"
        assert rec.score == pytest.approx(scores[name]["topk_entropy"])  # hybrid's kind
        assert set(UNCERTAINTY_KINDS) <= set(scores[name])
        prob = read_probability(project, name)
        assert prob.shape == (96, 96) and prob.dtype == np.float32
        assert 0.0 <= prob.min() and prob.max() <= 1.0
        sugg = project.read_suggestion(name)
        clear = np.abs(prob - 0.5) > 1.0 / 255  # away from the PNG rounding at the threshold
        np.testing.assert_array_equal(sugg[clear], prob[clear] > 0.5)
    for name in annotated:
        assert name not in scores and read_probability(project, name) is None

    # queue = the strategy's ranking from the STORED scores and embeddings
    embeddings = load_embeddings(project.state_dir, "round-001")
    assert set(embeddings) == set(unlabeled) | set(annotated)     # annotated: covered centers
    expected = get_strategy("hybrid").rank(unlabeled, scores, embeddings, 2, 0)
    assert result.ranking == expected
    assert project.names()[:3] == expected
    assert project.next_name() == expected[0]


def test_second_round_warm_starts_and_holds_out(project):
    pending = unlabeled_candidates(project)
    _accept_truth(project, pending[:2])                      # 5 accepted -> 1 held out
    events, result = _drain(run_round(project, CONFIG))
    assert result.round_index == 2 and result.model_version == "round-002"
    assert len(result.heldout) == 1 and len(result.trained_on) == 4
    assert result.heldout[0] in pending[:2]        # never one round 1 trained on
    assert set(project.get_meta("trained_images")) == set(result.trained_on)
    assert project.get_meta("heldout_auto") == result.heldout
    assert {"crack_iou", "f1"} <= set(result.metrics)
    assert project.current_model()["metrics"] == pytest.approx(result.metrics)
    meta = load_checkpoint(result.checkpoint).metadata
    assert meta["init"].endswith("round_001.pt")
    assert meta["validation_images"] == result.heldout
    assert result.ranking == unlabeled_candidates(project) and len(result.ranking) == 1
    # once held out, always held out; the user's list wins
    annotated = [r.name for r in project.records() if r.status == ImageStatus.ANNOTATED]
    assert select_heldout(project, annotated, CONFIG) == result.heldout
    project.set_meta("heldout", [result.trained_on[0]])
    assert select_heldout(project, annotated, CONFIG) == [result.trained_on[0]]


def test_select_heldout_grows_and_keeps():
    class Meta:
        def __init__(self):
            self.meta = {}

        def get_meta(self, key, default=None, *, kind=None):
            return self.meta.get(key, default)

        def set_meta(self, key, value):
            self.meta[key] = value

    p = Meta()
    names = [f"n{i:02d}" for i in range(12)]
    p.set_meta("trained_images", names[1:5])
    assert select_heldout(p, names[:5], CONFIG) == ["n00"]     # the one not trained on
    p = Meta()
    assert select_heldout(p, names[:4], CONFIG) == []           # below min_heldout_pool
    first = select_heldout(p, names[:5], CONFIG)
    assert len(first) == 1
    second = select_heldout(p, names[:10], CONFIG)
    assert len(second) == 2 and set(first) <= set(second)     # every 5th; kept
    assert select_heldout(p, names[:10], CONFIG) == second    # deterministic
    assert p.meta["heldout_auto"] == list(dict.fromkeys(first + second))


# ---------------------------------------------------------------------------- cancel
def _state(project: Project) -> tuple:
    return (project.names(), project.get_scores(), [m["version"] for m in project.models()],
            sorted(p.name for p in project.models_dir.iterdir()))


def test_cancel_during_training_keeps_previous_model(project):
    before = _state(project)
    cancel = CancelToken()
    events = []
    gen = run_round(project, CONFIG, cancel=cancel)
    result = None
    while True:
        try:
            ev = next(gen)
        except StopIteration as stop:
            result = stop.value
            break
        events.append(ev)
        if isinstance(ev, StepEvent):
            cancel.cancel()
    assert result is None
    assert not any(isinstance(e, (CheckpointEvent, RoundFinished)) for e in events)
    assert _state(project) == before                           # nothing registered or written
    assert project.current_model()["version"] == "round-001"


def test_closing_the_generator_mid_training_leaves_nothing(project):
    before = _state(project)
    gen = run_round(project, CONFIG)
    for ev in gen:
        if isinstance(ev, StepEvent):
            break
    gen.close()                                                # a napari worker's quit()
    assert _state(project) == before


def test_cancel_during_scoring_keeps_the_queue(project):
    queue = project.names()
    cancel = CancelToken()
    gen = run_round(project, CONFIG, cancel=cancel)
    events, result = [], None
    while True:
        try:
            ev = next(gen)
        except StopIteration as stop:
            result = stop.value
            break
        events.append(ev)
        if isinstance(ev, ProgressEvent) and ev.what == "scoring":
            cancel.cancel()
    assert result is None
    assert [m["version"] for m in project.models()] == ["round-001", "round-002"]
    assert project.names() == queue
    assert "round-002" not in set(project.score_versions("entropy").values())


# ---------------------------------------------------------------------------- cold start
def test_cold_start_ranks_without_a_model(tmp_path):
    with _new_project(tmp_path / "cold") as project:
        events, result = _drain(run_round(project, CONFIG))
        assert isinstance(result, RoundFinished) and events[-1] == result
        assert result.round_index == 0 and result.checkpoint is None
        assert result.model_version == COLD_START_VERSION
        assert sorted(result.ranking) == sorted(project.names())
        assert project.names() == result.ranking
        assert project.models() == []
        vectors = load_embeddings(project.state_dir, COLD_START_VERSION)
        assert result.ranking == get_strategy("kcenter").rank(result.ranking, {}, vectors, 2, 0)
        _, again = _drain(run_round(project, CONFIG))
        assert again.ranking == result.ranking                 # deterministic


def test_round_config_validation():
    with pytest.raises(ConfigError, match="hybrid"):
        RoundConfig(train=TRAIN, strategy="best")
    with pytest.raises(ConfigError, match="mc_passes"):
        RoundConfig(train=TRAIN, strategy="bald")
    with pytest.raises(ConfigError, match="student"):
        RoundConfig(train=TRAIN, strategy="disagreement")
    with pytest.raises(ConfigError, match="heldout_fraction"):
        RoundConfig(train=TRAIN, heldout_fraction=1.0)
    with pytest.raises(ConfigError, match="batch_size"):
        RoundConfig(train=TRAIN, batch_size=0)
    assert RoundConfig(train=TRAIN, strategy="bald", mc_passes=4).mc_passes == 4


# ---------------------------------------------------------------------------- CLI
def test_cli_rank_rescores_and_resorts(project, capsys):
    from napari_crack_al.cli.main import main

    root = project.root
    project.close()
    assert main(["rank", str(root), "--strategy", "entropy", "--k", "2", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    with Project.open(root) as p:
        pending = unlabeled_candidates(p)
        scores = stored_scores(p, "round-001")
        expected = get_strategy("entropy").rank(pending, scores, None, 2, 0)
        assert p.names()[:len(expected)] == expected
        assert expected[0] in out and "round-001" in out


def test_cli_rank_cold_start(tmp_path, capsys):
    from napari_crack_al.cli.main import main

    with _new_project(tmp_path / "cold") as project:
        root = project.root
    assert main(["rank", str(root), "--k", "3"]) == 0
    assert "cold start" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["rank", str(root), "--strategy", "nope"])


def test_a_round_whose_candidates_are_all_unreadable_ends_without_error(project):
    """The model is registered; ranking falls back to the queue's order, naming the files."""
    from napari_crack_al.core.events import MessageEvent

    waiting = unlabeled_candidates(project)
    order_before = [r.name for r in project.records()]
    for name in waiting:
        project.image_path(name).write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    events, result = _drain(run_round(project, CONFIG))
    assert isinstance(result, RoundFinished) and result.model_version == "round-002"
    assert [m["version"] for m in project.models()] == ["round-001", "round-002"]
    assert result.ranking == waiting  # the queue keeps its order
    assert [r.name for r in project.records()] == order_before
    messages = " ".join(e.text for e in events if isinstance(e, MessageEvent))
    assert "could not be read" in messages and "the queue keeps its order" in messages
    assert project.image_path(waiting[0]).name in messages  # the file is named
    assert "score the images first" not in messages


def test_a_round_scores_a_bounded_candidate_set(project):
    """max_candidates=2 of 3 waiting images: two get this round's scores and suggestions, the
    third keeps its stored ones (marked round-001) and stays in the queue after them."""
    from dataclasses import replace

    waiting = unlabeled_candidates(project)
    assert len(waiting) == 3
    events, result = _drain(run_round(project, replace(CONFIG, max_candidates=2)))
    assert isinstance(result, RoundFinished)
    versions = {n: project.record(n).score_model_version for n in waiting}
    assert sorted(versions.values()) == ["round-001", "round-002", "round-002"]
    stale = next(n for n, v in versions.items() if v == "round-001")
    assert result.ranking[-1] == stale and sorted(result.ranking) == sorted(waiting)
    scoring = [e for e in events if isinstance(e, ProgressEvent) and e.what == "scoring"]
    assert scoring[-1].total == 2


def test_a_semi_round_reads_its_unlabeled_images_lazily_and_passes_a_bad_one(project,
                                                                               monkeypatch):
    """The pool is not read up front; an unreadable unlabelled file is marked, named, skipped."""
    from dataclasses import replace

    from napari_crack_al.core.events import MessageEvent
    from napari_crack_al.core.training import lazy_images

    waiting = unlabeled_candidates(project)
    bad = waiting[0]
    project.image_path(bad).write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    pools = []
    real = lazy_images.LazyImages

    def spy(*args, **kwargs):
        pools.append(real(*args, **kwargs))
        return pools[-1]

    monkeypatch.setattr(lazy_images, "LazyImages", spy)
    config = replace(CONFIG, train=replace(TRAIN, semi_entry_f1=0.0, warmup_iterations=0,
                                           unlabeled_batch_size=3), cache_mb=0)
    events, result = _drain(run_round(project, config))
    assert isinstance(result, RoundFinished) and result.model_version == "round-002"
    (pool,) = pools
    assert pool.names == waiting and pool.loads >= 2  # read batch by batch
    assert bad in pool.failed
    messages = " ".join(e.text for e in events if isinstance(e, MessageEvent))
    assert f"skipped: {bad}:" in messages
    assert project.unreadable().get(bad)


def test_a_round_scores_for_its_scoring_time_then_keeps_the_rest(project):
    """score_seconds ~ 0 with batch_size 1: the 2 images due next get this round's scores,
    the third keeps its round-001 score and comes after them."""
    from dataclasses import replace

    from napari_crack_al.core.events import MessageEvent

    waiting = unlabeled_candidates(project)
    events, result = _drain(run_round(project, replace(CONFIG, batch_size=1,
                                                       score_seconds=1e-9)))
    assert isinstance(result, RoundFinished)
    versions = {n: project.record(n).score_model_version for n in waiting}
    assert [versions[n] for n in waiting] == ["round-002", "round-002", "round-001"]
    assert result.ranking[-1] == waiting[2]
    assert any("scored 2 of 3 candidate images" in e.text for e in events
               if isinstance(e, MessageEvent))
