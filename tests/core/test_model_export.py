"""Model export (TorchScript / ONNX): equivalence, metadata, plain-torch use, bad inputs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_crack_al.cli.main import main
from napari_crack_al.core.errors import CheckpointError, ExportError
from napari_crack_al.core.export.exported_model import (
    ExportedModel,
    load_any_model,
    model_file_kind,
    read_export_metadata,
)
from napari_crack_al.core.export.model_export import (
    EXPORT_SCHEMA,
    export_model,
    sidecar_path,
)
from napari_crack_al.core.inference import predict_image
from napari_crack_al.core.model import ModelConfig, build_model, save_checkpoint
from napari_crack_al.core.normalize import normalize_for_model
from napari_crack_al.core.io.range_io import read_range_image
from napari_crack_al.core.sample_project import write_sample_images

DOC = Path(__file__).resolve().parents[2] / "docs" / "model-export-and-report.md"
TINY = ModelConfig(encoder="resnet18", decoder_channels=8, low_level_channels=4, rep_dim=8,
                   dropout=0.0)
META = {"round": 3, "labeled_images": ["a", "b"], "metrics": {"f1": 0.5}}


def _tiny_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(TINY)
    # non-trivial BatchNorm statistics, so that eval mode differs from train mode
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("export")
    model = _tiny_model()
    ckpt = save_checkpoint(root / "ckpt.pt", model, model_config=TINY,
                           train_config={"profile": "none", "seed": 1}, metadata=META)
    write_sample_images(root / "sample", n=2, size=(64, 96), seed=0)
    images = sorted((root / "sample" / "images").glob("*.png"))
    ts = export_model(ckpt, root / "model.pt")
    return {"root": root, "model": model, "ckpt": ckpt, "images": images, "ts": ts}


def _inputs(setup) -> list[np.ndarray]:
    return [normalize_for_model(read_range_image(p)) for p in setup["images"]]


def _assert_same_predictions(original, exported, images) -> None:
    for x in images:
        for tile in (512, 64):  # one pass, then tiled with overlap (64 x 96 -> 2 tiles)
            a = predict_image(original, x, tile=tile, overlap=16)
            b = predict_image(exported, x, tile=tile, overlap=16)
            assert a.probability.std() > 1e-3  # a constant map would make the check vacuous
            assert np.abs(a.probability - b.probability).max() < 1e-4
            assert np.array_equal(a.probability > 0.5, b.probability > 0.5)
            assert np.abs(a.entropy - b.entropy).max() < 1e-3


def test_torchscript_export_predicts_like_the_original(setup):
    result = setup["ts"]
    assert result.fmt == "torchscript" and result.max_abs_diff is not None
    assert result.max_abs_diff < 1e-4
    model, info = load_any_model(result.path, device="cpu")
    assert isinstance(model, ExportedModel) and info.kind == "torchscript"
    assert not any(isinstance(m, type(setup["model"])) for m in model.modules())
    assert info.profile == "none" and info.metadata["round"] == 3
    _assert_same_predictions(setup["model"], model, _inputs(setup))


def test_onnx_export_predicts_like_the_original(setup):
    pytest.importorskip("onnx", reason="onnx is not installed (pip install napari-crack-al[onnx])")
    ort = pytest.importorskip("onnxruntime",
                              reason="onnxruntime is not installed (napari-crack-al[onnx])")
    out = setup["root"] / "model.onnx"
    result = export_model(setup["ckpt"], out)
    assert result.fmt == "onnx" and result.max_abs_diff is not None and result.max_abs_diff < 1e-4
    assert model_file_kind(out) == "onnx"
    model, info = load_any_model(out)
    assert info.kind == "onnx" and info.model_config == TINY.to_dict()
    _assert_same_predictions(setup["model"], model, _inputs(setup))
    # the metadata is readable with onnxruntime alone, as the docs show
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = json.loads(session.get_modelmeta().custom_metadata_map["crack_al.json"])
    assert meta["format"] == EXPORT_SCHEMA and meta["export_format"] == "onnx"
    assert json.loads(sidecar_path(out).read_text()) == meta


def test_onnx_export_without_onnx_is_a_clear_error(setup, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    out = setup["root"] / "none.onnx"
    with pytest.raises(ExportError, match=r"napari-crack-al\[onnx\]"):
        export_model(setup["ckpt"], out)
    assert not out.exists() and not sidecar_path(out).exists()


def _run_isolated(code: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``code`` with ``python -I`` in ``cwd`` where ``import napari_crack_al`` fails."""
    guard = ("import sys\nsys.modules['napari_crack_al'] = None\n"
             "try:\n    import napari_crack_al\nexcept ImportError:\n    pass\n"
             "else:\n    raise SystemExit('napari_crack_al is importable')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-I", "-c", guard + code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_metadata_round_trip_without_the_package(setup, tmp_path):
    path = setup["ts"].path
    meta = read_export_metadata(path)
    assert meta == json.loads(sidecar_path(path).read_text())
    assert meta["model_config"] == TINY.to_dict()
    assert meta["normalization"]["profile"] == "none"
    assert meta["class_names"] == ["background", "crack"] and meta["in_channels"] == 1
    assert meta["source_checkpoint"]["metadata"]["labeled_images"] == ["a", "b"]
    assert re.fullmatch(r"[0-9a-f]{64}", meta["source_checkpoint"]["sha256"])
    code = (
        "import json, zipfile, torch\n"
        f"p = {str(path)!r}\n"
        "z = zipfile.ZipFile(p)\n"
        "name = next(n for n in z.namelist() if n.endswith('extra/crack_al.json'))\n"
        "a = json.loads(z.read(name))\n"
        "extra = {'crack_al.json': ''}\n"
        "torch.jit.load(p, _extra_files=extra)\n"
        "b = json.loads(extra['crack_al.json'])\n"
        "assert a == b\n"
        "print(json.dumps(a['model_config'], sort_keys=True))\n"
    )
    res = _run_isolated(code, tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == TINY.to_dict()


def test_documented_plain_torch_snippet_runs_without_the_package(setup, tmp_path):
    text = DOC.read_text(encoding="utf-8")
    snippet = re.search(r"<!-- snippet: plain-torch -->\s*```python\n(.*?)```", text, re.S).group(1)
    assert len(snippet.strip().splitlines()) <= 12
    image = setup["images"][0]
    (tmp_path / "model.pt").write_bytes(setup["ts"].path.read_bytes())
    (tmp_path / "image.png").write_bytes(image.read_bytes())
    res = _run_isolated(snippet, tmp_path)
    assert res.returncode == 0, res.stderr
    prob = np.load(tmp_path / "probability.npy")
    mask = np.load(tmp_path / "mask.npy")
    expected = predict_image(setup["model"], normalize_for_model(read_range_image(image)),
                             tile=512).probability
    assert prob.shape == expected.shape == (64, 96)
    assert np.abs(prob - expected).max() < 1e-4
    assert np.array_equal(mask, expected > 0.5)


def test_truncated_or_unsafe_checkpoint_is_refused(setup, tmp_path):
    data = setup["ckpt"].read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        export_model(truncated, tmp_path / "a.pt")
    marker = tmp_path / "pwned"
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"format": "napari-crack-al/1", "x": _Evil(str(marker))}, unsafe)
    with pytest.raises(CheckpointError, match="unsafe"):
        export_model(unsafe, tmp_path / "b.pt")
    assert not marker.exists()
    assert not (tmp_path / "a.pt").exists() and not (tmp_path / "b.pt").exists()
    # a truncated export is refused by the loader too
    bad = tmp_path / "bad_export.pt"
    bad.write_bytes(setup["ts"].path.read_bytes()[:5000])
    with pytest.raises(CheckpointError):
        load_any_model(bad)


class _Evil:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_export_refuses_to_overwrite_without_force(setup, tmp_path):
    out = tmp_path / "m.pt"
    out.write_bytes(b"keep")
    with pytest.raises(ExportError, match="would overwrite m.pt"):
        export_model(setup["ckpt"], out)
    assert out.read_bytes() == b"keep" and not sidecar_path(out).exists()
    result = export_model(setup["ckpt"], out, force=True)
    assert result.overwritten == (out,)
    assert model_file_kind(out) == "torchscript" and sidecar_path(out).is_file()
    with pytest.raises(ExportError, match="folder does not exist"):
        export_model(setup["ckpt"], tmp_path / "missing" / "m.pt")


def test_load_any_model_names_a_file_of_another_kind(tmp_path):
    from PIL import Image

    for name in ("photo.pt", "photo.onnx"):
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / name, format="PNG")
    (tmp_path / "noise.pt").write_bytes(np.random.default_rng(0).bytes(256))
    cases = [("photo.pt", "not a PyTorch checkpoint (looks like a PNG image)"),
             ("photo.onnx", "not an ONNX model (looks like a PNG image)"),
             ("noise.pt", "not a PyTorch checkpoint (unrecognised content)")]
    for name, problem in cases:
        with pytest.raises(CheckpointError) as info:
            load_any_model(tmp_path / name)
        assert str(info.value) == f"{tmp_path / name}: {problem}"


def test_load_any_model_reads_a_checkpoint(setup):
    model, info = load_any_model(setup["ckpt"])
    assert info.kind == "checkpoint" and info.profile == "none"
    assert info.export_metadata is None and info.metadata["round"] == 3
    assert isinstance(model, type(setup["model"]))


def test_export_model_cli(setup, tmp_path, capsys):
    out = tmp_path / "cli.pt"
    assert main(["export-model", str(setup["ckpt"]), "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"exported torchscript model to {out} with cli.pt.json (verified")
    assert read_export_metadata(out)["export_format"] == "torchscript"
    assert main(["export-model", str(setup["ckpt"]), "--out", str(out)]) == 2
    assert "would overwrite" in capsys.readouterr().err
    assert main(["export-model", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "x.pt")]) == 2
    assert "file does not exist" in capsys.readouterr().err


def test_an_onnx_model_asked_for_a_device_it_cannot_use_says_it_runs_on_the_cpu(setup, caplog):
    pytest.importorskip("onnx", reason="onnx is not installed (pip install napari-crack-al[onnx])")
    ort = pytest.importorskip("onnxruntime",
                              reason="onnxruntime is not installed (napari-crack-al[onnx])")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime can run on CUDA")
    out = setup["root"] / "device.onnx"
    export_model(setup["ckpt"], out, force=True)
    with caplog.at_level("WARNING"):
        load_any_model(out, device="cuda")
    assert "the ONNX model runs on the CPU" in caplog.text and "device.onnx" in caplog.text
