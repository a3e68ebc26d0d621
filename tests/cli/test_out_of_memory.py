"""An out-of-memory error during ``train``: the user gets advice, not a traceback (no GPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from skimage.io import imsave

from napari_crack_al.cli.main import main
from napari_crack_al.core.io.mask_io import write_mask
from napari_crack_al.core.memory_advice import CLI_OUT_OF_MEMORY_ADVICE
from napari_crack_al.core.model import segmenter
from napari_crack_al.core.synthetic import SyntheticConfig, generate_range_image

torch.set_num_threads(1)

CFG = SyntheticConfig(size=72, width_px=(2, 5), depth_mm=(2, 4), distractors=False,
                      no_crack_fraction=0.0)
TRAIN_ARGS = ["--iterations", "3", "--crop-size", "64", "--batch-size", "2", "--threads", "1",
              "--device", "cpu", "--val-fraction", "0"]
OOM_TYPE = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("oom")
    for sub in ("images", "masks"):
        (root / sub).mkdir()
    for i in range(2):
        s = generate_range_image((0, i), CFG)
        imsave(root / "images" / f"im{i}.png", s.range_image, check_contrast=False)
        write_mask(root / "masks" / f"im{i}.png", s.mask)
    return root


def _train(dataset: Path, out: Path) -> int:
    return main(["train", str(dataset / "images"), str(dataset / "masks"), "--out", str(out),
                 *TRAIN_ARGS])


@pytest.mark.parametrize("error", [
    OOM_TYPE("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 8 GiB"),
    RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (an older torch)"),
], ids=["OutOfMemoryError", "RuntimeError"])
def test_an_out_of_memory_forward_prints_the_advice(dataset, tmp_path, monkeypatch, capsys, error):
    calls = []

    def out_of_memory(self, x, *args, **kwargs):
        calls.append(tuple(x.shape))
        raise error

    monkeypatch.setattr(segmenter.CrackSegmenter, "forward", out_of_memory)
    rc = _train(dataset, tmp_path / "model.pt")
    err = capsys.readouterr().err
    assert calls, "the patched forward never ran: the test tested nothing"
    assert rc == 2
    assert err.strip().splitlines()[-1] == f"error: {CLI_OUT_OF_MEMORY_ADVICE}"
    assert "Traceback" not in err and "Tried to allocate" not in err
    assert not (tmp_path / "model.pt").exists()


def test_another_runtime_error_is_not_turned_into_advice(dataset, tmp_path, monkeypatch, capsys):
    """Only out-of-memory errors get advice; a bug still shows its traceback."""
    def broken(self, x, *args, **kwargs):
        raise RuntimeError("a bug in the model")

    monkeypatch.setattr(segmenter.CrackSegmenter, "forward", broken)
    with pytest.raises(RuntimeError, match="a bug in the model"):
        _train(dataset, tmp_path / "model.pt")
    assert "ran out of memory" not in capsys.readouterr().err
