#!/usr/bin/env python
"""Ablation of the U2PL trainer: supervised vs semi vs semi + contrastive, same budget.

A few labelled images plus many unlabelled ones is the regime where semi-supervision
should help. Every arm trains with :func:`napari_crack_al.core.training.train` from the
``fast`` preset with the SAME iterations, crop and labelled batch (the semi arms also
draw an unlabelled batch of the same size per step); the final checkpoint (the EMA
teacher for the semi arms, the student for the supervised arm, which has no EMA phase)
is scored on held-out images.

Arms
----
supervised
    ``mode="supervised"``: labelled images only.
semi
    ``mode="semi", use_contrastive=False``: pseudo-label loss with the EMA teacher
    (the defaults: U2PL's batch-wide entropy drop; Dice only where crack pseudo labels are kept).
semi-contrastive
    ``mode="semi", use_contrastive=True`` (λ = ``--contrastive-weight``, 0.1 by default).
semi-long-warmup
    ``semi`` with a supervised warm-up of ``--long-warmup-share`` of the iterations (0.5)
    instead of ``--warmup`` (default 10 %): a diagnostic of the warm-up share.
semi-ce-only
    ``semi`` with the Dice term of the unsupervised loss switched off (CE only, weight 0.5
    as in the default criterion, like upstream U2PL's CE-only unsupervised loss): a
    diagnostic, done by wrapping ``losses.unsupervised_loss`` in the run's process.
semi-class-drop, semi-class-drop-contrastive
    ``semi`` / ``semi-contrastive`` with ``drop_per_class=True``: the entropy drop applied
    within each pseudo class instead of batch-wide (a diagnostic).
semi-weighted
    ``semi`` with ``class_weighting=True``: inverse-frequency class weights in every CE term,
    supervised and unsupervised (as the course project's unsupervised loss).

Data (deterministic; the same split for every arm and seed, so arms are compared paired)
----
synthetic
    ``core.synthetic.generate_range_image((11, i))`` at ``--synthetic-size`` px for the
    training images: the first ``--n-labeled`` images that contain a crack are labelled,
    the next ``--n-unlabeled`` images (any) are unlabelled; validation images are
    ``(22, i)``, ``i < --n-val`` (a disjoint series).
uav75
    ``--uav75`` (default ``../shared/data/uav75``), photographs read as one channel by the
    data loaders, at native 512 x 512 (or ``--uav-size`` px, box-downscaled images and
    max-pooled masks so thin cracks survive). ``--n-labeled-uav`` images of the ``train``
    split (drawn with ``--split-seed``) are labelled, the rest of ``train`` is unlabelled, and
    ``--uav-eval`` (default ``test``) is the held-out set.

Metrics (threshold 0.5, micro-averaged, valid pixels only): crack IoU, precision, recall,
F1, tolerance-2 F1 (``core.metrics.evaluate_masks``) and ODS / OIS (``core.metrics.ods_ois``,
unless ``--no-ods``); plus train and evaluation wall time per run.

Outputs (``--out``)
-------------------
``<dataset>/<arm>/seed<S>/{result.json, model.pt, train.log}`` per run (a finished run is
reused, so an interrupted ablation resumes), ``results.csv`` (one row per run),
``results.md`` (summary mean ± std over seeds and the per-run table) and ``ablation.png``
(also copied to ``--png`` when given).

Usage::

    python scripts/run_ablation.py --out /tmp/ablation --datasets synthetic uav75 \\
        --seeds 0 1 --iterations 300 --crop 128 --jobs 2
    python scripts/run_ablation.py --out /tmp/ablation --datasets synthetic \
        --arms semi-ce-only semi-long-warmup --seeds 0 1 --iterations 300 --crop 128
    python scripts/run_ablation.py --out /tmp/ablation --report-only --png docs/images/ablation.png

The exact commands, budget and results of the study are in docs/model.md, "Ablation".

Each run is a subprocess with one torch thread; at most ``--jobs`` run at once and a
second one starts only while the 1-minute load average is at most ``--max-load``.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ARMS = ("supervised", "semi", "semi-contrastive", "semi-long-warmup", "semi-ce-only",
        "semi-class-drop", "semi-class-drop-contrastive", "semi-weighted")
DATASETS = ("synthetic", "uav75")
METRICS = ("crack_iou", "f1", "precision", "recall", "f1_tol2", "ods", "ois")

log = logging.getLogger("run_ablation")


# ---------------------------------------------------------------------------- data
def _synthetic(args: argparse.Namespace) -> tuple[list, list, list]:
    from napari_crack_al.core.io.range_io import RangeImage
    from napari_crack_al.core.synthetic import SyntheticConfig, generate_range_image
    from napari_crack_al.core.training.data import from_range_image

    cfg = SyntheticConfig(size=args.synthetic_size)

    def item(series: int, i: int, labeled: bool):
        s = generate_range_image((series, i), cfg)
        ri = RangeImage(s.range_image.astype(np.float32), s.range_image > 0, None, "uint16")
        return from_range_image(ri, s.mask, name=f"syn{series}_{i:03d}",
                                profile=args.profile), s.mask.any()

    labeled, unlabeled = [], []
    i = 0
    while len(labeled) < args.n_labeled or len(unlabeled) < args.n_unlabeled:
        t, has_crack = item(11, i, True)
        if len(labeled) < args.n_labeled and has_crack:
            labeled.append(t)
        elif len(unlabeled) < args.n_unlabeled:
            unlabeled.append(type(t)(name=t.name, image=t.image, valid=t.valid, mask=None))
        i += 1
    val = [item(22, i, True)[0] for i in range(args.n_val)]
    return labeled, unlabeled, val


def _uav_pair(src: Path, entry: dict, size: int, profile: str):
    from napari_crack_al.core.io.mask_io import read_mask
    from napari_crack_al.core.io.range_io import RangeImage, read_range_image
    from napari_crack_al.core.training.data import from_range_image

    img = read_range_image(src / entry["image"])
    mask = read_mask(src / entry["mask"], expected_shape=img.shape)
    name = Path(entry["image"]).stem
    h, w = img.shape
    if size and (h, w) != (size, size):
        if h % size or w % size:
            raise SystemExit(f"{entry['image']}: {w}x{h} is not a multiple of {size}")
        fy, fx = h // size, w // size
        data = img.data.reshape(size, fy, size, fx).mean(axis=(1, 3))
        valid = img.valid.reshape(size, fy, size, fx).all(axis=(1, 3))
        mask = mask.reshape(size, fy, size, fx).any(axis=(1, 3))
        img = RangeImage(data.astype(np.float32), valid, img.path, img.source_dtype,
                         img.channels)
    return from_range_image(img, mask, name=name, profile=profile)


def _uav75(args: argparse.Namespace) -> tuple[list, list, list]:
    src = Path(args.uav75)
    manifest = src / "manifest.csv"
    if not manifest.is_file():
        raise SystemExit(f"{manifest}: not found (give --uav75)")
    with open(manifest, newline="") as fh:
        entries = list(csv.DictReader(fh))
    train = sorted((e for e in entries if e["split"] == "train"), key=lambda e: e["image"])
    held = sorted((e for e in entries if e["split"] in args.uav_eval), key=lambda e: e["image"])
    candidates = [k for k, e in enumerate(train) if float(e["crack_fraction"]) > 0]
    rng = np.random.default_rng(args.split_seed)
    lab_idx = sorted(int(k) for k in rng.choice(candidates, size=args.n_labeled_uav,
                                                replace=False))
    labeled = [_uav_pair(src, train[k], args.uav_size, args.profile) for k in lab_idx]
    rest = [e for k, e in enumerate(train) if k not in lab_idx]
    if args.n_unlabeled_uav is not None:
        rest = rest[: args.n_unlabeled_uav]
    unlabeled = []
    for e in rest:
        t = _uav_pair(src, e, args.uav_size, args.profile)
        unlabeled.append(type(t)(name=t.name, image=t.image, valid=t.valid, mask=None))
    val = [_uav_pair(src, e, args.uav_size, args.profile) for e in held]
    return labeled, unlabeled, val


def prepare(dataset: str, args: argparse.Namespace) -> tuple[list, list, list]:
    """(labelled, unlabelled, held-out) TrainingImages of ``dataset``."""
    return _synthetic(args) if dataset == "synthetic" else _uav75(args)


# ---------------------------------------------------------------------------- one run
def train_config(arm: str, seed: int, args: argparse.Namespace):
    """The TrainConfig of one arm (everything but the mode and λ is shared)."""
    from napari_crack_al.core.training.config import TrainConfig

    mode = "supervised" if arm == "supervised" else "semi"
    warmup = args.warmup
    if arm == "semi-long-warmup":
        warmup = int(round(args.long_warmup_share * args.iterations))
    return TrainConfig.from_preset(
        "fast", mode=mode, use_contrastive=arm.endswith("contrastive"),
        contrastive_weight=args.contrastive_weight, iterations=args.iterations,
        crop_size=args.crop, batch_size=args.batch, unlabeled_batch_size=args.batch,
        warmup_iterations=warmup, profile=args.profile, threads=args.threads,
        drop_per_class=arm.startswith("semi-class-drop"),
        class_weighting=(arm == "semi-weighted"), device="cpu", seed=seed)


def evaluate(model, images: list, args: argparse.Namespace) -> dict[str, float]:
    """Metrics of ``model`` (eval mode) on labelled ``images``."""
    from napari_crack_al.core.inference import predict_image
    from napari_crack_al.core.metrics import evaluate_masks, ods_ois

    probs = [predict_image(model, t.image, tile=args.tile).probability for t in images]
    gts = [t.mask for t in images]
    valids = [t.valid for t in images]
    out = evaluate_masks([p > 0.5 for p in probs], gts, valid=valids)
    if not args.no_ods:
        o = ods_ois(probs, gts, valid=valids)
        out.update({"ods": o["ods"], "ois": o["ois"], "ods_threshold": o["ods_threshold"]})
    return {k: float(v) for k, v in out.items()}


def run_one(dataset: str, arm: str, seed: int, args: argparse.Namespace) -> dict:
    """Train and score one (dataset, arm, seed); writes ``result.json`` and returns it."""
    import torch

    from napari_crack_al.core.events import MessageEvent, StepEvent
    from napari_crack_al.core.model import load_model
    from napari_crack_al.core.training import train

    torch.set_num_threads(args.threads)
    if arm == "semi-ce-only":
        import functools

        from napari_crack_al.core.training import losses

        # train() imports unsupervised_loss from the module at call time
        losses.unsupervised_loss = functools.partial(losses.unsupervised_loss, dice_weight=0.0)
    run_dir = Path(args.out) / dataset / arm / f"seed{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    labeled, unlabeled, val = prepare(dataset, args)
    prep_s = time.perf_counter() - t0
    config = train_config(arm, seed, args)
    log.info("%s/%s/seed%d: %d labelled, %d unlabelled, %d held-out (data %.1f s)", dataset,
             arm, seed, len(labeled), len(unlabeled), len(val), prep_s)
    gen = train(labeled, unlabeled, config, out_dir=run_dir)
    step_s: list[float] = []
    hist: list[dict[str, float]] = []
    t_train = time.perf_counter()
    while True:
        try:
            ev = next(gen)
        except StopIteration as stop:
            result = stop.value
            break
        if isinstance(ev, StepEvent):
            step_s.append(ev.seconds)
            hist.append(ev.losses)
            if ev.step % args.log_every == 0 or ev.step == ev.total_steps:
                log.info("%s/%s/seed%d step %d/%d sup %.3f unsup %.3f contr %.3f (%.2f s/step)",
                         dataset, arm, seed, ev.step, ev.total_steps, ev.losses["sup"],
                         ev.losses["unsup"], ev.losses["contrastive"],
                         float(np.mean(step_s[-args.log_every:])))
        elif isinstance(ev, MessageEvent):
            log.info("%s/%s/seed%d: %s", dataset, arm, seed, ev.text)
    train_s = time.perf_counter() - t_train
    t_eval = time.perf_counter()
    model, _ = load_model(result.checkpoint)
    metrics = evaluate(model, val, args)
    eval_s = time.perf_counter() - t_eval
    tail = hist[-max(1, len(hist) // 10):]
    row = {
        "dataset": dataset, "arm": arm, "seed": seed, "mode": result.mode,
        "iterations": args.iterations, "crop": args.crop, "batch": args.batch,
        "warmup": config.effective_warmup if result.mode == "semi" else args.iterations,
        "contrastive_weight": args.contrastive_weight if arm.endswith("contrastive") else 0.0,
        "n_labeled": len(labeled), "n_unlabeled": len(unlabeled) if result.mode == "semi" else 0,
        "n_eval": len(val),
        **{m: metrics.get(m, float("nan")) for m in METRICS},
        "ods_threshold": metrics.get("ods_threshold", float("nan")),
        "sup_loss_end": float(np.mean([h["sup"] for h in tail])),
        "unsup_loss_end": float(np.mean([h["unsup"] for h in tail])),
        "contrastive_loss_end": float(np.mean([h["contrastive"] for h in tail])),
        "median_step_s": float(np.median(step_s)), "train_s": train_s, "eval_s": eval_s,
        "wall_s": time.perf_counter() - t0,
    }
    (run_dir / "result.json").write_text(json.dumps(row, indent=1))
    log.info("%s/%s/seed%d done: IoU %.3f F1 %.3f F1@2 %.3f ODS %.3f, train %.0f s, eval %.0f s",
             dataset, arm, seed, row["crack_iou"], row["f1"], row["f1_tol2"], row["ods"],
             train_s, eval_s)
    return row


# ---------------------------------------------------------------------------- driver
def _jobs(args: argparse.Namespace) -> list[tuple[str, str, int]]:
    # seed-major order: a complete seed of every arm comes first, so a cut-short ablation
    # still compares the arms on the same seeds
    return [(d, a, s) for d in args.datasets for s in args.seeds for a in args.arms]


def _result_path(args: argparse.Namespace, job: tuple[str, str, int]) -> Path:
    d, a, s = job
    return Path(args.out) / d / a / f"seed{s}" / "result.json"


def drive(args: argparse.Namespace, argv: list[str]) -> None:
    """Run every missing job as a subprocess, at most ``--jobs`` at a time.

    ``argv`` (the driver's own arguments) is passed on to every run, plus ``--job``.
    """
    pending = [j for j in _jobs(args) if not _result_path(args, j).is_file()]
    log.info("%d runs to do (%d already done)", len(pending), len(_jobs(args)) - len(pending))
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    running: list[tuple[subprocess.Popen, tuple[str, str, int], float]] = []
    t_all = time.perf_counter()
    while pending or running:
        for p, job, t in list(running):
            if p.poll() is not None:
                running.remove((p, job, t))
                status = "ok" if p.returncode == 0 else f"FAILED (exit {p.returncode})"
                log.info("run %s %s after %.0f s (%.0f s elapsed)", ":".join(map(str, job)),
                         status, time.perf_counter() - t, time.perf_counter() - t_all)
        can_start = pending and len(running) < args.jobs and (
            not running or os.getloadavg()[0] <= args.max_load)
        if can_start:
            job = pending.pop(0)
            run_dir = _result_path(args, job).parent
            run_dir.mkdir(parents=True, exist_ok=True)
            fh = open(run_dir / "train.log", "w")
            cmd = [sys.executable, str(Path(__file__).resolve()), *argv,
                   "--job", ":".join(map(str, job))]
            p = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO)
            fh.close()
            running.append((p, job, time.perf_counter()))
            log.info("started %s (pid %d, %d running, load %.1f)", ":".join(map(str, job)),
                     p.pid, len(running), os.getloadavg()[0])
            time.sleep(20 if running else 1)  # let the load average see the new process
            continue
        time.sleep(5)
    log.info("all runs finished in %.0f s", time.perf_counter() - t_all)


# ---------------------------------------------------------------------------- report
def _collect(args: argparse.Namespace) -> list[dict]:
    rows = []
    for job in _jobs(args):
        p = _result_path(args, job)
        if p.is_file():
            rows.append(json.loads(p.read_text()))
    return rows


def _ms(values: list[float], digits: int = 3) -> str:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if v.size == 0:
        return "–"
    if v.size == 1:
        return f"{v[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"


def write_report(args: argparse.Namespace) -> str:
    """results.csv, results.md and ablation.png from the finished runs; returns the markdown."""
    rows = _collect(args)
    if not rows:
        raise SystemExit(f"no finished runs under {args.out}")
    out = Path(args.out)
    cols = list(rows[0])
    with open(out / "results.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.5g}" if isinstance(v, float) else v) for k, v in r.items()})

    lines: list[str] = []
    datasets = [d for d in args.datasets if any(r["dataset"] == d for r in rows)]
    for d in datasets:
        drows = [r for r in rows if r["dataset"] == d]
        r0 = drows[0]
        seeds = sorted({r["seed"] for r in drows})
        lines += [f"#### {d}: {r0['n_labeled']} labelled + {max(r['n_unlabeled'] for r in drows)} "
                  f"unlabelled training images, {r0['n_eval']} held-out; "
                  f"{r0['iterations']} iterations, crop {r0['crop']}, batch {r0['batch']} "
                  f"(+{r0['batch']} unlabelled); seeds {', '.join(map(str, seeds))}", "",
                  "| arm | crack IoU | F1 | F1 (tol 2) | ODS | OIS | precision | recall "
                  "| train s / run |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for a in args.arms:
            ar = [r for r in drows if r["arm"] == a]
            if not ar:
                continue
            cells = [_ms([r[m] for r in ar]) for m in
                     ("crack_iou", "f1", "f1_tol2", "ods", "ois", "precision", "recall")]
            lines.append(f"| {a} (n={len(ar)}) | " + " | ".join(cells)
                         + f" | {_ms([r['train_s'] for r in ar], 0)} |")
        lines.append("")
    lines += ["Per run:", "",
              "| dataset | arm | seed | warm-up | IoU | F1 | F1 tol2 | ODS (thr) | OIS "
              "| sup loss | unsup loss | contr. loss | s/step | train s | eval s |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['arm']} | {r['seed']} | {r['warmup']} "
            f"| {r['crack_iou']:.3f} | {r['f1']:.3f} "
            f"| {r['f1_tol2']:.3f} | {r['ods']:.3f} ({r['ods_threshold']:.2f}) | {r['ois']:.3f} "
            f"| {r['sup_loss_end']:.3f} | {r['unsup_loss_end']:.3f} "
            f"| {r['contrastive_loss_end']:.3f} | {r['median_step_s']:.2f} "
            f"| {r['train_s']:.0f} | {r['eval_s']:.0f} |")
    text = "\n".join(lines) + "\n"
    (out / "results.md").write_text(text)
    _plot(rows, datasets, args, out / "ablation.png")
    if args.png:
        Path(args.png).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "ablation.png", args.png)
    return text


def _plot(rows: list[dict], datasets: list[str], args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [("crack_iou", "IoU"), ("f1", "F1"), ("f1_tol2", "F1 tol 2"), ("ods", "ODS")]
    colors = {"supervised": "#7f7f7f", "semi": "#1f77b4", "semi-contrastive": "#d62728",
              "semi-long-warmup": "#2ca02c", "semi-ce-only": "#9467bd",
              "semi-class-drop": "#8c564b", "semi-class-drop-contrastive": "#e377c2",
              "semi-weighted": "#bcbd22"}
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.2 * len(datasets), 3.8), squeeze=False)
    width = 0.8 / len(args.arms)
    for ax, d in zip(axes[0], datasets):
        drows = [r for r in rows if r["dataset"] == d]
        for k, a in enumerate(args.arms):
            ar = [r for r in drows if r["arm"] == a]
            if not ar:
                continue
            x = np.arange(len(metrics)) + (k - (len(args.arms) - 1) / 2) * width
            vals = np.array([[r[m] for m, _ in metrics] for r in ar], dtype=float)
            mean = np.nanmean(vals, axis=0)
            std = np.nanstd(vals, axis=0, ddof=1) if len(ar) > 1 else np.zeros(len(metrics))
            ax.bar(x, mean, width, yerr=std, capsize=3, color=colors.get(a), alpha=0.8,
                   label=f"{a} (n={len(ar)})")
            for v in vals:
                ax.plot(x, v, "k.", ms=3)
        r0 = drows[0]
        ax.set_title(f"{d}: {r0['n_labeled']} lab. + {max(r['n_unlabeled'] for r in drows)} "
                     f"unlab., {r0['iterations']} it, crop {r0['crop']}", fontsize=9)
        ax.set_xticks(np.arange(len(metrics)), [n for _, n in metrics])
        ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Ablation: mean ± std over seeds (dots: single runs), threshold 0.5", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------- cli
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--datasets", nargs="+", choices=DATASETS, default=["synthetic"])
    p.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS[:3]))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--batch", type=int, default=4, help="labelled (and unlabelled) crops per step")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps (default 10 %%)")
    p.add_argument("--contrastive-weight", type=float, default=0.1)
    p.add_argument("--long-warmup-share", type=float, default=0.5,
                   help="warm-up share of the semi-long-warmup arm")
    p.add_argument("--profile", default="none", choices=("none", "column", "row"))
    p.add_argument("--n-labeled", type=int, default=4, help="synthetic labelled images")
    p.add_argument("--n-unlabeled", type=int, default=40, help="synthetic unlabelled images")
    p.add_argument("--n-val", type=int, default=16, help="synthetic held-out images")
    p.add_argument("--synthetic-size", type=int, default=192)
    p.add_argument("--uav75", default=str(REPO.parent / "shared" / "data" / "uav75"))
    p.add_argument("--uav-size", type=int, default=0, help="downscale UAV75 to this size (0: no)")
    p.add_argument("--uav-eval", nargs="+", default=["test"], choices=("val", "test"))
    p.add_argument("--n-labeled-uav", type=int, default=5, help="UAV75 labelled images")
    p.add_argument("--n-unlabeled-uav", type=int, default=None,
                   help="cap on UAV75 unlabelled images (default: the rest of train)")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the UAV75 labelled draw")
    p.add_argument("--tile", type=int, default=512, help="inference tile")
    p.add_argument("--no-ods", action="store_true", help="skip ODS / OIS")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (at most)")
    p.add_argument("--max-load", type=float, default=3.0,
                   help="start a second parallel run only below this 1-min load average")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--png", default=None, help="also copy the plot here")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--job", default=None, help=argparse.SUPPRESS)  # internal: one run
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(raw)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.job:
        d, a, s = args.job.split(":")
        run_one(d, a, int(s), args)
        return
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        drive(args, raw)
    print(write_report(args))


if __name__ == "__main__":
    main()
