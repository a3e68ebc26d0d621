"""Checkpoints: atomic save, exact round trip, and safe, clear failures on bad files."""

from __future__ import annotations

import os
import shlex
import zipfile

import numpy as np
import pytest
import torch

from napari_crack_al import __version__
from napari_crack_al.core.errors import CheckpointError
from napari_crack_al.core.model import (
    CHECKPOINT_FORMAT,
    ModelConfig,
    build_model,
    load_checkpoint,
    load_encoder_weights,
    load_model,
    save_checkpoint,
)

torch.set_num_threads(1)

CFG = ModelConfig(encoder="resnet18", decoder_channels=16, low_level_channels=8, rep_dim=8)


@pytest.fixture
def trained(tmp_path):
    """A tiny model whose weights and BN statistics differ from a fresh one, saved to disk."""
    torch.manual_seed(0)
    model = build_model(CFG).train()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
        model(torch.randn(2, 1, 64, 64))  # updates the BN running statistics
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, model_config=CFG, train_config={"lr": 0.01, "steps": 3},
                    metadata={"round": 2, "data": {"labelled": ["a", "b"]},
                              "metrics": {"iou": np.float32(0.25)}})
    return model.eval(), path


def test_round_trip_restores_identical_outputs(trained):
    model, path = trained
    x = torch.randn(1, 1, 72, 56)
    with torch.no_grad():
        expected = model(x).logits
    loaded, ckpt = load_model(path, "cpu")
    assert not loaded.training
    with torch.no_grad():
        got = loaded(x).logits
    assert torch.equal(got, expected)
    assert ckpt.model_config == CFG
    assert ckpt.train_config == {"lr": 0.01, "steps": 3}
    assert ckpt.metadata["round"] == 2
    assert ckpt.metadata["data"] == {"labelled": ["a", "b"]}
    assert ckpt.metadata["metrics"]["iou"] == pytest.approx(0.25)
    assert ckpt.metadata["package_version"] == __version__
    assert isinstance(ckpt.metadata["created_at"], float)
    assert ckpt.path == path


def test_file_holds_only_tensors_and_primitives(trained):
    _, path = trained
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"format", "state_dict", "model_config", "train_config", "metadata"}
    assert raw["format"] == CHECKPOINT_FORMAT
    assert raw["model_config"] == CFG.to_dict()
    assert all(v.device.type == "cpu" for v in raw["state_dict"].values())
    assert not [p for p in path.parent.iterdir() if p.name != path.name]  # no temp files left


def test_save_errors(tmp_path):
    model = build_model(CFG)
    with pytest.raises(CheckpointError, match="folder does not exist"):
        save_checkpoint(tmp_path / "missing" / "m.pt", model, model_config=CFG, metadata={})
    with pytest.raises(TypeError, match="metadata holds a value of type object"):
        save_checkpoint(tmp_path / "m.pt", model, model_config=CFG, metadata={"x": object()})
    with pytest.raises(ValueError, match="does not match"):
        save_checkpoint(tmp_path / "m.pt", model, model_config=ModelConfig(), metadata={})
    assert not (tmp_path / "m.pt").exists()


class _Evil:
    """Pickles to a call that would run a shell command creating a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


class _EvilOpen:
    """Pickles to builtins.open(marker, "w"), which would create the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("evil_cls", [_Evil, _EvilOpen])
def test_malicious_pickle_is_rejected_and_never_executed(tmp_path, evil_cls):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    payload = {"format": CHECKPOINT_FORMAT, "state_dict": build_model(CFG).state_dict(),
               "model_config": CFG.to_dict(), "train_config": {},
               "metadata": {"note": evil_cls(marker)}}
    torch.save(payload, path)
    assert not marker.exists()
    for load in (load_checkpoint, lambda p: load_model(p, "cpu"),
                 lambda p: load_encoder_weights(build_model(CFG), p)):
        with pytest.raises(CheckpointError, match="unsafe pickle") as info:
            load(path)
        assert str(path) in str(info.value)
    assert not marker.exists()


def test_truncated_and_foreign_files(tmp_path, trained):
    _, good = trained
    data = good.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated") as info:
        load_checkpoint(truncated)
    assert "truncated.pt" in str(info.value)

    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty or truncated"):
        load_checkpoint(empty)

    text = tmp_path / "notes.pt"
    text.write_text("hello, this is not a model")
    with pytest.raises(CheckpointError, match="notes.pt"):
        load_checkpoint(text)

    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "absent.pt")
    with pytest.raises(CheckpointError, match="is not a file"):
        load_checkpoint(tmp_path)

    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a napari-crack-al checkpoint"):
        load_checkpoint(foreign)

    future = tmp_path / "future.pt"
    torch.save({"format": "napari-crack-al/99"}, future)
    with pytest.raises(CheckpointError, match="unsupported checkpoint format"):
        load_checkpoint(future)


def _foreign_files(tmp_path):
    """(file, the phrase naming its content) for files that are no torch.save output."""
    from PIL import Image

    png = tmp_path / "photo.pt"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(png, format="PNG")
    noise = tmp_path / "noise.pt"
    noise.write_bytes(np.random.default_rng(0).bytes(256))
    assert noise.read_bytes()[:1] != b"\x80"  # not a pickle by chance
    arr = tmp_path / "array.pt"
    with open(arr, "wb") as fh:
        np.save(fh, np.ones(3))
    archive = tmp_path / "archive.pt"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("notes.txt", "hello")
    return [(png, "looks like a PNG image"), (noise, "unrecognised content"),
            (arr, "looks like a NumPy .npy array"),
            (archive, "looks like a zip archive that torch.save did not write")]


def test_a_file_of_another_kind_is_named_not_called_unsafe(tmp_path):
    for path, what in _foreign_files(tmp_path):
        for load in (load_checkpoint, lambda p: load_model(p, "cpu"),
                     lambda p: load_encoder_weights(build_model(CFG), p)):
            with pytest.raises(CheckpointError) as info:
                load(path)
            message = str(info.value)
            assert message == f"{path}: not a PyTorch checkpoint ({what})", message
            assert "unsafe" not in message and "\n" not in message


def test_legacy_torch_save_format_still_loads_with_weights_only(tmp_path, trained):
    model, good = trained
    legacy = tmp_path / "legacy.pt"
    payload = torch.load(good, weights_only=True)
    torch.save(payload, legacy, _use_new_zipfile_serialization=False)
    assert legacy.read_bytes()[:2] == b"\x80\x02"  # a pickle, not a zip archive
    ckpt = load_checkpoint(legacy)
    assert ckpt.metadata["round"] == 2 and ckpt.model_config == CFG


def test_incompatible_config_and_weights(tmp_path, trained):
    model, _ = trained
    sd = model.state_dict()
    bad_cfg = tmp_path / "badcfg.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "state_dict": sd,
                "model_config": {**CFG.to_dict(), "encoder": "resnet999"},
                "train_config": {}, "metadata": {}}, bad_cfg)
    with pytest.raises(CheckpointError, match="incompatible model configuration.*resnet18"):
        load_checkpoint(bad_cfg)

    other = tmp_path / "other.pt"
    cfg34 = ModelConfig(**{**CFG.to_dict(), "encoder": "resnet34"})
    torch.save({"format": CHECKPOINT_FORMAT, "state_dict": sd, "model_config": cfg34.to_dict(),
                "train_config": {}, "metadata": {}}, other)
    assert load_checkpoint(other).model_config == cfg34  # the file itself is readable ...
    with pytest.raises(CheckpointError, match="missing: encoder.layer1.2") as info:
        load_model(other)  # ... but the weights do not fit the stated architecture
    assert "other.pt" in str(info.value)


def test_checkpoint_from_before_decoders_loads_as_deeplabv3plus(tmp_path):
    """A file written before the decoder could be chosen has no "decoder" key: DeepLabV3+."""
    config = ModelConfig(encoder="resnet18", decoder="deeplabv3plus", decoder_channels=16,
                         low_level_channels=8, rep_dim=8)
    model = build_model(config)
    path = save_checkpoint(tmp_path / "old.pt", model, model_config=config)
    payload = torch.load(path, weights_only=True)
    del payload["model_config"]["decoder"], payload["model_config"]["refine_channels"]
    del payload["model_config"]["unet_channels"]
    torch.save(payload, path)
    loaded, ckpt = load_model(path)
    assert ckpt.model_config.decoder == "deeplabv3plus"
    x = torch.randn(1, 1, 64, 64)
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded(x).logits, model(x).logits)
