"""End to end: ``train`` a few steps -> ``predict`` -> ``evaluate`` (JSON), and error exits."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from skimage.io import imsave

from napari_crack_al.cli.main import main
from napari_crack_al.core.io.mask_io import read_mask, write_mask
from napari_crack_al.core.synthetic import SyntheticConfig, generate_range_image

torch.set_num_threads(1)

CFG = SyntheticConfig(size=72, width_px=(2, 5), depth_mm=(2, 4), distractors=False,
                      no_crack_fraction=0.0)
TRAIN_ARGS = ["--iterations", "3", "--crop-size", "64", "--batch-size", "2", "--threads", "1",
              "--device", "cpu", "--seed", "1"]


def _write_set(root: Path, names: list[str], seed: int, *, rgb: str | None = None) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        s = generate_range_image((seed, i), CFG)
        if name == rgb:  # a colour photograph: cracks dark, 8-bit RGB
            gray = np.clip((s.range_image.astype(np.float64) - 28000) / 40, 0, 255).astype(np.uint8)
            imsave(root / "images" / f"{name}.png", np.dstack([gray, gray, gray // 2]),
                   check_contrast=False)
        else:
            imsave(root / "images" / f"{name}.png", s.range_image, check_contrast=False)
        write_mask(root / "masks" / f"{name}.png", s.mask)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    _write_set(root / "train", ["a", "b", "photo"], 0, rgb="photo")
    _write_set(root / "unl", ["u1", "u2"], 1)
    _write_set(root / "test", ["t1", "t2"], 2)
    return root


@pytest.fixture(scope="module")
def trained(dataset) -> Path:
    model = dataset / "models" / "model.pt"
    rc = main(["train", str(dataset / "train" / "images"), str(dataset / "train" / "masks"),
               "--out", str(model), "--unlabeled", str(dataset / "unl" / "images"), *TRAIN_ARGS])
    assert rc == 0
    return model


def test_train_writes_model(trained, capsys):
    from napari_crack_al.core.model import load_checkpoint

    assert trained.is_file()
    ck = load_checkpoint(trained)
    assert ck.train_config["iterations"] == 3 and ck.train_config["mode"] == "semi"
    assert ck.metadata["labeled_images"] == ["a", "b", "photo"]
    assert ck.metadata["unlabeled_images"] == ["u1", "u2"]


def test_predict_then_evaluate(dataset, trained, tmp_path, capsys):
    pred = tmp_path / "pred"
    rc = main(["predict", str(trained), str(dataset / "test" / "images"), "--out", str(pred),
               "--probabilities", "--device", "cpu", "--tile", "64"])
    assert rc == 0
    assert sorted(p.name for p in pred.glob("*.png")) == ["t1.png", "t2.png"]
    mask = read_mask(pred / "t1.png")
    assert mask.shape == (72, 72)
    raw = np.unique(np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(pred / "t1.png")))
    assert set(raw.tolist()) <= {0, 255}
    prob = tifffile.imread(pred / "probabilities" / "t1.tif")
    assert prob.dtype == np.float32 and prob.shape == (72, 72)
    assert 0.0 <= prob.min() and prob.max() <= 1.0
    from napari_crack_al.core.model import load_checkpoint

    assert np.array_equal(mask, prob > load_checkpoint(trained).metadata["threshold"])
    capsys.readouterr()

    rc = main(["evaluate", str(pred), str(dataset / "test" / "masks")])
    assert rc == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    metrics = json.loads(out[0])
    for key in ("crack_iou", "precision", "recall", "f1", "f1_tol2", "ods", "ois"):
        assert key in metrics and math.isfinite(metrics[key]) and 0.0 <= metrics[key] <= 1.0
    assert metrics["n_images"] == 2
    # evaluating the ground truth against itself is perfect (and without probability maps: no ods)
    rc = main(["evaluate", str(dataset / "test" / "masks"), str(dataset / "test" / "masks")])
    perfect = json.loads(capsys.readouterr().out)
    assert rc == 0 and perfect["f1"] == 1.0 and perfect["crack_iou"] == 1.0
    assert "ods" not in perfect


def test_train_calibrates_the_threshold_that_predict_uses(dataset, tmp_path, capsys):
    from napari_crack_al.core.model import load_checkpoint

    names = [f"s{i}" for i in range(6)]
    _write_set(tmp_path / "six", names, 3)
    model = tmp_path / "m.pt"
    rc = main(["train", str(tmp_path / "six" / "images"), str(tmp_path / "six" / "masks"),
               "--out", str(model), "--mode", "supervised", *TRAIN_ARGS])
    assert rc == 0
    out = capsys.readouterr().out
    ck = load_checkpoint(model)
    # one image in five is held out (floor(6 * 0.2) = 1) to calibrate the threshold
    assert len(ck.metadata["validation_images"]) == 1 and len(ck.metadata["labeled_images"]) == 5
    assert ck.metadata["threshold_source"] == "heldout"
    threshold = ck.metadata["threshold"]
    assert f"threshold {threshold:.2f} (calibrated on 1 held-out image(s))" in out
    pred = tmp_path / "pred"
    main(["predict", str(model), str(dataset / "test" / "images"), "--out", str(pred),
          "--probabilities", "--device", "cpu"])
    assert f"threshold {threshold:.2f} (the model's)" in capsys.readouterr().err
    prob = tifffile.imread(pred / "probabilities" / "t1.tif")
    assert np.array_equal(read_mask(pred / "t1.png"), prob > threshold)
    # --threshold overrides the model's (and --force replaces the masks written above)
    main(["predict", str(model), str(dataset / "test" / "images"), "--out", str(pred),
          "--threshold", "0.9", "--device", "cpu", "--force"])
    assert np.array_equal(read_mask(pred / "t1.png"), prob > 0.9)
    # --val-fraction 0 trains on every image; the threshold is then 0.5
    rc = main(["train", str(tmp_path / "six" / "images"), str(tmp_path / "six" / "masks"),
               "--out", str(model), "--mode", "supervised", "--val-fraction", "0", *TRAIN_ARGS])
    ck = load_checkpoint(model)
    assert rc == 0 and ck.metadata["threshold"] == 0.5 and ck.metadata["validation_images"] == []
    assert ck.metadata["threshold_source"] == "default"


def test_predict_never_replaces_files_unasked(dataset, trained, tmp_path, capsys):
    """Existing masks (or the input images themselves) are not overwritten without --force."""
    pred = tmp_path / "pred"
    args = ["predict", str(trained), str(dataset / "test" / "images"), "--device", "cpu"]
    assert main([*args, "--out", str(pred)]) == 0
    before = (pred / "t1.png").read_bytes()
    capsys.readouterr()
    assert main([*args, "--out", str(pred)]) == 2
    err = capsys.readouterr().err
    assert "holds 2 file(s) this would replace (t1.png, t2.png)" in err and "--force" in err
    assert (pred / "t1.png").read_bytes() == before
    images = dataset / "test" / "images"
    for inside in (images, images / "sub"):
        assert main([*args, "--out", str(inside)]) == 2
        assert "image folder" in capsys.readouterr().err
    assert sorted(p.name for p in images.iterdir()) == ["t1.png", "t2.png"]
    assert main([*args, "--out", str(pred), "--force"]) == 0
    assert main(["predict", "builtin", str(images), "--out", str(pred)]) == 2  # builtin too


def test_predict_builtin_needs_no_model(dataset, tmp_path, capsys):
    pred = tmp_path / "builtin"
    rc = main(["predict", "builtin", str(dataset / "test" / "images"), "--out", str(pred),
               "--probabilities"])
    assert rc == 0
    assert sorted(p.name for p in pred.glob("*.png")) == ["t1.png", "t2.png"]
    assert "without a model" in capsys.readouterr().err
    evidence = tifffile.imread(pred / "probabilities" / "t1.tif")
    assert evidence.shape == (72, 72) and 0.0 <= evidence.min() <= evidence.max() <= 1.0
    rc = main(["evaluate", str(pred), str(dataset / "test" / "masks")])
    metrics = json.loads(capsys.readouterr().out)
    assert rc == 0 and metrics["n_images"] == 2 and metrics["f1_tol2"] > 0.3
    rc = main(["predict", "builtin", str(dataset / "test" / "images"), "--out", str(pred),
               "--threshold", "0.3"])
    assert rc == 2 and "--threshold applies to a model" in capsys.readouterr().err


def test_predict_rgb_photo(dataset, trained, tmp_path, capsys):
    pred = tmp_path / "p"
    rc = main(["predict", str(trained), str(dataset / "train" / "images"), "--out", str(pred),
               "--device", "cpu"])
    assert rc == 0 and (pred / "photo.png").is_file()


def test_error_missing_folder(tmp_path, capsys):
    rc = main(["train", str(tmp_path / "nope"), str(tmp_path / "masks"), "--out",
               str(tmp_path / "m.pt"), *TRAIN_ARGS])
    err = capsys.readouterr().err
    assert rc == 2 and "nope" in err and "does not exist" in err
    rc = main(["evaluate", str(tmp_path / "missing_pred"), str(tmp_path)])
    assert rc == 2 and "missing_pred" in capsys.readouterr().err


def test_error_unpaired_names(dataset, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for p in (dataset / "train" / "images").glob("*.png"):
        (images / p.name).write_bytes(p.read_bytes())
    (images / "stray_image.png").write_bytes((dataset / "unl" / "images" / "u1.png").read_bytes())
    rc = main(["train", str(images), str(dataset / "train" / "masks"), "--out",
               str(tmp_path / "m.pt"), *TRAIN_ARGS])
    err = capsys.readouterr().err
    assert rc == 2 and "stray_image" in err
    assert err.count("\n") == 1  # one clear line, no traceback
    assert not (tmp_path / "m.pt").exists()
    # evaluate: a prediction without ground truth
    preds = tmp_path / "preds"
    preds.mkdir()
    write_mask(preds / "t1.png", np.zeros((72, 72), bool))
    write_mask(preds / "extra_pred.png", np.zeros((72, 72), bool))
    rc = main(["evaluate", str(preds), str(dataset / "test" / "masks")])
    assert rc == 2 and "extra_pred" in capsys.readouterr().err


def test_error_bad_model_file(dataset, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    rc = main(["predict", str(bad), str(dataset / "test" / "images"), "--out", str(tmp_path / "o")])
    assert rc == 2 and "bad.pt" in capsys.readouterr().err


def test_console_exit_code(tmp_path):
    res = subprocess.run([sys.executable, "-m", "napari_crack_al.cli.main", "evaluate",
                          str(tmp_path / "a"), str(tmp_path / "b")], capture_output=True, text=True)
    assert res.returncode == 2 and "error:" in res.stderr and str(tmp_path / "a") in res.stderr


@pytest.fixture(scope="module")
def random_model(tmp_path_factory) -> Path:
    """A randomly initialised checkpoint: its probabilities spread around 0.5, so mask equality is a strong check."""
    from napari_crack_al.core.model import build_model, preset_config, save_checkpoint

    torch.manual_seed(0)
    config = preset_config("fast")
    path = tmp_path_factory.mktemp("random") / "random.pt"
    save_checkpoint(path, build_model(config).eval(), model_config=config,
                    train_config={"profile": "none"}, metadata={"note": "random init"})
    return path


@pytest.mark.parametrize("fmt,suffix", [("torchscript", ".pt"), ("onnx", ".onnx")])
def test_predict_accepts_exported_model(dataset, random_model, tmp_path, fmt, suffix):
    """`predict` on an `export-model` file writes the same masks and probabilities as on the checkpoint."""
    if fmt == "onnx":
        pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    exported = tmp_path / f"exported{suffix}"
    assert main(["export-model", str(random_model), "--out", str(exported), "--format", fmt]) == 0
    images = dataset / "test" / "images"
    for model, out in ((random_model, "orig"), (exported, "exp")):
        assert main(["predict", str(model), str(images), "--out", str(tmp_path / out),
                     "--device", "cpu", "--probabilities"]) == 0
    for name in ("t1", "t2"):
        a = read_mask(tmp_path / "orig" / f"{name}.png")
        b = read_mask(tmp_path / "exp" / f"{name}.png")
        pa = tifffile.imread(tmp_path / "orig" / "probabilities" / f"{name}.tif")
        pb = tifffile.imread(tmp_path / "exp" / "probabilities" / f"{name}.tif")
        assert a.shape == (72, 72)
        assert pa.std() > 1e-3 and 0 < a.sum() < a.size  # a real, non-constant prediction
        assert np.abs(pa - pb).max() < 1e-4
        decided = np.abs(pa - 0.5) > 1e-4  # pixels not within float noise of the threshold
        assert np.array_equal(a[decided], b[decided]), name


def test_train_argument_errors(dataset, tmp_path, capsys):
    base = ["train", str(dataset / "train" / "images"), str(dataset / "train" / "masks"),
            "--out", str(tmp_path / "m.pt"), *TRAIN_ARGS]
    assert main([*base, "--val-images", str(dataset / "test" / "images")]) == 2
    assert "--val-images and --val-masks go together" in capsys.readouterr().err
    assert main([*base, "--val-images", str(dataset / "test" / "images"), "--val-masks",
                 str(dataset / "test" / "masks"), "--val-fraction", "0.3"]) == 2
    assert "not both" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main([*base, "--encoder-weights", str(tmp_path / "resnet18.pth")])
    assert info.value.code == 2 and "resnet18.pth does not exist" in capsys.readouterr().err
    assert not (tmp_path / "m.pt").exists()


def test_train_refuses_masks_in_the_image_folder(dataset, tmp_path, capsys):
    images = dataset / "train" / "images"
    assert main(["train", str(images), str(images), "--out", str(tmp_path / "m.pt"),
                 *TRAIN_ARGS]) == 2
    assert "is the image folder; the masks must be in a folder of their own" in \
        capsys.readouterr().err
