"""Round time and peak memory against the pool size: does a round grow with the pool?

For each pool size a child process builds a project of that many synthetic range images
(a few generated ones copied under new names: the cost depends on the count, not the
content), accepts the true masks of the same first images, and runs one semi-supervised
round with the same labels and steps (the semi phase open from the start, so the
unlabelled pool is drawn from). The child reports the round's wall time and the
process's peak resident memory; the parent prints them with the ratios to the smallest
pool, measured in one run on this machine.

    python benchmarks/bench_round_scaling.py [--pools 50,500,2000] [--size 128] [--steps 30]
                                             [--labels 4] [--threads 2]
    python benchmarks/bench_round_scaling.py --pools 20,80 --size 2048x1024 --steps 10

Goals (issue 12): the 2 000-image round at most 1.5x the 50-image round; peak memory flat
within 20 %.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DISTINCT = 12  # generated images; the pool repeats them under new names


def _shape(text: str) -> tuple[int, int]:
    parts = [int(p) for p in text.lower().split("x")]
    return (parts[0], parts[0]) if len(parts) == 1 else (parts[1], parts[0])  # WxH -> (H, W)


def _build_pool(root: Path, n: int, shape: tuple[int, int]) -> None:
    """``n`` images under root/images (copies of DISTINCT generated ones) + ground truth."""
    from napari_crack_al.core.sample_project import write_sample_images

    seed_dir = root.parent / "seed"
    if not seed_dir.exists():
        write_sample_images(seed_dir, n=DISTINCT, size=shape, seed=0)
    for folder in ("images", "ground_truth"):
        (root / folder).mkdir(parents=True, exist_ok=True)
        sources = sorted((seed_dir / folder).glob("*.png"))
        for i in range(n):
            shutil.copyfile(sources[i % DISTINCT], root / folder / f"pool_{i:05d}.png")


def _child(n: int, shape: tuple[int, int], steps: int, labels: int, threads: int) -> dict:
    """One round on a pool of ``n`` images; its seconds and the peak RSS (MiB)."""
    import resource

    import torch

    from napari_crack_al.core.active.round import RoundConfig, run_round
    from napari_crack_al.core.events import drain
    from napari_crack_al.core.io.mask_io import read_mask
    from napari_crack_al.core.project import Project
    from napari_crack_al.core.training.config import TrainConfig

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        _build_pool(root, n, shape)
        with Project.create(root) as project:
            for name in project.names()[:labels]:
                project.accept(name, read_mask(root / "ground_truth" / f"{name}.png"))
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            train = TrainConfig(mode="semi", iterations=steps, crop_size=64, batch_size=2,
                                unlabeled_batch_size=2, warmup_iterations=0, semi_entry_f1=0.0,
                                threads=threads, seed=0, device="cpu")
            t0 = time.perf_counter()
            drain(run_round(project, RoundConfig(train=train, seed=0, tile=256, overlap=32)))
            seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    return {"pool": n, "seconds": seconds, "peak_rss_mib": rss, "rss_before_mib": rss_before}


def main() -> None:
    """Run one child per pool size and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pools", default="50,500,2000")
    ap.add_argument("--size", default="128", help="image side, or WxH (e.g. 2048x1024)")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--labels", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    shape = _shape(args.size)
    if args.child is not None:
        print(json.dumps(_child(args.child, shape, args.steps, args.labels, args.threads)))
        return
    rows = []
    for n in (int(p) for p in args.pools.split(",")):
        cmd = [sys.executable, __file__, "--child", str(n), "--size", args.size,
               "--steps", str(args.steps), "--labels", str(args.labels),
               "--threads", str(args.threads)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(f"pool {n}: {rows[-1]['seconds']:.1f} s, peak RSS {rows[-1]['peak_rss_mib']:.0f} MiB",
              flush=True)
    base = rows[0]
    print(f"\nimages {shape[1]}x{shape[0]}, {args.labels} labels, {args.steps} semi steps, "
          f"{args.threads} threads")
    print("| pool | round s | x smallest | peak RSS MiB | x smallest |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['pool']} | {r['seconds']:.1f} | {r['seconds'] / base['seconds']:.2f} | "
              f"{r['peak_rss_mib']:.0f} | {r['peak_rss_mib'] / base['peak_rss_mib']:.2f} |")


if __name__ == "__main__":
    main()
