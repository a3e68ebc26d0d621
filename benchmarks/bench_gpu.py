"""GPU figures per model preset: training step time and peak memory, inference megapixels/s.

For every preset (``napari_crack_al.core.model.PRESETS``), at the preset's own crop and batch
size unless ``--crop`` / ``--batch`` say otherwise:

* **training**: the real trainer (``core.training.trainer.train``, mixed precision on CUDA as
  by default), a supervised run and a semi (U2PL, contrastive loss on) run on the synthetic
  512² images of ``bench_train_step.py``. A step's time runs from one ``StepEvent`` to the
  next, with ``torch.cuda.synchronize()`` at each; the first ``--warmup`` steps of each kind
  are not counted. The semi run opens its semi phase after ``--warmup`` supervised steps
  (``semi_entry_f1=0``: the gate always passes), and only steps that used the unlabelled
  batch (unsupervised loss > 0) count as semi steps. Median and minimum over ``--steps``
  steps; peak memory = ``torch.cuda.max_memory_allocated`` of the run.
* **inference**: ``predict_image`` (tile 512, overlap 64, 4 tiles per batch) on a
  ``--size``² synthetic image (a 1024² synthetic image repeated), with autocast (what
  ``predict_image`` does on CUDA: bfloat16 where supported, else float16) and in float32
  (autocast switched off); megapixels per second of the median of ``--repeats`` runs after
  a warm-up, and peak memory.

Prints a table and writes the figures as JSON to ``--out``. Without a CUDA GPU it prints
"no CUDA GPU: nothing measured" and exits 0 (the JSON then says ``"measured": false``);
``--device cpu`` runs the same code on the CPU as a dry run (use tiny settings).

    python benchmarks/bench_gpu.py --out gpu_bench.json [--presets fast accurate] [--steps 20]
                                   [--warmup 5] [--size 4096] [--repeats 3]
    python benchmarks/bench_gpu.py --device cpu --steps 2 --warmup 1 --crop 64 --batch 2 \\
                                   --size 256 --repeats 1 --presets fast --out /tmp/gb.json
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench_train_step import _config, _data  # the same synthetic data and configuration

NO_GPU = "no CUDA GPU: nothing measured"
TILE, OVERLAP, TILE_BATCH = 512, 64, 4


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20


def _step_times(gen: Any, device: torch.device) -> list[tuple[float, bool]]:
    """Drive a trainer; (seconds, semi?) of every step but the first (which has no start)."""
    from napari_crack_al.core.events import StepEvent

    steps: list[tuple[float, bool]] = []
    last = None
    for event in gen:
        if not isinstance(event, StepEvent):
            continue
        _sync(device)
        now = time.perf_counter()
        if last is not None:
            steps.append((now - last, event.losses.get("unsup", 0.0) > 0.0))
        last = now
    return steps


def _summary(seconds: list[float]) -> dict[str, Any]:
    if not seconds:
        return {"median_step_s": None, "min_step_s": None, "steps_measured": 0}
    return {"median_step_s": statistics.median(seconds), "min_step_s": min(seconds),
            "steps_measured": len(seconds)}


def bench_training(preset: str, crop: int, batch: int, steps: int, warmup: int,
                   device: torch.device, data: tuple[list, list]) -> dict[str, Any]:
    """Step times and peak memory of a supervised and a semi run of ``preset``.

    Parameters
    ----------
    preset : str
        A key of ``PRESETS``.
    crop, batch : int
        Training crop side and labelled (= unlabelled) batch size.
    steps, warmup : int
        Steps measured, and steps of each kind run first and not counted (at least 1: the
        first step of a run has no start to time from).
    device : torch.device
    data : (labelled, unlabelled)
        Training images (``bench_train_step._data()``).

    Returns
    -------
    dict
        ``{"supervised": {...}, "semi": {...}}``: median and minimum seconds per step, the
        steps measured and the peak memory in MiB (None on the CPU).
    """
    from napari_crack_al.core.training.trainer import train

    labeled, unlabeled = data
    warmup = max(1, warmup)
    out: dict[str, Any] = {"crop": crop, "batch": batch}
    for mode in ("supervised", "semi"):
        semi = mode == "semi"
        # semi: `warmup` supervised steps, the gate opens (bar 0; on the labelled crops, so it
        # may open a few steps late: `warmup` more steps of slack), `warmup` semi steps, `steps`
        total = 3 * warmup + steps if semi else warmup + steps
        cfg = dataclasses.replace(_config(mode, preset, crop, batch, total, str(device)),
                                  warmup_iterations=warmup, semi_entry_f1=0.0,
                                  val_every=0, checkpoint_every=0)
        _reset_peak(device)
        with tempfile.TemporaryDirectory() as tmp:
            times = _step_times(train(labeled, unlabeled if semi else [], cfg,
                                      checkpoint_path=Path(tmp) / "m.pt"), device)
        kept = [s for s, is_semi in times if is_semi == semi]
        # `times` starts at step 2: drop steps 2..warmup (supervised) or the first semi steps
        row = _summary(kept[warmup:warmup + steps] if semi else kept[warmup - 1:])
        row["peak_mib"] = _peak_mib(device)
        out[mode] = row
    return out


@contextlib.contextmanager
def _autocast_off() -> Iterator[None]:
    """Inference in float32 on CUDA too (``predict_image`` has no switch for autocast)."""
    from napari_crack_al.core import inference

    original = inference._autocast  # a private name: fail loudly if it is renamed
    inference._autocast = lambda device: contextlib.nullcontext()
    try:
        yield
    finally:
        inference._autocast = original


def _large_image(size: int) -> np.ndarray:
    """A ``size``² normalised synthetic image (a 1024² synthetic image repeated)."""
    from napari_crack_al.core.io.range_io import RangeImage
    from napari_crack_al.core.synthetic import SyntheticConfig, generate_range_image
    from napari_crack_al.core.training.data import from_range_image

    base = generate_range_image((0, 99), SyntheticConfig(size=min(size, 1024)))
    ri = RangeImage(base.range_image.astype(np.float32), base.range_image > 0, None, "uint16")
    tile = from_range_image(ri).image
    reps = -(-size // tile.shape[0])
    return np.ascontiguousarray(np.tile(tile, (reps, reps))[:size, :size])


def _time_inference(model: torch.nn.Module, image: np.ndarray, repeats: int,
                    device: torch.device) -> dict[str, Any]:
    from napari_crack_al.core.inference import predict_image

    dtypes: list[str] = []
    stem = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    hook = stem.register_forward_hook(lambda _m, _i, out: dtypes.append(str(out.dtype)))
    warm = image[:min(1024, image.shape[0]), :min(1024, image.shape[1])]
    try:
        predict_image(model, warm, tile=TILE, overlap=OVERLAP, batch_size=TILE_BATCH)
        _reset_peak(device)
        times = []
        for _ in range(repeats):
            _sync(device)
            t = time.perf_counter()
            predict_image(model, image, tile=TILE, overlap=OVERLAP, batch_size=TILE_BATCH)
            _sync(device)
            times.append(time.perf_counter() - t)
    finally:
        hook.remove()
    med = statistics.median(times)
    return {"median_s": med, "mpx_per_s": image.size / med / 1e6, "runs": repeats,
            "dtype": sorted(set(dtypes)), "peak_mib": _peak_mib(device)}


def bench_inference(preset: str, size: int, repeats: int, device: torch.device) -> dict[str, Any]:
    """Tiled inference of a ``size``² image by a (randomly initialised) ``preset`` model.

    Returns
    -------
    dict
        ``{"size": ..., "autocast": {...}, "float32": {...}}``: median seconds, megapixels
        per second, the dtype the first convolution computed in, peak memory in MiB.
    """
    from napari_crack_al.core.model import PRESETS, build_model

    from napari_crack_al.core.device import configure_threads

    configure_threads(0)  # the trainer left torch on its own thread count
    torch.manual_seed(0)
    model = build_model(PRESETS[preset].model).to(device).eval()
    image = _large_image(size)
    out: dict[str, Any] = {"size": size, "autocast": _time_inference(model, image, repeats, device)}
    with _autocast_off():
        out["float32"] = _time_inference(model, image, repeats, device)
    del model
    return out


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def print_table(report: dict[str, Any]) -> None:
    """The report as two small tables."""
    s = report["settings"]
    print(f"device: {report['device']}; torch {report['torch']}, CUDA {report['cuda']}")
    print(f"training: s/step median / min over {s['steps']} steps ({s['warmup']} warm-up steps "
          "of each kind not counted); peak = torch.cuda.max_memory_allocated")
    print(f"  {'preset':9s} {'crop':>5s} {'batch':>5s} {'supervised s/step':>18s} "
          f"{'semi s/step':>16s} {'peak sup MiB':>12s} {'peak semi MiB':>13s}")
    for name, row in report["training"].items():
        sup, semi = row["supervised"], row["semi"]
        print(f"  {name:9s} {row['crop']:5d} {row['batch']:5d} "
              f"{_fmt(sup['median_step_s'], '.3f'):>8s} / {_fmt(sup['min_step_s'], '.3f'):<7s} "
              f"{_fmt(semi['median_step_s'], '.3f'):>7s} / {_fmt(semi['min_step_s'], '.3f'):<6s} "
              f"{_fmt(sup['peak_mib'], '.0f'):>12s} {_fmt(semi['peak_mib'], '.0f'):>13s}")
    print(f"inference: predict_image, tile {TILE}, overlap {OVERLAP}, {TILE_BATCH} tiles per "
          f"batch, {s['size']}² image, median of {s['repeats']} runs")
    print(f"  {'preset':9s} {'autocast Mpx/s':>15s} {'dtype':>16s} {'float32 Mpx/s':>14s} "
          f"{'peak MiB (autocast / fp32)':>27s}")
    for name, row in report["inference"].items():
        ac, fp = row["autocast"], row["float32"]
        print(f"  {name:9s} {ac['mpx_per_s']:15.2f} {','.join(ac['dtype']):>16s} "
              f"{fp['mpx_per_s']:14.2f} {_fmt(ac['peak_mib'], '.0f'):>13s} / "
              f"{_fmt(fp['peak_mib'], '.0f')}")


def _device(name: str) -> torch.device | None:
    """The device to measure on: the CPU only when asked, else a CUDA GPU (None: there is none)."""
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        return None
    return torch.device("cuda" if name == "auto" else name)


def main(argv: list[str] | None = None) -> int:
    """Measure, print and write the figures; returns the exit code (0 without a GPU too)."""
    from napari_crack_al.core.model import PRESETS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto",
                    help="auto / cuda / cuda:N (a GPU), or cpu (a dry run)")
    ap.add_argument("--out", type=Path, default=Path("gpu_bench.json"), help="JSON report")
    ap.add_argument("--presets", nargs="+", choices=list(PRESETS), default=list(PRESETS))
    ap.add_argument("--steps", type=int, default=20, help="training steps measured per run")
    ap.add_argument("--warmup", type=int, default=5, help="steps of each kind not counted")
    ap.add_argument("--crop", type=int, default=None, help="training crop (default: the preset's)")
    ap.add_argument("--batch", type=int, default=None, help="batch size (default: the preset's)")
    ap.add_argument("--size", type=int, default=4096, help="side of the inference image")
    ap.add_argument("--repeats", type=int, default=3, help="inference runs per setting")
    args = ap.parse_args(argv)
    device = _device(args.device)
    if device is None:
        print(NO_GPU)
        args.out.write_text(json.dumps({"measured": False, "reason": NO_GPU}, indent=2) + "\n")
        return 0
    from napari_crack_al.core.device import describe_device

    report: dict[str, Any] = {
        "measured": True, "device": describe_device(device), "torch": torch.__version__,
        "cuda": torch.version.cuda, "settings": {k: (str(v) if isinstance(v, Path) else v)
                                                 for k, v in vars(args).items()},
        "training": {}, "inference": {}}
    data = _data()
    for name in args.presets:
        preset = PRESETS[name]
        report["training"][name] = bench_training(
            name, args.crop or preset.crop_size, args.batch or preset.batch_size, args.steps,
            args.warmup, device, data)
        report["inference"][name] = bench_inference(name, args.size, args.repeats, device)
    print_table(report)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
