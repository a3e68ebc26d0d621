"""UI responsiveness while the Train panel runs a real active-learning round.

A 10 ms QTimer ticks on napari's UI thread while (A) the Train panel detects the
device (the first ``import torch`` happens in a worker thread) and (B) a click on
Retrain & suggest next trains, scores the queue and opens the top image. The gaps
between ticks are the UI's latency: p50, p99 and the longest stall are reported
per phase (goal: longest stall under 100 ms on 2 CPU cores).

Usage (needs a display; re-runs itself under ``xvfb-run`` when there is none)::

    python benchmarks/bench_ui_responsiveness.py [--n 12] [--size 256] [--accepted 4]
        [--iterations 30] [--crop 128] [--batch 4] [--mode semi] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _stats(ticks: list[float], t0: float, t1: float) -> dict[str, float]:
    window = np.array([t0] + [t for t in ticks if t0 <= t <= t1] + [t1])
    gaps = np.diff(window) * 1000.0
    return {"seconds": round(t1 - t0, 2), "ticks": int(len(gaps)),
            "p50_ms": round(float(np.median(gaps)), 1), "p99_ms": round(float(np.percentile(gaps, 99)), 1),
            "longest_stall_ms": round(float(gaps.max()), 1)}


def _wait(app, condition, timeout: float) -> None:
    end = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > end:
            raise TimeoutError("the benchmark timed out")
        app.processEvents()
        time.sleep(0.001)


def run(args: argparse.Namespace) -> dict:
    import napari
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    from napari_crack_al.core.io.mask_io import read_mask
    from napari_crack_al.core.project import Project
    from napari_crack_al.core.sample_project import write_sample_images
    from napari_crack_al.demo import WINDOW_SIZE, add_dock_widgets

    tmp = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    try:
        root = tmp / "project"
        write_sample_images(root, n=args.n, size=args.size, seed=0)
        with Project.create(root) as project:
            for name in project.names()[:args.accepted]:
                project.accept(name, read_mask(root / "ground_truth" / f"{name}.png"))

        ticks: list[float] = []
        app = QApplication.instance() or napari.qt.get_qapp()
        timer = QTimer()
        timer.setInterval(10)
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        timer.start()

        viewer = napari.Viewer(title="bench", show=True)
        viewer.window.resize(*WINDOW_SIZE)
        torch_before = "torch" in sys.modules
        t0 = time.perf_counter()
        widgets = add_dock_widgets(viewer)
        train = widgets["Train"]
        t_start = time.perf_counter()
        _wait(app, lambda: "Detecting" not in train.device_label.text(), 120)
        t_detected = time.perf_counter()
        widgets["Crack project"].open_project(root)
        _wait(app, lambda: time.perf_counter() > t_detected + 0.5, 5)

        train.device_combo.setCurrentText(args.device)
        train.mode_combo.setCurrentText(args.mode)
        train.iterations_spin.setValue(args.iterations)
        train.crop_spin.setValue(args.crop)
        train.batch_spin.setValue(args.batch)
        _wait(app, lambda: "Detecting" not in train.device_label.text(), 60)
        t_round = time.perf_counter()
        job = train.retrain()
        if job is None:
            raise RuntimeError("the round did not start")
        _wait(app, lambda: job.done, 3600)
        t_done = time.perf_counter()
        timer.stop()
        result = train.last_result
        report = {
            "device": train.device_label.text(),
            "setup": {k: getattr(args, k) for k in ("n", "size", "accepted", "iterations", "crop", "batch",
                                                    "mode")},
            "panels_and_first_torch_import": {**_stats(ticks, t_start, t_detected),
                                              "torch_already_imported": torch_before},
            "round": _stats(ticks, t_round, t_done),
            "round_result": None if result is None else {
                "model_version": result.model_version, "train_seconds": round(result.train_seconds, 1),
                "score_seconds": round(result.score_seconds, 1)},
            "docking_seconds": round(t_start - t0, 2),
        }
        viewer.close()
        return report
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=12, help="images in the project (12)")
    parser.add_argument("--size", type=int, default=256, help="image side (256)")
    parser.add_argument("--accepted", type=int, default=4, help="images accepted before the round (4)")
    parser.add_argument("--iterations", type=int, default=30, help="training steps (30)")
    parser.add_argument("--crop", type=int, default=128, help="training crop (128)")
    parser.add_argument("--batch", type=int, default=4, help="crops per step (4)")
    parser.add_argument("--mode", default="semi", choices=("semi", "supervised"))
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda, mps (cpu)")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()

    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        xvfb = shutil.which("xvfb-run")
        if xvfb is None:
            print("no display and no xvfb-run: skipped")
            return 0
        cmd = [xvfb, "-a", "-s", "-screen 0 1600x1000x24", sys.executable, *sys.argv]
        return subprocess.call(cmd)

    report = run(args)
    print(json.dumps(report, indent=2))
    for phase in ("panels_and_first_torch_import", "round"):
        s = report[phase]
        print(f"{phase:32s} {s['seconds']:7.1f} s  p50 {s['p50_ms']:6.1f} ms  p99 {s['p99_ms']:6.1f} ms  "
              f"longest stall {s['longest_stall_ms']:6.1f} ms")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
