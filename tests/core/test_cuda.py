"""The GPU path: a semi-supervised round with mixed precision, inference with autocast, the
out-of-memory advice for a real CUDA error, and the GPU memory given back after a round.

Every test here is marked ``cuda``: skipped without a CUDA GPU (``tests/conftest.py``), run by
``benchmarks/gpu_check.sh`` (``pytest -m cuda``). CI never has a GPU.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch

from napari_crack_al.core.events import MessageEvent, StepEvent
from napari_crack_al.core.io.range_io import RangeImage
from napari_crack_al.core.synthetic import SyntheticConfig, generate_range_image
from napari_crack_al.core.training.config import TrainConfig
from napari_crack_al.core.training.data import TrainingImage, from_range_image
from napari_crack_al.core.training.trainer import TrainResult, train

pytestmark = pytest.mark.cuda

SMALL = SyntheticConfig(size=96, width_px=(2, 6), depth_mm=(2, 5), texture_mm=0.3,
                        distractors=False, no_crack_fraction=0.0)
STEPS, WARMUP = 6, 2

#: Largest difference allowed between the crack probability predicted on CUDA under autocast
#: (bfloat16 where supported, else float16) and in float32 on the CPU. Measured on the CPU with
#: bfloat16 autocast for a model trained 6 steps (300² image, 128 px tiles): max 0.019, mean
#: 0.0006 (float16: max 0.002). bfloat16 keeps 8 bits of mantissa (relative error 2^-8 per
#: operation); p = softmax of two logits has a slope of at most 1/4, so a 0.05 difference
#: needs a logit error of 0.2: far beyond rounding, as from an overflow or a blending bug.
PROBABILITY_TOLERANCE = 0.05
MEAN_TOLERANCE = 0.005


def _item(i: int, labeled: bool = True, cfg: SyntheticConfig = SMALL) -> TrainingImage:
    s = generate_range_image((7, i), cfg)
    ri = RangeImage(s.range_image.astype(np.float32), s.range_image > 0, None, "uint16")
    return from_range_image(ri, s.mask if labeled else None, name=f"img{i:03d}")


@pytest.fixture(scope="module")
def data() -> dict[str, list[TrainingImage]]:
    return {"labeled": [_item(i) for i in range(2)],
            "unlabeled": [_item(i, labeled=False) for i in range(2, 5)]}


def _cfg(**kw) -> TrainConfig:
    """A short semi round on CUDA with mixed precision; the gate opens after the warm-up."""
    base = dict(iterations=STEPS, crop_size=64, batch_size=2, unlabeled_batch_size=2,
                warmup_iterations=WARMUP, semi_entry_f1=0.0, unsup_ramp=0.0, cutmix_prob=1.0,
                threads=1, seed=0, device="cuda", amp=True)
    base.update(kw)
    return TrainConfig(**base)


def _drain(gen) -> tuple[list, TrainResult]:
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return events, stop.value


def _weight_bytes(preset: str = "fast") -> int:
    """Bytes of one float32 copy of a preset's weights (built on the CPU)."""
    from napari_crack_al.core.model import build_model, preset_config

    model = build_model(preset_config(preset))
    return sum(p.numel() * p.element_size() for p in model.parameters())


def _settled_allocated() -> int:
    """CUDA memory held by live tensors once garbage is collected and the cache emptied."""
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    return torch.cuda.memory_allocated()


@pytest.fixture(scope="module")
def cuda_round(data, tmp_path_factory) -> tuple[list, TrainResult]:
    out = tmp_path_factory.mktemp("cuda_round")
    return _drain(train(data["labeled"], data["unlabeled"], _cfg(), out_dir=out))


def test_a_semi_round_runs_on_cuda_with_mixed_precision(cuda_round):
    events, result = cuda_round
    texts = [e.text for e in events if isinstance(e, MessageEvent)]
    device = next(t for t in texts if t.startswith("device: "))
    assert device.startswith("device: CUDA") and device.endswith("with mixed precision"), device
    assert any(f"semi-supervised phase from step {WARMUP + 1}" in t for t in texts), texts
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert [s.step for s in steps] == list(range(1, STEPS + 1))
    for s in steps:
        assert np.isfinite(list(s.losses.values())).all(), s.losses
    for s in steps[WARMUP:]:  # U2PL under autocast: pseudo labels and contrastive loss used
        assert s.losses["unsup"] > 0.0 and s.losses["contrastive"] > 0.0, s.losses
    assert not result.cancelled and result.steps == STEPS and result.mode == "semi"
    assert np.isfinite(list(result.losses.values())).all()


def test_the_cuda_checkpoint_loads_safely_and_predicts_a_mask(cuda_round, data):
    from napari_crack_al.core.calibration import model_threshold
    from napari_crack_al.core.inference import predict_image
    from napari_crack_al.core.model import load_checkpoint, load_model

    path = cuda_round[1].checkpoint
    raw = torch.load(path, map_location="cpu", weights_only=True)  # no pickled objects
    assert raw["metadata"]["device"].startswith("cuda")
    ckpt = load_checkpoint(path)
    floats = [v for v in ckpt.state_dict.values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float32 for v in floats)  # amp kept float32 weights
    assert all(bool(torch.isfinite(v).all()) for v in floats)
    model, ckpt = load_model(path, device="cuda")
    assert next(model.parameters()).is_cuda
    image = data["labeled"][0].image
    pred = predict_image(model, image, tile=64, overlap=16)
    prob = pred.probability
    assert prob.shape == image.shape and prob.dtype == np.float32
    assert np.isfinite(prob).all() and prob.min() >= 0.0 and prob.max() <= 1.0
    mask = prob > model_threshold(ckpt.metadata)
    assert mask.shape == image.shape and mask.dtype == bool


def test_inference_with_autocast_matches_float32_on_the_cpu(cuda_round):
    from napari_crack_al.core.inference import predict_image
    from napari_crack_al.core.model import load_model

    path = cuda_round[1].checkpoint
    cpu_model, _ = load_model(path, device="cpu")
    gpu_model, _ = load_model(path, device="cuda")
    dtypes: list[torch.dtype] = []
    stem = next(m for m in gpu_model.modules() if isinstance(m, torch.nn.Conv2d))
    hook = stem.register_forward_hook(lambda _m, _i, out: dtypes.append(out.dtype))
    image = _item(60, cfg=SyntheticConfig(size=300)).image  # 3 x 3 tiles of 128: blending too
    try:
        gpu = predict_image(gpu_model, image, tile=128, overlap=32)
    finally:
        hook.remove()
    cpu = predict_image(cpu_model, image, tile=128, overlap=32)
    assert dtypes and set(dtypes) <= {torch.float16, torch.bfloat16}, dtypes  # autocast was on
    assert gpu.probability.dtype == np.float32 and gpu.probability.shape == image.shape
    assert np.isfinite(gpu.probability).all() and np.isfinite(gpu.entropy).all()
    assert cpu.probability.std() > 0.01  # not a constant map that any path would match
    diff = np.abs(gpu.probability - cpu.probability)
    assert diff.max() < PROBABILITY_TOLERANCE, f"max |diff| {diff.max():.4f}"
    assert diff.mean() < MEAN_TOLERANCE, f"mean |diff| {diff.mean():.5f}"


def test_memory_is_given_back_after_a_round(cuda_round, data, tmp_path):
    """No model, teacher, optimiser state or batch stays on the GPU once a round returned.

    The module's first round ran before (``cuda_round``): cuDNN / cuBLAS workspaces that
    live as long as the process are already allocated and count in both measurements.
    """
    weights = _weight_bytes()
    before = _settled_allocated()
    torch.cuda.reset_peak_memory_stats()
    events, result = _drain(train(data["labeled"], data["unlabeled"], _cfg(seed=1),
                                  out_dir=tmp_path))
    peak = torch.cuda.max_memory_allocated()
    assert result.checkpoint is not None and len(events) > STEPS
    del events, result
    after = _settled_allocated()
    # the round really worked on the GPU: student + teacher + momentum are 3 copies
    assert peak - before > 3 * weights, (peak, before, weights)
    assert after - before < weights // 4, (
        f"{(after - before) / 2**20:.1f} MiB still allocated after the round "
        f"(one copy of the weights is {weights / 2**20:.1f} MiB)")


def test_a_real_cuda_out_of_memory_gives_the_advice(cuda_round, tmp_path, monkeypatch, capsys):
    """A forward that really exhausts the GPU: the CLI prints the advice, frees the memory."""
    from skimage.io import imsave

    from napari_crack_al.cli.main import main
    from napari_crack_al.core.io.mask_io import write_mask
    from napari_crack_al.core.memory_advice import CLI_OUT_OF_MEMORY_ADVICE, is_out_of_memory
    from napari_crack_al.core.model import segmenter

    with pytest.raises(torch.cuda.OutOfMemoryError) as info:
        torch.empty(1 << 50, dtype=torch.uint8, device="cuda")  # 1 PiB
    assert is_out_of_memory(info.value)
    del info
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    for i in range(2):
        s = generate_range_image((8, i), SMALL)
        imsave(tmp_path / "images" / f"im{i}.png", s.range_image, check_contrast=False)
        write_mask(tmp_path / "masks" / f"im{i}.png", s.mask)
    devices = []

    def exhausting(self, x, *args, **kwargs):
        devices.append(x.device.type)
        torch.empty(1 << 50, dtype=torch.uint8, device=x.device)  # raises on CUDA
        return original(self, x, *args, **kwargs)

    original = segmenter.CrackSegmenter.forward
    monkeypatch.setattr(segmenter.CrackSegmenter, "forward", exhausting)
    before = _settled_allocated()
    out = tmp_path / "model.pt"
    rc = main(["train", str(tmp_path / "images"), str(tmp_path / "masks"), "--out", str(out),
               "--iterations", "3", "--crop-size", "64", "--batch-size", "2", "--threads", "1",
               "--val-fraction", "0", "--device", "cuda"])
    err = capsys.readouterr().err
    assert devices and devices[0] == "cuda", devices
    assert rc == 2, err
    assert "device: CUDA" in err
    assert err.strip().splitlines()[-1] == f"error: {CLI_OUT_OF_MEMORY_ADVICE}"
    assert "Traceback" not in err and "Tried to allocate" not in err and not out.exists()
    assert _settled_allocated() - before < _weight_bytes() // 4  # the failed run let go too
