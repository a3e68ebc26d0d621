"""Cost of one U2PL (semi) training step relative to one supervised step, and peak memory.

Runs the real trainer (:func:`napari_crack_al.core.training.trainer.train`) on synthetic
512² range images for a few steps in each mode, each mode in its own process so that
the peak resident memory (``ru_maxrss``) is per mode, and prints the median step time
(batch assembly + forward + backward + SGD + EMA; the first steps are skipped) and the
ratio semi / supervised at the same labelled batch (the semi step adds an unlabelled
batch of the same size, one teacher forward and the contrastive loss).

    python benchmarks/bench_train_step.py [--preset fast] [--crop 256] [--batch 4] [--steps 8]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def _child(mode: str, preset: str, crop: int, batch: int, steps: int, device: str) -> dict:
    import numpy as np
    import torch

    from napari_crack_al.core.events import StepEvent
    from napari_crack_al.core.range_io import RangeImage
    from napari_crack_al.core.synthetic import SyntheticConfig, generate_range_image
    from napari_crack_al.core.training.config import TrainConfig
    from napari_crack_al.core.training.data import from_range_image
    from napari_crack_al.core.training.trainer import train

    syn = SyntheticConfig(size=512)

    def item(i: int, labeled: bool):
        s = generate_range_image((0, i), syn)
        ri = RangeImage(s.range_image.astype(np.float32), s.range_image > 0, None, "uint16")
        return from_range_image(ri, s.mask if labeled else None, name=f"im{i}")

    labeled = [item(i, True) for i in range(4)]
    unlabeled = [item(i, False) for i in range(4, 12)]
    semi = mode.startswith("semi")
    cfg = TrainConfig.from_preset(
        preset, mode="semi" if semi else "supervised", iterations=steps, crop_size=crop,
        batch_size=batch, unlabeled_batch_size=batch, warmup_iterations=0, seed=0,
        device=device, use_contrastive=(mode == "semi"), cutmix_prob=0.5)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        for ev in train(labeled, unlabeled if semi else [], cfg, out_dir=out):
            if isinstance(ev, StepEvent):
                times.append(ev.seconds)
        total = time.perf_counter() - t0
    res = {
        "mode": mode,
        "median_step_s": statistics.median(times[2:] if len(times) > 4 else times),
        "steps": len(times),
        "total_s": total,
        "threads": torch.get_num_threads(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_training_mb": rss0 / 1024,
    }
    if torch.cuda.is_available() and device != "cpu":
        res["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        res["device"] = torch.cuda.get_device_name()
    else:
        res["device"] = "cpu"
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="fast", choices=("fast", "accurate"))
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.preset, args.crop, args.batch, args.steps,
                                args.device)))
        return
    results = {}
    for mode in ("supervised", "semi_no_contrastive", "semi"):
        cmd = [sys.executable, __file__, "--child", mode, "--preset", args.preset, "--crop",
               str(args.crop), "--batch", str(args.batch), "--steps", str(args.steps),
               "--device", args.device]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results[mode] = json.loads(out.strip().splitlines()[-1])
    sup = results["supervised"]["median_step_s"]
    print(f"preset {args.preset}, crop {args.crop}, labelled batch {args.batch} "
          f"(+ {args.batch} unlabelled in semi), device {results['supervised']['device']}, "
          f"{results['supervised']['threads']} threads, median of {args.steps - 2} steps")
    for mode, r in results.items():
        mem = f"peak RSS {r['peak_rss_mb']:7.0f} MB"
        if "cuda_peak_mb" in r:
            mem += f", CUDA peak {r['cuda_peak_mb']:.0f} MB"
        print(f"  {mode:20s} {r['median_step_s']:7.3f} s/step  x{r['median_step_s'] / sup:4.2f}  "
              f"{mem}")
    ratio = results["semi"]["median_step_s"] / sup
    print(f"semi / supervised step ratio: {ratio:.2f} (target <= 2.5)")


if __name__ == "__main__":
    main()
