#!/usr/bin/env python
"""Reproduce docs/experiments.md: label-efficiency simulations on synthetic and UAV75 images.

For each dataset and seed it runs :func:`napari_crack_al.core.simulation.simulate`
with the five arms of the study (random-supervised, entropy-supervised, random-semi,
hybrid-semi and the full-supervision reference), then averages over seeds and writes

* ``OUT/<dataset>/seed_<S>/{curve.csv, selected.csv, curve.png, project_<arm>/}``
* ``OUT/<dataset>/all_curves.csv`` (every row, with a ``seed`` column) and
  ``OUT/<dataset>/mean_curves.csv``
* ``OUT/experiments_<dataset>.png`` (mean ± std over seeds)
* ``OUT/results.md`` — the markdown tables pasted into docs/experiments.md.

A seed folder whose ``curve.csv`` is complete is reused, so an interrupted run resumes.

Usage::

    # the tables of docs/experiments.md (~50 min on 2 CPU cores)
    python scripts/run_experiments.py --out /tmp/exp --seeds 0,1,2 --class-weighting --warmup 25
    python scripts/run_experiments.py --out /tmp/exp --datasets synthetic --seeds 0
    python scripts/run_experiments.py --out /tmp/exp --class-weighting --warmup 25 --report-only

Data preparation
----------------
synthetic
    ``--synthetic-pool + --synthetic-val`` images from :func:`write_sample_images`
    (series seed 0, ``--size`` px square); the first ones are the pool, the last ones
    the validation set.
uav75
    ``../shared/data/uav75`` (or ``--uav75``): manifest split ``train`` is the pool,
    ``val`` + ``test`` the validation set. Images are downscaled to ``--size`` px
    (box filter, converted to grey), masks by block max pooling (a pixel is crack if
    any source pixel is), so thin cracks survive.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ARMS = ("random-supervised", "entropy-supervised", "random-semi", "hybrid-semi", "full")

log = logging.getLogger("run_experiments")


# ---------------------------------------------------------------------------- data
def prepare_synthetic(root: Path, n_pool: int, n_val: int, size: int) -> tuple[list, list]:
    from napari_crack_al.core.simulation import pair_folders
    from napari_crack_al.core.sample_project import write_sample_images

    pool, val = root / "pool", root / "val"
    if not (pool / "images").is_dir() or len(list((pool / "images").iterdir())) != n_pool:
        shutil.rmtree(root, ignore_errors=True)
        write_sample_images(root / "all", n=n_pool + n_val, size=size, seed=0)
        for part, names in ((pool, range(n_pool)), (val, range(n_pool, n_pool + n_val))):
            for sub_src, sub_dst in (("images", "images"), ("ground_truth", "masks")):
                (part / sub_dst).mkdir(parents=True, exist_ok=True)
                for i in names:
                    name = f"sample_{i:04d}.png"
                    shutil.move(root / "all" / sub_src / name, part / sub_dst / name)
        shutil.rmtree(root / "all")
    return (pair_folders(pool / "images", pool / "masks"),
            pair_folders(val / "images", val / "masks"))


def _downscale_pair(image: Path, mask: Path, dst_img: Path, dst_mask: Path, size: int) -> None:
    from PIL import Image

    with Image.open(image) as im:
        gray = im.convert("L")
        if gray.size != (size, size):
            gray = gray.resize((size, size), Image.Resampling.BOX)
        gray.save(dst_img)
    with Image.open(mask) as im:
        m = np.asarray(im.convert("L")) > 0
    h, w = m.shape
    if (h, w) != (size, size):
        if h % size or w % size:
            raise SystemExit(f"{mask}: {w}x{h} is not a multiple of {size}")
        fy, fx = h // size, w // size
        m = m.reshape(size, fy, size, fx).any(axis=(1, 3))
    Image.fromarray((m * 255).astype(np.uint8)).save(dst_mask)


def prepare_uav75(src: Path, root: Path, size: int) -> tuple[list, list]:
    from napari_crack_al.core.simulation import pair_folders

    manifest = src / "manifest.csv"
    if not manifest.is_file():
        raise SystemExit(f"{manifest}: not found (give --uav75)")
    with open(manifest, newline="") as fh:
        entries = list(csv.DictReader(fh))
    parts = {"pool": [e for e in entries if e["split"] == "train"],
             "val": [e for e in entries if e["split"] in ("val", "test")]}
    for part, rows in parts.items():
        img_dir, mask_dir = root / part / "images", root / part / "masks"
        if img_dir.is_dir() and len(list(img_dir.iterdir())) == len(rows):
            continue
        shutil.rmtree(root / part, ignore_errors=True)
        img_dir.mkdir(parents=True)
        mask_dir.mkdir(parents=True)
        for e in rows:
            name = Path(e["image"]).stem + ".png"
            _downscale_pair(src / e["image"], src / e["mask"], img_dir / name, mask_dir / name,
                            size)
    return (pair_folders(root / "pool" / "images", root / "pool" / "masks"),
            pair_folders(root / "val" / "images", root / "val" / "masks"))


# ---------------------------------------------------------------------------- running
def run_seed(dataset: str, seed: int, train, val, out: Path, args: argparse.Namespace
             ) -> list[dict]:
    from napari_crack_al.core.simulation.curves import read_curve_csv
    from napari_crack_al.core.simulation import SimulationConfig, SimulationRow, simulate
    from napari_crack_al.core.training.config import TrainConfig

    expected = len(args.arms) * args.rounds
    if (out / "curve.csv").is_file():
        rows = read_curve_csv(out / "curve.csv")
        if len(rows) == expected:
            log.info("%s seed %d: reusing %s", dataset, seed, out / "curve.csv")
            return rows
    train_cfg = TrainConfig.from_preset(
        "fast", iterations=args.iterations, crop_size=args.crop_size,
        batch_size=args.batch_size, unlabeled_batch_size=args.batch_size, threads=args.threads,
        device=args.device, seed=seed, warmup_iterations=args.warmup,
        class_weighting=args.class_weighting)
    config = SimulationConfig(train=train_cfg, arm_list=tuple(args.arms), initial=args.initial,
                              per_round=args.per_round, rounds=args.rounds, seed=seed,
                              tile=args.size, overlap=0)
    t0 = time.perf_counter()
    gen = simulate(train, val, out, config, overwrite=True)
    while True:
        try:
            ev = next(gen)
        except StopIteration as stop:
            rows = stop.value
            break
        if isinstance(ev, SimulationRow):
            r = ev.row
            log.info("%s seed %d %-20s round %d n=%2d F1 %.3f F1@2 %.3f edit %s train %.0fs "
                     "score %.0fs (%.0f s so far)", dataset, seed, ev.arm, r["round"],
                     r["n_labeled"], r["f1"], r["f1_tol2"],
                     "-" if math.isnan(r["edit_fraction"]) else f"{r['edit_fraction']:.2f}",
                     r["train_seconds"], r["score_seconds"], time.perf_counter() - t0)
    return rows


# ---------------------------------------------------------------------------- reporting
def _fmt(values: list[float], digits: int = 3) -> str:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if v.size == 0:
        return "–"
    if v.size == 1:
        return f"{v[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} ± {v.std():.{digits}f}"


def report(dataset: str, all_rows: list[dict], out: Path, args: argparse.Namespace) -> str:
    """Markdown section of one dataset; also writes the mean curves and the plot."""
    from napari_crack_al.core.simulation.curves import (
        area_under_curve,
        arm_name,
        mean_curves,
        plot_curves,
    )
    from napari_crack_al.core.export.csv_util import write_csv

    seeds = sorted({r["seed"] for r in all_rows})
    cols = ["seed", "round", "n_labeled", "strategy", "mode", "crack_iou", "f1", "precision",
            "recall", "f1_tol2", "edit_fraction", "train_seconds", "score_seconds"]
    write_csv(out / dataset / "all_curves.csv", all_rows, cols)
    means = mean_curves(all_rows)
    write_csv(out / dataset / "mean_curves.csv", means, list(means[0]))
    png = plot_curves(means, title=f"{dataset}: mean ± std over seeds {seeds}")
    (out / f"experiments_{dataset}.png").write_bytes(png)

    def arm_rows(arm: str, seed: int) -> list[dict]:
        return sorted((r for r in all_rows if arm_name(r["strategy"], r["mode"]) == arm
                       and r["seed"] == seed), key=lambda r: r["round"])

    arms = [a for a in args.arms if any(arm_rows(a, s) for s in seeds)]
    full_rows = {s: {r["round"]: r for r in arm_rows("full", s)} for s in seeds}
    pool = args.pool_sizes[dataset]
    rounds = sorted({r["round"] for r in all_rows})
    n_by_round = {r["round"]: r["n_labeled"] for r in all_rows if r["strategy"] != "full"}
    target = 0.2 * pool
    r20 = min(rounds, key=lambda r: abs(n_by_round.get(r, 1e9) - target)) if n_by_round else 0

    lines = [f"### {dataset}", "",
             f"Pool {pool} images, {len(seeds)} seeds ({', '.join(map(str, seeds))}); "
             f"labels per round: {', '.join(str(n_by_round[r]) for r in rounds)}; "
             f"'20 %' = round {r20} ({n_by_round.get(r20)} labels = "
             f"{100 * n_by_round.get(r20, 0) / pool:.0f} % of the pool).", "",
             "| arm | AULC F1 | AULC F1@2px | final F1 | final F1@2px | final IoU | "
             f"F1 at {n_by_round.get(r20)} labels | ÷ full F1 (same round) | train s/seed |",
             "|---|---|---|---|---|---|---|---|---|"]
    for arm in arms:
        per = {s: arm_rows(arm, s) for s in seeds}
        per = {s: v for s, v in per.items() if v}
        aulc = [area_under_curve([r["n_labeled"] for r in v], [r["f1"] for r in v])
                for v in per.values()]
        aulc2 = [area_under_curve([r["n_labeled"] for r in v], [r["f1_tol2"] for r in v])
                 for v in per.values()]
        if arm == "full":
            aulc = [float(np.mean([r["f1"] for r in v])) for v in per.values()]
            aulc2 = [float(np.mean([r["f1_tol2"] for r in v])) for v in per.values()]
        final = [v[-1]["f1"] for v in per.values()]
        final2 = [v[-1]["f1_tol2"] for v in per.values()]
        final_iou = [v[-1]["crack_iou"] for v in per.values()]
        at20 = [next((r["f1"] for r in v if r["round"] == r20), math.nan) for v in per.values()]
        # same training budget: the full arm's model of the same round
        ratio = [a / full_rows[s][r20]["f1"] if r20 in full_rows.get(s, {})
                 and full_rows[s][r20]["f1"] > 0 else math.nan for s, a in zip(per, at20)]
        train_s = [sum(r["train_seconds"] for r in v) for v in per.values()]
        label = arm + (" (all labels)" if arm == "full" else "")
        lines.append(f"| {label} | {_fmt(aulc)} | {_fmt(aulc2)} | {_fmt(final)} | "
                     f"{_fmt(final2)} | {_fmt(final_iou)} | {_fmt(at20)} | {_fmt(ratio, 2)} | "
                     f"{_fmt(train_s, 0)} |")
    lines += ["", "F1 per round (mean ± std over seeds):", "",
              "| arm | " + " | ".join(f"round {r} (n={n_by_round.get(r)})" for r in rounds)
              + " |", "|---|" + "---|" * len(rounds)]
    for arm in arms:
        cells = []
        for r in rounds:
            vals = [row["f1"] for s in seeds for row in arm_rows(arm, s) if row["round"] == r]
            cells.append(_fmt(vals))
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    lines += ["", "Edit fraction of the images annotated for each round (pixels to fix / true "
              "crack pixels; round 0 has no model suggestion):", "",
              "| arm | " + " | ".join(f"round {r}" for r in rounds) + " |",
              "|---|" + "---|" * len(rounds)]
    for arm in arms:
        if arm == "full":
            continue
        cells = []
        for r in rounds:
            vals = [row["edit_fraction"] for s in seeds for row in arm_rows(arm, s)
                    if row["round"] == r]
            cells.append(_fmt(vals, 2))
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    # active vs random, seed by seed
    lines += ["", "Active vs random, same mode (F1 difference per round, mean over seeds; "
              "wins = seeds where active > random):", ""]
    for active, base in (("entropy-supervised", "random-supervised"),
                         ("hybrid-semi", "random-semi")):
        if active not in arms or base not in arms:
            continue
        cells = []
        for r in rounds:
            diffs = []
            for s in seeds:
                a = [row["f1"] for row in arm_rows(active, s) if row["round"] == r]
                b = [row["f1"] for row in arm_rows(base, s) if row["round"] == r]
                if a and b:
                    diffs.append(a[0] - b[0])
            wins = sum(d > 0 for d in diffs)
            cells.append(f"n={n_by_round.get(r)}: {np.mean(diffs):+.3f} ({wins}/{len(diffs)})"
                         if diffs else "–")
        lines.append(f"- {active} − {base}: " + "; ".join(cells))
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--datasets", default="synthetic,uav75", help="synthetic,uav75")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--arms", default=",".join(ARMS), help="arms (default: the five of the study)")
    p.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    p.add_argument("--synthetic-pool", type=int, default=48)
    p.add_argument("--synthetic-val", type=int, default=16)
    p.add_argument("--uav75", type=Path, default=REPO.parent / "shared" / "data" / "uav75")
    p.add_argument("--initial", type=int, default=4)
    p.add_argument("--per-round", type=int, default=3)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--iterations", type=int, default=50, help="training steps per round")
    p.add_argument("--crop-size", type=int, default=96)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--warmup", type=int, default=None,
                   help="supervised warm-up steps per round in semi mode (default: 10 %%)")
    p.add_argument("--class-weighting", action="store_true",
                   help="inverse-frequency class weights in the cross-entropy terms")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--report-only", action="store_true",
                   help="only aggregate the seed folders already in OUT")
    args = p.parse_args(argv)
    args.arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                        datefmt="%H:%M:%S")
    logging.getLogger("napari_crack_al").setLevel(logging.WARNING)
    import torch

    torch.set_num_threads(args.threads)
    from napari_crack_al.core.simulation.curves import read_curve_csv

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    args.pool_sizes = {}
    sections = []
    t0 = time.perf_counter()
    for dataset in datasets:
        data_root = out / "data" / dataset
        if dataset == "synthetic":
            train, val = prepare_synthetic(data_root, args.synthetic_pool, args.synthetic_val,
                                           args.size)
        elif dataset == "uav75":
            train, val = prepare_uav75(args.uav75, data_root, args.size)
        else:
            raise SystemExit(f"unknown dataset {dataset!r} (synthetic, uav75)")
        args.pool_sizes[dataset] = len(train)
        log.info("%s: %d pool images, %d validation images", dataset, len(train), len(val))
        all_rows = []
        for seed in seeds:
            seed_dir = out / dataset / f"seed_{seed}"
            if args.report_only:
                if not (seed_dir / "curve.csv").is_file():
                    continue
                rows = read_curve_csv(seed_dir / "curve.csv")
            else:
                rows = run_seed(dataset, seed, train, val, seed_dir, args)
            all_rows += [{**r, "seed": seed} for r in rows]
        if all_rows:
            sections.append(report(dataset, all_rows, out, args))
    budget = (f"Budget: fast preset (ResNet-18 DeepLabV3+), {args.size}x{args.size} px images, "
              f"crop {args.crop_size}, batch {args.batch_size} (+{args.batch_size} unlabelled in "
              f"semi mode), {args.iterations} iterations per round (warm start), "
              f"{args.rounds} rounds, initial {args.initial} + {args.per_round} per round, "
              f"semi warm-up {args.warmup if args.warmup is not None else '10 %'} steps per "
              f"round, class weighting {'on' if args.class_weighting else 'off'}, "
              f"{args.threads} CPU thread(s), device {args.device}.")
    text = "\n".join(["## Results", "", budget, "", *sections])
    (out / "results.md").write_text(text)
    print(text)
    log.info("done in %.0f s", time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
