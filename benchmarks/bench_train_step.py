"""Cost of one U2PL (semi) training step relative to one supervised step, and peak memory.

Runs the real trainer (:func:`napari_crack_al.core.training.trainer.train`) on synthetic
512² range images. The three modes (supervised, semi without and with the contrastive
loss) are stepped alternately in one process, so that load from other processes hits
them alike; it prints the median and minimum step time (batch assembly + forward +
backward + SGD + EMA; the first 2 steps skipped) and the ratio semi / supervised at the
same labelled batch (the semi step adds an unlabelled batch of the same size, one
teacher forward and the contrastive loss). Peak memory is measured per mode in a
separate 3-step process (``ru_maxrss``; ``torch.cuda.max_memory_allocated`` on CUDA).

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

MODES = ("supervised", "semi_no_contrastive", "semi")
THREADS = 1  # the trainer's default on a 2-core machine (one core kept for the UI)


def _data():
    import numpy as np

    from napari_crack_al.core.io.range_io import RangeImage
    from napari_crack_al.core.synthetic import SyntheticConfig, generate_range_image
    from napari_crack_al.core.training.data import from_range_image

    syn = SyntheticConfig(size=512)

    def item(i: int, labeled: bool):
        s = generate_range_image((0, i), syn)
        ri = RangeImage(s.range_image.astype(np.float32), s.range_image > 0, None, "uint16")
        return from_range_image(ri, s.mask if labeled else None, name=f"im{i}")

    return [item(i, True) for i in range(4)], [item(i, False) for i in range(4, 12)]


def _config(mode: str, preset: str, crop: int, batch: int, steps: int, device: str):
    from napari_crack_al.core.training.config import TrainConfig

    return TrainConfig.from_preset(
        preset, mode="supervised" if mode == "supervised" else "semi", iterations=steps,
        crop_size=crop, batch_size=batch, unlabeled_batch_size=batch, warmup_iterations=0,
        semi_entry_f1=0.0,  # time the U2PL step itself: the gate opens at once
        seed=0, device=device, threads=THREADS, use_contrastive=(mode == "semi"), cutmix_prob=0.5)


def _timing(preset: str, crop: int, batch: int, steps: int, device: str) -> dict:
    """Step the three trainers alternately (same machine conditions for each mode)."""
    import torch

    from napari_crack_al.core.events import StepEvent
    from napari_crack_al.core.training.trainer import train

    labeled, unlabeled = _data()
    times: dict[str, list[float]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory() as out:
        gens = {m: train(labeled, [] if m == "supervised" else unlabeled,
                         _config(m, preset, crop, batch, steps, device),
                         checkpoint_path=f"{out}/{m}.pt") for m in MODES}
        active = dict(gens)
        while active:
            for m in list(active):
                while True:  # advance this trainer by one optimisation step
                    try:
                        ev = next(active[m])
                    except StopIteration:
                        del active[m]
                        break
                    if isinstance(ev, StepEvent):
                        times[m].append(ev.seconds)
                        break
    skip = 2 if steps > 4 else 0
    res = {m: {"median_step_s": statistics.median(t[skip:]), "min_step_s": min(t[skip:])}
           for m, t in times.items()}
    res["threads"] = torch.get_num_threads()
    res["device"] = torch.cuda.get_device_name() if (
        torch.cuda.is_available() and device != "cpu") else "cpu"
    return res


def _memory(mode: str, preset: str, crop: int, batch: int, device: str) -> dict:
    """Peak memory of a 3-step run of one mode (run in its own process)."""
    import torch

    from napari_crack_al.core.training.trainer import train

    labeled, unlabeled = _data()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory() as out:
        for _ in train(labeled, [] if mode == "supervised" else unlabeled,
                       _config(mode, preset, crop, batch, 3, device), out_dir=out):
            pass
    res = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "rss_before_training_mb": rss0 / 1024}
    if torch.cuda.is_available() and device != "cpu":
        res["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
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
        print(json.dumps(_memory(args.child, args.preset, args.crop, args.batch, args.device)))
        return
    # memory first: on Linux a child process inherits the parent's ru_maxrss high-water mark,
    # so the children must start while this process is still small (nothing imported yet)
    memory = {}
    for mode in MODES:
        cmd = [sys.executable, __file__, "--child", mode, "--preset", args.preset, "--crop",
               str(args.crop), "--batch", str(args.batch), "--device", args.device]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        memory[mode] = json.loads(out.strip().splitlines()[-1])
    timing = _timing(args.preset, args.crop, args.batch, args.steps, args.device)
    sup = timing["supervised"]
    print(f"preset {args.preset}, crop {args.crop}, labelled batch {args.batch} "
          f"(+ {args.batch} unlabelled in semi), device {timing['device']}, "
          f"{timing['threads']} threads, modes stepped alternately, {args.steps} steps each")
    for mode in MODES:
        t, mem = timing[mode], memory[mode]
        line = (f"  {mode:20s} median {t['median_step_s']:6.3f} s/step "
                f"(x{t['median_step_s'] / sup['median_step_s']:4.2f}), min {t['min_step_s']:6.3f} "
                f"(x{t['min_step_s'] / sup['min_step_s']:4.2f}), peak RSS {mem['peak_rss_mb']:6.0f} MB")
        if "cuda_peak_mb" in mem:
            line += f", CUDA peak {mem['cuda_peak_mb']:.0f} MB"
        print(line)
    ratio = timing["semi"]["median_step_s"] / sup["median_step_s"]
    print(f"semi / supervised step ratio (medians): {ratio:.2f} (target <= 2.5)")


if __name__ == "__main__":
    main()
