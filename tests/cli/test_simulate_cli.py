"""``napari-crack-al simulate``: two arms end to end, and the error exits."""

from __future__ import annotations

import math
import shutil

import pytest
import torch

from napari_crack_al.cli.main import main
from napari_crack_al.core.simulation.curves import read_curve_csv
from napari_crack_al.core.sample_project import write_sample_images

torch.set_num_threads(1)

FAST = ["--iterations", "3", "--crop-size", "64", "--batch-size", "2", "--threads", "1",
        "--device", "cpu", "--tile", "128"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("simcli") / "s"
    write_sample_images(root, n=8, size=96, seed=2)
    return root


@pytest.fixture(scope="module")
def compared(sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("simcli_out") / "out"
    code = main(["simulate", str(sample / "images"), str(sample / "ground_truth"),
                 "--out", str(out), "--val-fraction", "0.25", "--initial", "2",
                 "--per-round", "2", "--rounds", "2", "--compare", "random,crack_entropy",
                 "--mode", "supervised", "--seed", "1", *FAST])
    return code, out


def test_compare_two_strategies(compared, capsys):
    code, out = compared
    assert code == 0
    assert (out / "curve.csv").read_text().splitlines()[0] == (
        "round,n_labeled,strategy,mode,crack_iou,f1,precision,recall,f1_tol2,edit_fraction,"
        "threshold,train_seconds,score_seconds,missed_length,false_length,suggested_by")
    rows = read_curve_csv(out / "curve.csv")
    assert [(r["strategy"], r["mode"], r["round"], r["n_labeled"]) for r in rows] == [
        ("random", "supervised", 0, 2), ("random", "supervised", 1, 4),
        ("crack_entropy", "supervised", 0, 2), ("crack_entropy", "supervised", 1, 4)]
    assert all(math.isfinite(r["f1"]) and math.isfinite(r["f1_tol2"]) for r in rows)
    # round 0 starts from the training-free detector's suggestions, round 1 from the model's
    assert all(math.isfinite(r["edit_fraction"]) for r in rows)
    selected = (out / "selected.csv").read_text().splitlines()
    assert selected[0] == "arm,round,image" and len(selected) == 1 + 2 * 4
    assert (out / "curve.png").stat().st_size > 1000
    # same seed, same split: both projects hold the same 6 training images (8 - 2 validation)
    names = [sorted(p.name for p in (out / f"project_{arm}" / "images").iterdir())
             for arm in ("random-supervised", "crack_entropy-supervised")]
    assert names[0] == names[1] and len(names[0]) == 6


def test_unpaired_names_exit_2(sample, tmp_path, capsys):
    masks = tmp_path / "masks"
    shutil.copytree(sample / "ground_truth", masks)
    (masks / "sample_0003.png").unlink()
    code = main(["simulate", str(sample / "images"), str(masks), "--out", str(tmp_path / "o"),
                 *FAST])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and "sample_0003.png" in err and "no mask" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("value", ["0", "1", "1.5", "-0.2", "abc"])
def test_val_fraction_out_of_range_exit_2(sample, tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", str(sample / "images"), str(sample / "ground_truth"),
              "--out", str(tmp_path / "o"), "--val-fraction", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--val-fraction" in err
    assert ("(0, 1)" in err) or ("expected a number" in err)


def test_budget_and_validation_option_errors_exit_2(sample, tmp_path, capsys):
    code = main(["simulate", str(sample / "images"), str(sample / "ground_truth"),
                 "--out", str(tmp_path / "o"), "--initial", "5", "--per-round", "5",
                 "--rounds", "3", *FAST])
    assert code == 2 and "training pool has 6 images" in capsys.readouterr().err
    code = main(["simulate", str(sample / "images"), str(sample / "ground_truth"),
                 "--out", str(tmp_path / "o"), "--val-images", str(sample / "images"), *FAST])
    assert code == 2 and "--val-masks" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["simulate", str(sample / "images"), str(sample / "ground_truth"),
              "--out", str(tmp_path / "o"), "--compare", "random,psychic"])
    assert exc.value.code == 2 and "psychic" in capsys.readouterr().err


def test_rerun_needs_force(compared, sample, capsys):
    """Runs last: it replaces one arm of the compared output."""
    _, out = compared
    args = ["simulate", str(sample / "images"), str(sample / "ground_truth"), "--out", str(out),
            "--val-fraction", "0.25", "--initial", "2", "--rounds", "1", "--strategy", "random",
            "--mode", "supervised", "--seed", "1", *FAST]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "project_random-supervised: already exists" in err and "--force" in err
    assert main([*args, "--force"]) == 0
    rows = read_curve_csv(out / "curve.csv")
    assert [(r["strategy"], r["round"]) for r in rows] == [("random", 0)]
    assert (out / "selected.csv").read_text().splitlines()[0] == "round,image"


def test_options_that_would_override_each_other_are_refused(sample, tmp_path, capsys):
    base = ["simulate", str(sample / "images"), str(sample / "ground_truth"), "--out",
            str(tmp_path / "o"), *FAST]
    for extra, words in ((["--arms", "random-supervised", "--compare", "random"], "--arms or --compare"),
                         (["--arms", "random-supervised", "--mode", "semi"], "--arms or --mode"),
                         (["--compare", "random,hybrid", "--strategy", "kcenter"],
                          "--compare or --strategy"),
                         (["--modes", "semi,supervised", "--mode", "semi"], "--modes or --mode")):
        assert main([*base, *extra]) == 2, extra
        assert words in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    # MASKS == IMAGES: every image would be its own mask
    assert main(["simulate", str(sample / "images"), str(sample / "images"), "--out",
                 str(tmp_path / "o"), *FAST]) == 2
    assert "is the image folder" in capsys.readouterr().err


def test_full_is_honoured_beside_arms():
    from napari_crack_al.core.simulation.config import SimulationConfig
    from napari_crack_al.core.training.config import TrainConfig

    cfg = SimulationConfig(train=TrainConfig(), arm_list=("random-supervised",),
                           full_reference=True)
    assert [a.name for a in cfg.arms] == ["random-supervised", "full"]
    cfg = SimulationConfig(train=TrainConfig(), arm_list=("full", "random-supervised"),
                           full_reference=True)
    assert [a.name for a in cfg.arms] == ["full", "random-supervised"]
