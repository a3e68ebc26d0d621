"""UI-thread stalls while an 8192 x 4096 16-bit range image opens, is painted, saved and left.

A project of synthetic survey images (default 8192 x 4096, 16-bit PNG, a stored suggestion
and crack probability for each) is opened through the annotation session of a real napari
viewer while a 10 ms QTimer ticks on the UI thread; the longest gap between ticks is the
longest stall. Phases: open the project (first image), a brush stroke, switch to the next
image (the painted mask is saved first), accept & next; before them a 256 x 256 project is
opened in the fresh viewer, so napari's one-time set-up of its first layers (about a second,
whatever the image size) is reported on its own. Each phase runs twice in one
process: with large images read and saved in worker threads (now) and with every image
handled on the UI thread (``background_pixels`` raised above the image size: what the
session did before), so the ratio comes from one run on one machine.

Usage (needs a display; re-runs itself under ``xvfb-run`` when there is none)::

    python benchmarks/bench_large_image.py [--height 4096] [--width 8192] [--json OUT.json]
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
    return {"seconds": round(t1 - t0, 2), "p50_ms": round(float(np.median(gaps)), 1),
            "longest_stall_ms": round(float(gaps.max()), 1)}


def _wait(app, condition, timeout: float) -> None:
    end = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > end:
            raise TimeoutError("the benchmark timed out")
        app.processEvents()
        time.sleep(0.001)


def _settle(app, seconds: float) -> None:
    """Let the viewer repaint (the texture upload of new layer data happens here)."""
    _wait(app, lambda end=time.perf_counter() + seconds: time.perf_counter() > end, seconds + 5)


def make_project(root: Path, n: int, height: int, width: int) -> None:
    """``n`` synthetic range images (cross-slope, ruts, noise, a crack) with a suggestion and a
    probability each."""
    from PIL import Image

    from napari_crack_al.core.active.probability import write_probability
    from napari_crack_al.core.project import Project

    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)
    for i in range(n):
        road = 20000 + 3000 * x + 800 * np.sin(12 * x)
        img = road[None, :] + rng.normal(0, 150, (height, width)).astype(np.float32)
        img[:, width // 3 + 40 * i: width // 3 + 40 * i + 4] -= 1500  # a long crack
        Image.fromarray(img.astype(np.uint16)).save(root / "images" / f"survey_{i:02d}.png",
                                                    compress_level=1)
    with Project.create(root) as project:
        for i, name in enumerate(project.names()):
            crack = np.zeros((height, width), bool)
            crack[:, width // 3 + 40 * i: width // 3 + 40 * i + 4] = True
            project.set_suggestion(name, crack, "round-001")
            write_probability(project, name, crack.astype(np.float32) * 0.9)


def _phases(app, session, ticks: list[float], roots: tuple[Path, Path], widget) -> dict[str, dict]:
    """Open a small project (napari's one-time layer set-up), then the large one: open, paint,
    switch, accept; returns the stall statistics of each phase."""
    out: dict[str, dict] = {}

    def idle() -> bool:
        return session.loading_name is None and not session.io.busy

    small, project_root = roots
    t0 = time.perf_counter()
    widget.open_project(small)
    _wait(app, lambda: session.current_name is not None and idle(), 300)
    _settle(app, 1.0)
    out["first_layers_small_image"] = _stats(ticks, t0, time.perf_counter())

    t0 = time.perf_counter()
    widget.open_project(project_root)
    _wait(app, lambda: session.current_name is not None and idle(), 300)
    _settle(app, 1.0)
    out["open_project_first_image"] = _stats(ticks, t0, time.perf_counter())
    names = session.project.names()

    t0 = time.perf_counter()
    session.labels_layer.paint((100, 100), 1)
    _settle(app, 0.5)
    out["brush_stroke"] = _stats(ticks, t0, time.perf_counter())

    t0 = time.perf_counter()
    session.load(names[1])  # the painted mask of names[0] is saved first
    _wait(app, lambda: session.current_name == names[1] and idle(), 300)
    _settle(app, 1.0)
    out["switch_image_saving_paint"] = _stats(ticks, t0, time.perf_counter())

    session.labels_layer.paint((200, 200), 1)
    t0 = time.perf_counter()
    session.accept_and_next()
    _wait(app, lambda: session.current_name == names[2] and idle(), 300)
    _settle(app, 1.0)
    out["accept_and_next"] = _stats(ticks, t0, time.perf_counter())
    return out


def run(args: argparse.Namespace) -> dict:
    import napari
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    from napari_crack_al.widgets.session import AnnotationSession

    AnnotationSession.auto_first_suggestions = False  # the detector would compete for the CPU
    tmp = Path(tempfile.mkdtemp(prefix="bench-large-"))
    report: dict = {"image": f"{args.width} x {args.height} uint16 PNG",
                    "default_background_pixels": AnnotationSession.background_pixels}
    try:
        from napari_crack_al.core.project import Project
        from napari_crack_al.core.sample_project import write_sample_images

        t = time.perf_counter()
        for mode in ("ui_thread_before", "worker_now"):
            make_project(tmp / mode, 3, args.height, args.width)
            write_sample_images(tmp / f"{mode}-small", n=2, size=256, seed=0)
            Project.create(tmp / f"{mode}-small").close()
        report["make_projects_seconds"] = round(time.perf_counter() - t, 1)
        app = QApplication.instance() or napari.qt.get_qapp()
        default = AnnotationSession.background_pixels
        for mode in ("ui_thread_before", "worker_now"):
            before = mode == "ui_thread_before"
            AnnotationSession.background_pixels = 10 ** 12 if before else default
            ticks: list[float] = []
            timer = QTimer()
            timer.setInterval(10)
            timer.timeout.connect(lambda ticks=ticks: ticks.append(time.perf_counter()))
            viewer = napari.Viewer(title="bench", show=True)
            _dock, widget = viewer.window.add_plugin_dock_widget("napari-crack-al", "Crack project")
            viewer.window.add_plugin_dock_widget("napari-crack-al", "Annotate")
            _settle(app, 1.0)
            timer.start()
            roots = (tmp / f"{mode}-small", tmp / mode)
            report[mode] = _phases(app, widget.session, ticks, roots, widget)
            timer.stop()
            widget.session.close()
            viewer.close()
        report["longest_stall_ratio_before_over_now"] = {
            phase: round(report["ui_thread_before"][phase]["longest_stall_ms"]
                         / max(1e-3, report["worker_now"][phase]["longest_stall_ms"]), 1)
            for phase in report["worker_now"]}
        return report
    finally:
        AnnotationSession.auto_first_suggestions = True
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=4096, help="image height (4096)")
    parser.add_argument("--width", type=int, default=8192, help="image width (8192)")
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
    for phase, ratio in report["longest_stall_ratio_before_over_now"].items():
        before = report["ui_thread_before"][phase]["longest_stall_ms"]
        now = report["worker_now"][phase]["longest_stall_ms"]
        print(f"{phase:28s} longest stall: UI thread {before:8.1f} ms, "
              f"worker {now:7.1f} ms ({ratio}x)")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
