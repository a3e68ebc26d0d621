"""Options that another option (or the project's state) would silently override are refused.

Each case exits 2 with one ``error:`` line naming both options, before any data is read,
any model is loaded or anything is written.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_crack_al.cli.main import main

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _refused(argv: list[str], capsys, *words: str) -> str:
    """Run the CLI, check it exits 2 with one error line holding every word; return it."""
    assert main(argv) == 2, argv
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for word in words:
        assert word in err, (word, err)
    return err


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """A project of two tiny synthetic images, without any model (rank's cold start)."""
    root = tmp_path_factory.mktemp("conflicts") / "s"
    assert main(["make-sample", str(root), "--n", "2", "--size", "64"]) == 0
    return root


# ---------------------------------------------------------------------------- train
@pytest.mark.parametrize("extra,words", [
    (["--iterations", "5", "--seconds", "10"], ("--seconds", "--iterations")),
    (["--mode", "supervised", "--unlabeled", "U"], ("--unlabeled", "--mode supervised")),
    (["--init", "M", "--decoder", "deeplabv3plus"], ("--init", "--decoder")),
    (["--init", "M", "--encoder-weights", "W"], ("--init", "--encoder-weights")),
])
def test_train_refuses_overridden_options(sample, tmp_path, capsys, extra, words):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"x")
    extra = [{"U": str(sample / "images"), "M": str(tmp_path / "m0.pt"),
              "W": str(weights)}.get(e, e) for e in extra]
    _refused(["train", str(sample / "images"), str(sample / "ground_truth"), "--out",
              str(tmp_path / "m.pt"), "--device", "cpu", *extra], capsys, *words)
    assert not (tmp_path / "m.pt").exists()


# ---------------------------------------------------------------------------- predict
@pytest.mark.parametrize("extra,word", [(["--tile", "64"], "--tile"),
                                        (["--device", "cpu"], "--device"),
                                        (["--threshold", "0.3"], "--threshold")])
def test_predict_builtin_refuses_model_options(sample, tmp_path, capsys, extra, word):
    _refused(["predict", "builtin", str(sample / "images"), "--out", str(tmp_path / "o"),
              *extra], capsys, word, "applies to a model, not to builtin")
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------- rank
def test_rank_refuses_a_threshold_without_suggestions(sample, capsys):
    _refused(["rank", str(sample), "--no-suggestions", "--threshold", "0.4"], capsys,
             "--threshold", "--no-suggestions")


@pytest.mark.parametrize("extra,word", [
    (["--strategy", "entropy"], "--strategy"), (["--threshold", "0.4"], "--threshold"),
    (["--mc-passes", "3"], "--mc-passes"), (["--student", "S"], "--student"),
    (["--tile", "64"], "--tile"), (["--device", "cpu"], "--device")])
def test_rank_cold_start_refuses_model_options(sample, capsys, extra, word):
    extra = [str(sample / "x.pt") if e == "S" else e for e in extra]
    _refused(["rank", str(sample), *extra], capsys, word, "needs a model",
             "the project has none yet")
    assert main(["rank", str(sample), "--k", "1"]) == 0  # the plain cold start still works
    assert "label-free diversity" in capsys.readouterr().out


# ---------------------------------------------------------------------------- simulate
def _simulate(sample: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["simulate", str(sample / "images"), str(sample / "ground_truth"), "--out",
            str(tmp_path / "o"), "--device", "cpu", *extra]


@pytest.mark.parametrize("extra,words", [
    (["--iterations", "5", "--seconds", "10"], ("give --seconds or --iterations",)),
    (["--strategy", "full", "--mode", "semi"], ("--mode", "full arm")),
    (["--compare", "full", "--modes", "semi,supervised"], ("--modes", "full arm")),
    (["--arms", "full", "--initial", "2"], ("--initial", "full arm")),
    (["--strategy", "full", "--per-round", "2"], ("--per-round", "full arm")),
    (["--strategy", "full", "--no-detector"], ("--no-detector", "full arm")),
    (["--strategy", "full", "--model-suggestions"], ("--model-suggestions", "full arm")),
    (["--mode", "supervised", "--warmup", "3"], ("--warmup", "supervised")),
    (["--arms", "random-supervised,full", "--warmup", "3"], ("--warmup", "supervised")),
])
def test_simulate_refuses_overridden_options(sample, tmp_path, capsys, extra, words):
    _refused(_simulate(sample, tmp_path, *extra), capsys, *words)
    assert not (tmp_path / "o").exists()


def test_simulate_accepts_what_applies_to_some_arm():
    """--mode with full among others, --warmup with a semi arm: nothing is overridden."""
    from napari_crack_al.cli.cmd_simulate import build_config
    from napari_crack_al.cli.main import build_parser

    def config(*extra: str):  # noqa: ANN202
        return build_config(build_parser().parse_args(["simulate", "I", "M", "--out", "O",
                                                       *extra]))

    cfg = config("--compare", "random,full", "--mode", "supervised", "--initial", "2")
    assert [a.name for a in cfg.arms] == ["random-supervised", "full"] and cfg.initial == 2
    cfg = config("--modes", "semi,supervised", "--warmup", "3")
    assert cfg.train.warmup_iterations == 3
    cfg = config("--seconds", "30")
    assert cfg.train.seconds == 30.0
    cfg = config()
    assert (cfg.train.iterations, cfg.initial, cfg.per_round) == (200, 5, 5)


# ---------------------------------------------------------------------------- export
@pytest.mark.parametrize("extra,word", [(["--pixel-size-mm", "0.5"], "--pixel-size-mm"),
                                        (["--min-area", "10"], "--min-area")])
def test_export_refuses_measurement_options_without_measurements(sample, tmp_path, capsys,
                                                                 extra, word):
    _refused(["export", str(sample), "--out", str(tmp_path / "o"), "--no-measurements", *extra],
             capsys, word, "--no-measurements")
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------- export-model
@pytest.mark.parametrize("fmt,name", [("torchscript", "m.onnx"), ("onnx", "m.pt")])
def test_export_model_refuses_a_format_the_suffix_contradicts(tmp_path, capsys, fmt, name):
    model = tmp_path / "model.pt"
    model.write_bytes(b"not read")
    _refused(["export-model", str(model), "--out", str(tmp_path / name), "--format", fmt],
             capsys, f"--format {fmt}", name)
    assert not (tmp_path / name).exists()
