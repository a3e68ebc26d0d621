"""The label-efficiency simulation end to end on a tiny synthetic set, and its helpers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_crack_al.core.events import drain
from napari_crack_al.core.simulation.curves import (
    CURVE_COLUMNS,
    area_under_curve,
    mean_curves,
    read_curve_csv,
    summarize_arms,
    write_curve_csv,
)
from napari_crack_al.core.simulation import (
    SimulationConfig,
    SimulationRow,
    pair_folders,
    simulate,
    split_pairs,
)
from napari_crack_al.core.errors import ConfigError, InputError, MaskError, ProjectError
from napari_crack_al.core.events import ProgressEvent, StepEvent
from napari_crack_al.core.io.mask_io import read_mask
from napari_crack_al.core.project import ImageStatus, Project
from napari_crack_al.core.sample_project import write_sample_images
from napari_crack_al.core.training.config import TrainConfig

torch.set_num_threads(1)

TRAIN = TrainConfig.from_preset("fast", iterations=3, crop_size=64, batch_size=2,
                                unlabeled_batch_size=2, warmup_iterations=1, threads=1,
                                device="cpu")
CONFIG = SimulationConfig(train=TRAIN, strategies=("hybrid",), modes=("semi",), initial=2,
                          per_round=2, rounds=2, seed=0, tile=128, overlap=16,
                          full_reference=True)


_drain = drain  # the package's one way to run a generator of events to its end


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("sim")
    write_sample_images(root / "pool", n=8, size=96, seed=0)
    write_sample_images(root / "val", n=2, size=96, seed=7)
    train = pair_folders(root / "pool" / "images", root / "pool" / "ground_truth")
    val = pair_folders(root / "val" / "images", root / "val" / "ground_truth")
    # the validation images get other names than the pool's
    renamed = []
    for img, mask in val:
        new_img = img.with_name("val_" + img.name)
        new_mask = mask.with_name("val_" + mask.name)
        img.rename(new_img)
        mask.rename(new_mask)
        renamed.append((new_img, new_mask))
    out = root / "out"
    events, rows = _drain(simulate(train, renamed, out, CONFIG))
    return {"root": root, "out": out, "events": events, "rows": rows, "train": train,
            "val": renamed}


def test_curve_csv_header_rows_and_finite_metrics(data):
    out = data["out"]
    lines = (out / "curve.csv").read_text().splitlines()
    assert lines[0] == ("round,n_labeled,strategy,mode,crack_iou,f1,precision,recall,f1_tol2,"
                        "edit_fraction,threshold,train_seconds,score_seconds,missed_length,false_length,"
                        "suggested_by")
    rows = read_curve_csv(out / "curve.csv")
    assert len(rows) == 4  # 2 arms x 2 rounds
    assert [(r["strategy"], r["mode"], r["round"]) for r in rows] == [
        ("hybrid", "semi", 0), ("hybrid", "semi", 1), ("full", "supervised", 0),
        ("full", "supervised", 1)]
    # the full arm holds 1 of its 8 images out for the threshold, as the plugin does from 5 on
    assert [r["n_labeled"] for r in rows] == [2, 4, 7, 7]
    for r in rows:
        for col in ("crack_iou", "f1", "precision", "recall", "f1_tol2", "train_seconds",
                    "score_seconds"):
            assert math.isfinite(r[col]), (col, r)
        assert 0.0 <= r["f1"] <= 1.0 and 0.0 <= r["f1_tol2"] <= 1.0
        assert r["train_seconds"] > 0
    # what made the suggestions each row's edit fraction was measured on
    sources = [line.rsplit(",", 1)[1] for line in lines[1:]]
    assert sources[0] == "detector" and sources[1] in ("model", "detector", "none")
    assert sources[2:] == ["", ""]  # the full arm annotates no suggestion
    # the returned rows are the file's rows
    assert [r["f1"] for r in data["rows"]] == pytest.approx([r["f1"] for r in rows], rel=1e-5)


def test_edit_fraction_empty_without_model_and_recomputable(data):
    out = data["out"]
    text = (out / "curve.csv").read_text().splitlines()
    # the full arm selects nothing: empty cells; round 0 of an active arm has the edit fraction
    # of the training-free detector's suggestions, the first masks of a new project
    assert text[3].split(",")[9] == "" and text[4].split(",")[9] == ""
    rows = read_curve_csv(out / "curve.csv")
    assert math.isfinite(rows[0]["edit_fraction"])
    edit = rows[1]["edit_fraction"]
    assert math.isfinite(edit) and edit >= 0
    # recompute from the project: suggestions of round 0's model vs the true masks
    project_root = out / "project_hybrid-semi"
    selected = [line.split(",") for line in (out / "selected.csv").read_text().splitlines()[1:]]
    truth = {p[0].stem: p[1] for p in data["train"]}
    for rnd, version, expected in (("0", "builtin", rows[0]["edit_fraction"]),
                                   ("1", "round-001", edit)):
        chosen = [img for arm, r, img in selected if arm == "hybrid-semi" and r == rnd]
        assert len(chosen) == 2
        with Project.open(project_root) as project:
            fix = crack = 0
            for name in chosen:
                rec = project.record(name)
                assert rec.status == ImageStatus.ANNOTATED
                assert rec.suggestion_model_version == version
                gt = read_mask(truth[name])
                path = project.state_dir / "suggestions" / f"{name}.png"
                sugg = np.asarray(read_mask(path), dtype=bool) if path.is_file() else None
                crack += int(gt.sum())
                fix += int(gt.sum()) if sugg is None else int(np.count_nonzero(sugg != gt))
        assert expected == pytest.approx(fix / max(1, crack), rel=1e-5)
        # the same work in crack length: the records' missed and false length, summed
        row = rows[int(rnd)]
        with Project.open(project_root) as project:
            missed = sum(project.record(n).missed_length for n in chosen)
            false = sum(project.record(n).false_length for n in chosen)
        assert (row["missed_length"], row["false_length"]) == pytest.approx((missed, false))


def test_round_zero_tunes_the_detector_after_each_accept(data):
    from napari_crack_al.core.detector import stored_calibration

    with Project.open(data["out"] / "project_hybrid-semi", read_only=True) as project:
        tuned = stored_calibration(project)
    # tuned after the first of round 0's two accepts (as the plugin does), on that image
    assert tuned is not None and tuned.n_images == 1
    assert tuned.edit_fraction <= tuned.default_edit_fraction
    with Project.open(data["out"] / "project_full", read_only=True) as project:
        assert stored_calibration(project) is None  # the full arm has no suggestions to tune


def test_selected_csv_and_projects(data):
    out = data["out"]
    lines = (out / "selected.csv").read_text().splitlines()
    assert lines[0] == "arm,round,image"
    sel = [line.split(",") for line in lines[1:]]
    hybrid = [(rnd, img) for arm, rnd, img in sel if arm == "hybrid-semi"]
    full = [(rnd, img) for arm, rnd, img in sel if arm == "full"]
    assert [rnd for rnd, _ in hybrid] == ["0", "0", "1", "1"]
    assert len({img for _, img in hybrid}) == 4
    assert sorted(img for _, img in full) == sorted(p[0].stem for p in data["train"])
    with Project.open(out / "project_hybrid-semi") as project:
        annotated = sorted(r.name for r in project.records()
                           if r.status == ImageStatus.ANNOTATED)
        assert annotated == sorted(img for _, img in hybrid)
        assert [m["version"] for m in project.models()] == ["round-001", "round-002"]
        assert not project.get_meta("heldout_auto")  # fewer than 5 annotated: none held out
        # accepted masks are the true masks
        truth = {p[0].stem: p[1] for p in data["train"]}
        for name in annotated:
            np.testing.assert_array_equal(project.read_annotation(name), read_mask(truth[name]))
    # the validation images never enter a project
    assert not any((out / "project_full" / "images" / p[0].name).exists() for p in data["val"])
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_events(data):
    events = data["events"]
    assert any(isinstance(e, StepEvent) for e in events)
    sim_rows = [e for e in events if isinstance(e, SimulationRow)]
    assert [e.arm for e in sim_rows] == ["hybrid-semi", "hybrid-semi", "full", "full"]
    rounds = [e for e in events if isinstance(e, ProgressEvent) and e.what == "rounds"]
    assert (rounds[0].done, rounds[-1].done, rounds[-1].total) == (0, 4, 4)


def test_existing_output_needs_overwrite(data, tmp_path):
    cfg = SimulationConfig(train=TRAIN, strategies=("random",), modes=("supervised",),
                           initial=2, per_round=1, rounds=1, tile=128, overlap=16)
    (tmp_path / "project_random-supervised").mkdir()
    (tmp_path / "project_random-supervised" / "keep.txt").write_text("mine")
    with pytest.raises(ProjectError, match="already exists"):
        _drain(simulate(data["train"], data["val"], tmp_path, cfg))
    with pytest.raises(ProjectError, match="not a simulation project"):
        _drain(simulate(data["train"], data["val"], tmp_path, cfg, overwrite=True))
    assert (tmp_path / "project_random-supervised" / "keep.txt").read_text() == "mine"


def test_pool_too_small_and_overlap(data, tmp_path):
    cfg = SimulationConfig(train=TRAIN, initial=5, per_round=3, rounds=3)
    with pytest.raises(ConfigError, match="training pool has 8 images"):
        _drain(simulate(data["train"], data["val"], tmp_path, cfg))
    with pytest.raises(InputError, match="also in the training pool"):
        _drain(simulate(data["train"], data["train"][:1], tmp_path, CONFIG))


def test_config_validation():
    with pytest.raises(ConfigError, match="valid: .*hybrid"):
        SimulationConfig(train=TRAIN, strategies=("nope",))
    with pytest.raises(ConfigError, match="modes"):
        SimulationConfig(train=TRAIN, modes=("semi", "semi"))
    with pytest.raises(ConfigError, match="per_round"):
        SimulationConfig(train=TRAIN, per_round=0)
    cfg = SimulationConfig(train=TRAIN, strategies=("random", "entropy", "full"),
                           modes=("semi", "supervised"))
    assert [a.name for a in cfg.arms] == ["random-semi", "random-supervised", "entropy-semi",
                                          "entropy-supervised", "full"]
    cfg = SimulationConfig(train=TRAIN, arm_list=("random-supervised", "crack_entropy-semi",
                                                  "full"))
    assert [(a.strategy, a.mode) for a in cfg.arms] == [
        ("random", "supervised"), ("crack_entropy", "semi"), ("full", "supervised")]
    for bad in ("random", "psychic-semi", "hybrid-lazy", "full-semi"):
        with pytest.raises(ConfigError, match="unknown arm"):
            SimulationConfig(train=TRAIN, arm_list=(bad,))


def test_pair_folders_errors(tmp_path):
    write_sample_images(tmp_path / "s", n=3, size=64, seed=1)
    (tmp_path / "s" / "ground_truth" / "sample_0001.png").rename(
        tmp_path / "s" / "ground_truth" / "other.png")
    with pytest.raises(MaskError, match="other.png"):
        pair_folders(tmp_path / "s" / "images", tmp_path / "s" / "ground_truth")


def test_split_pairs_deterministic_and_disjoint():
    pairs = [(Path(f"i/{n}.png"), Path(f"m/{n}.png")) for n in "abcdefghij"]
    train, val = split_pairs(pairs, 0.3, seed=3)
    assert len(val) == 3 and len(train) == 7
    assert not {p[0].stem for p in train} & {p[0].stem for p in val}
    assert split_pairs(list(reversed(pairs)), 0.3, seed=3) == (train, val)
    assert split_pairs(pairs, 0.3, seed=4) != (train, val)
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ConfigError, match=r"\(0, 1\)"):
            split_pairs(pairs, bad)


def test_area_summary_and_means(tmp_path):
    assert area_under_curve([2, 4, 6], [0.2, 0.4, 0.4]) == pytest.approx((0.6 + 0.8) / 4)
    assert area_under_curve([5], [0.3]) == pytest.approx(0.3)
    assert math.isnan(area_under_curve([], []))
    base = dict(crack_iou=0.1, precision=0.5, recall=0.5, train_seconds=1.0, score_seconds=0.5)
    rows = [
        dict(round=0, n_labeled=2, strategy="random", mode="semi", f1=0.2, f1_tol2=0.3,
             edit_fraction=math.nan, **base),
        dict(round=1, n_labeled=4, strategy="random", mode="semi", f1=0.4, f1_tol2=0.5,
             edit_fraction=0.8, **base),
        dict(round=0, n_labeled=2, strategy="random", mode="semi", f1=0.4, f1_tol2=0.5,
             edit_fraction=math.nan, **base),
    ]
    summary = summarize_arms(rows[:2])
    assert summary[0]["aulc_f1"] == pytest.approx(0.3)
    assert summary[0]["final_f1"] == pytest.approx(0.4)
    assert summary[0]["mean_edit_fraction"] == pytest.approx(0.8)
    means = {m["round"]: m for m in mean_curves(rows)}
    assert means[0]["f1"] == pytest.approx(0.3) and means[0]["f1_std"] == pytest.approx(0.1)
    assert means[0]["n_runs"] == 2 and math.isnan(means[0]["edit_fraction"])
    path = write_curve_csv(tmp_path / "c.csv", rows)
    back = read_curve_csv(path)
    assert [r["f1"] for r in back] == pytest.approx([0.2, 0.4, 0.4])
    assert math.isnan(back[0]["edit_fraction"])
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="not a simulation curve"):
        read_curve_csv(tmp_path / "bad.csv")
    assert tuple(path.read_text().splitlines()[0].split(",")) == CURVE_COLUMNS
