"""Screenshots of the annotation loop for docs/user-guide.md (docs/images/*.png).

Runs the real loop on a synthetic sample project: annotate (paint the ground
truth, as an annotator would), accept, retrain (a real CPU round), see the new
suggestion and its probability overlay, export. Needs a display::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/make_screenshots.py

The window is 1366 x 768 (a laptop screen) with the compact Crack AL panel.

Options: ``--out docs/images`` ``--iterations 300`` (training steps of the round)
``--keep PROJECT`` (keep the sample project there instead of a temporary folder).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _pump(app, seconds: float = 0.3) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.005)


def _wait(app, condition, timeout: float, what: str) -> None:
    end = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > end:
            raise TimeoutError(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.005)


def _raise_tab(widget) -> None:
    """Show the tab of the compact panel (or the dock widget) that holds ``widget``."""
    from qtpy.QtWidgets import QDockWidget, QTabWidget

    parent, child = widget.parent(), widget
    while parent is not None:
        if isinstance(parent, QTabWidget):
            for i in range(parent.count()):
                if parent.widget(i) is child or parent.widget(i).isAncestorOf(widget):
                    parent.setCurrentIndex(i)
                    return
        if isinstance(parent, QDockWidget):
            parent.raise_()
            return
        parent, child = parent.parent(), parent


def _shot(viewer, app, path: Path) -> None:
    from napari_crack_al.demo import _hide_toasts

    _pump(app, 0.5)
    _hide_toasts(viewer.window)
    _pump(app, 0.2)
    viewer.screenshot(str(path), canvas_only=False, flash=False)
    print(f"wrote {path}", flush=True)


def _paint_truth(session, root: Path, fraction: float = 1.0) -> None:
    from napari_crack_al.core.io.mask_io import read_mask

    truth = read_mask(root / "ground_truth" / f"{session.current_name}.png")
    if fraction < 1.0:  # an annotation in progress: the upper part only
        truth = truth.copy()
        truth[int(truth.shape[0] * fraction):] = False
    layer = session.labels_layer
    layer.data[...] = truth.astype(np.uint8)
    layer.refresh()
    layer.events.paint()  # as a brush stroke does (the Annotate panel re-measures)


def _trace_shot(viewer, app, session, root: Path, path: Path) -> None:
    from napari_crack_al.core.io.mask_io import read_mask
    from napari_crack_al.core.trace import trace_plan
    from napari_crack_al.widgets.annotate_widget import clear_mask

    def long_lines(name: str) -> list:
        truth = read_mask(root / "ground_truth" / f"{name}.png")
        return sorted(trace_plan(truth, spacing=25), key=len, reverse=True)

    lines = long_lines(session.current_name)
    if not lines or len(lines[0]) < 3:  # some sample images have no crack: open one that has
        waiting = [r.name for r in session.project.records() if r.status.value != "annotated"]
        name = next((n for n in waiting if (ls := long_lines(n)) and len(ls[0]) >= 3), None)
        if name is None:
            print("no crack long enough for the trace picture", file=sys.stderr)
            return
        session.load(name)
        lines = long_lines(name)
    clear_mask(session)
    tool = session.trace_tool
    tool.set_mode("trace")
    for point in lines[0][:-1]:
        tool.click(point)
    tool.preview(lines[0][-1])
    _shot(viewer, app, path)
    tool.set_mode(None)
    clear_mask(session)


def _erase_shot(viewer, app, session, root: Path, path: Path) -> None:
    from scipy import ndimage

    from napari_crack_al.core.io.mask_io import read_mask
    from napari_crack_al.core.trace import crack_segments

    if not np.any(np.asarray(session.labels_layer.data)):  # open a waiting image with a suggestion
        name = next((r.name for r in session.project.records()
                     if r.status.value == "suggested"
                     and np.any(session.project.read_suggestion(r.name))), None)
        if name is None:
            print("no suggested crack for the erase picture", file=sys.stderr)
            return
        session.load(name)
        _pump(app)
    mask = np.asarray(session.labels_layer.data) > 0
    truth = ndimage.binary_dilation(read_mask(root / "ground_truth" / f"{session.current_name}.png"),
                                    iterations=3)
    seg = crack_segments(mask)
    labels, counts = np.unique(seg[(seg > 0) & ~truth], return_counts=True)
    if labels.size == 0:  # no false crack: drop the largest segment for the picture
        labels, counts = np.unique(seg[seg > 0], return_counts=True)
    if labels.size == 0:
        print("no suggested crack for the erase picture", file=sys.stderr)
        return
    target = np.argwhere(seg == labels[int(np.argmax(counts))])[0]
    tool = session.trace_tool
    tool.set_mode("erase_crack")
    tool.click(tuple(target))
    _shot(viewer, app, path)
    session.labels_layer.undo()
    tool.set_mode(None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--iterations", type=int, default=300, help="training steps of the round (300)")
    parser.add_argument("--accept", type=int, default=4, help="images accepted before the round (4)")
    parser.add_argument("--keep", type=Path, default=None, help="make the sample project here and keep it")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_crack_al.demo import WINDOW_SIZE, add_compact_widget, prepare_project

    tmp = None
    if args.keep is None:
        tmp = Path(tempfile.mkdtemp(prefix="crack-al-shots-"))
        root = tmp / "sample-project"
    else:
        root = args.keep
    try:
        prepare_project(root, n=10, size=256, seed=3)
        viewer = napari.Viewer(title="napari-crack-al", show=True)
        viewer.window.resize(*WINDOW_SIZE)
        app = QApplication.instance()
        widgets = add_compact_widget(viewer, front="Annotate")
        project_w, annotate, train, export = (widgets[k] for k in ("Crack project", "Annotate", "Train", "Export"))
        project_w.open_project(root)
        session = project_w.session
        _wait(app, lambda: "Detecting" not in train.device_label.text(), 120, "the device")

        # 0. a new project: the training-free detector's first suggestion, before any model
        _wait(app, lambda: session.mask_source == "suggestion", 120, "the first suggestion")
        _wait(app, lambda: not session.first_suggestions_running, 600, "the first suggestions")
        _shot(viewer, app, args.out / "first-suggestion.png")

        # 1. annotating: a crack being painted, its measurements on the right
        _paint_truth(session, root, fraction=0.6)
        _wait(app, lambda: annotate.summary is not None and annotate.summary.n_cracks > 0, 30, "measurements")
        _shot(viewer, app, args.out / "annotate.png")

        # accept a few images painted with their ground truth (Shift+A)
        for _ in range(args.accept):
            _paint_truth(session, root)
            session.accept_and_next()
        _pump(app)

        # 1b. trace mode: two clicks along a crack painted, the next piece previewed
        _trace_shot(viewer, app, session, root, args.out / "trace.png")

        # 2. a round in progress: Retrain & suggest next, the panel's progress and losses
        _raise_tab(train)
        train.device_combo.setCurrentText("auto")
        train.seconds_spin.setValue(0)  # a fixed number of steps for the pictures
        train.iterations_spin.setValue(args.iterations)
        job = train.retrain()
        if job is None:
            print("the round did not start", file=sys.stderr)
            return 2
        _wait(app, lambda: train.progress_bar.format().startswith("Training")
              and train.progress_bar.value() >= max(2, args.iterations // 3), 3600, "training")
        train.plot.redraw()
        _shot(viewer, app, args.out / "training.png")

        # 3. the round finished: the top image with the new suggestion and its probability overlay
        _wait(app, lambda: job.done, 3600, "the round")
        if train.last_result is None:
            print(f"the round failed: {train.status_label.text()}", file=sys.stderr)
            return 2
        train.plot.redraw()
        _shot(viewer, app, args.out / "suggestion.png")
        session.set_overlay_visible(False)
        _raise_tab(annotate)
        _wait(app, lambda: annotate.summary is not None, 30, "measurements")
        _shot(viewer, app, args.out / "suggestion-no-overlay.png")
        session.set_overlay_visible(True)

        # 3b. erase crack: a suggested segment dropped with one click
        _erase_shot(viewer, app, session, root, args.out / "erase-crack.png")

        # 4. export
        _raise_tab(export)
        export.include_combo.setCurrentIndex(export.include_combo.findData("annotated+suggested"))
        export.force_check.setChecked(True)
        export_job = export.export()
        if export_job is not None:
            _wait(app, lambda: export_job.done, 600, "the export")
        _shot(viewer, app, args.out / "export.png")
        viewer.close()
        _pump(app, 0.2)
        print(f"round: {train.last_result.model_version}, trained {train.last_result.train_seconds:.0f} s, "
              f"scored {train.last_result.score_seconds:.0f} s")
        return 0
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
