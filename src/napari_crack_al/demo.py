"""``make demo``: napari with the plugin on a sample project (made on first run).

Usage::

    python -m napari_crack_al.demo --project DIR [--n 12] [--size 512] [--seed 0] [--screenshot PNG]

On first run ``DIR`` receives ``n`` synthetic range images (``DIR/images``, with
their ground truth in ``DIR/ground_truth``, which the project never reads as
annotations) and becomes a project. napari then opens with every dock widget of
the plugin, added through the plugin manifest as a user would from the Plugins
menu: "Crack project" (the queue) on top, and "Annotate", "Train" and "Export"
as tabs below it (Train in front), the project open and its first queued image
loaded: paint cracks, press Shift+A, and after two or three images click
**Retrain & suggest next**.

With ``--screenshot`` the whole window is rendered to a PNG and the program
exits instead of running the event loop.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main", "build_parser", "prepare_project", "add_dock_widgets", "add_compact_widget", "PLUGIN",
           "WIDGET_NAMES", "COMPACT_NAME"]

logger = logging.getLogger(__name__)
WINDOW_SIZE = (1366, 768)  # a laptop screen: the compact panel fits it
#: A ``--screenshot`` run that has not finished after this many seconds prints its threads and exits.
SCREENSHOT_BOUND_S = 180
PLUGIN = "napari-crack-al"
#: Display names of the plugin's dock widgets (napari.yaml), in the order they are added.
WIDGET_NAMES = ("Crack project", "Annotate", "Train", "Export")
COMPACT_NAME = "Crack AL"


def build_parser() -> argparse.ArgumentParser:
    """The demo's command line."""
    parser = argparse.ArgumentParser(prog="python -m napari_crack_al.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--project", type=Path, default=Path(".sample-project"),
                        help="project folder; sample images are generated there on first run")
    parser.add_argument("--n", type=int, default=12, help="number of sample images on first run (12)")
    parser.add_argument("--size", type=int, default=512, help="sample image side in pixels (512)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample images (0)")
    parser.add_argument("--screenshot", type=Path, default=None,
                        help="render the window to this PNG and exit instead of opening napari")
    return parser


def prepare_project(root: Path, *, n: int = 12, size: int = 512, seed: int = 0) -> Path:
    """Make ``root`` a project: generate sample images unless ``root/images`` has some.

    Returns
    -------
    Path
        ``root``.
    """
    from .core.project import Project
    from .core.io.range_io import SUPPORTED_IMAGE_SUFFIXES
    from .core.sample_project import write_sample_images

    if Project.is_project(root):
        return root
    images = root / "images"
    has_images = images.is_dir() and any(p.suffix.lower() in SUPPORTED_IMAGE_SUFFIXES
                                         for p in images.iterdir())
    if not has_images:
        print(f"Generating {n} synthetic range images ({size} x {size}) in {images} ...", flush=True)
        write_sample_images(root, n=n, size=size, seed=seed)
    Project.create(root, pixel_size_mm=1.0 if not has_images else None)
    print(f"Created the crack project {root}", flush=True)
    return root


def add_compact_widget(viewer: object, *, front: str = "Train") -> dict[str, object]:
    """Add the compact panel through the manifest, with the ``front`` tab shown.

    Returns ``{name: section}`` for the names of :data:`WIDGET_NAMES` (the queue is
    "Crack project") and :data:`COMPACT_NAME` for the panel itself.
    """
    _dock, panel = viewer.window.add_plugin_dock_widget(PLUGIN, COMPACT_NAME)  # type: ignore[attr-defined]
    sections = dict(zip(WIDGET_NAMES, (panel.queue, panel.annotate, panel.train, panel.export)))
    if front in WIDGET_NAMES[1:]:
        panel.tabs.setCurrentIndex(WIDGET_NAMES.index(front) - 1)
    return {**sections, COMPACT_NAME: panel}


def add_dock_widgets(viewer: object, *, front: str = "Train") -> dict[str, object]:
    """Add every dock widget of the plugin through the manifest; returns ``{display name: widget}``.

    "Crack project" goes on top of the right dock area; the others are tabs below it,
    with ``front`` raised.
    """
    from qtpy.QtCore import Qt

    docks, widgets = {}, {}
    for name in WIDGET_NAMES:
        dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)  # type: ignore[attr-defined]
        docks[name], widgets[name] = dock, widget
    qt_window = getattr(viewer.window, "_qt_window", None)  # type: ignore[attr-defined]
    if qt_window is not None:
        first = docks[WIDGET_NAMES[1]]
        qt_window.splitDockWidget(docks[WIDGET_NAMES[0]], first, Qt.Orientation.Vertical)
        for name in WIDGET_NAMES[2:]:
            qt_window.tabifyDockWidget(first, docks[name])
        if front in docks:
            from qtpy.QtCore import QTimer

            docks[front].raise_()
            QTimer.singleShot(0, docks[front].raise_)  # once the tab bar exists
    return widgets


def _process_events(rounds: int = 5) -> None:
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    for _ in range(rounds):
        app.processEvents()


def _hide_toasts(window: object) -> None:
    """Hide napari's pop-up notifications (e.g. the PyQt5 deprecation notice) before a screenshot."""
    from qtpy.QtWidgets import QApplication, QWidget

    qt_window = getattr(window, "_qt_window", None)
    widgets = list(QApplication.topLevelWidgets())
    if qt_window is not None:
        widgets += qt_window.findChildren(QWidget)
    for widget in widgets:
        if type(widget).__name__ == "NapariQtNotification":
            widget.hide()


def _wait_first_suggestions(session: object, bound_s: float = 60.0) -> None:
    """Let the detector's first suggestions finish (so the screenshot shows one), at most ``bound_s``."""
    import time

    end = time.monotonic() + bound_s
    while getattr(session, "first_suggestions_running", False) and time.monotonic() < end:
        _process_events(1)
        time.sleep(0.05)


def _wait_jobs(bound_s: float) -> None:
    """Let every worker of Qt's thread pool finish (at most ``bound_s``), events flowing."""
    import time

    from qtpy.QtCore import QThreadPool

    pool = QThreadPool.globalInstance()
    end = time.monotonic() + bound_s
    while pool.activeThreadCount() > 0 and time.monotonic() < end:
        _process_events(1)
        time.sleep(0.05)
    _process_events()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from .core.errors import CrackALError

    try:
        root = prepare_project(args.project, n=args.n, size=args.size, seed=args.seed)
    except CrackALError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    import napari

    viewer = napari.Viewer(title="napari-crack-al demo", show=True)
    viewer.window.resize(*WINDOW_SIZE)
    widgets = add_compact_widget(viewer)
    project = widgets["Crack project"].open_project(root)
    if project is None:
        print(f"error: could not open the project {root} (see the notification)", file=sys.stderr)
    if args.screenshot is None:
        napari.run()
        return 0 if project is not None else 2

    import faulthandler

    # a screenshot run must never hang a script or CI: past the bound, every thread's stack is
    # printed and the process exits
    faulthandler.dump_traceback_later(SCREENSHOT_BOUND_S, exit=True)
    session = widgets["Crack project"].session
    _wait_first_suggestions(session)
    _process_events()
    _hide_toasts(viewer.window)
    _process_events()
    args.screenshot.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(args.screenshot), canvas_only=False, flash=False)
    print(f"Wrote the screenshot {args.screenshot}", flush=True)
    session.stop_first_suggestions()
    _wait_first_suggestions(session, 30.0)
    _wait_jobs(60.0)  # a worker alive at exit (e.g. the Train panel's device check) breaks Qt's teardown
    viewer.close()
    _process_events()
    faulthandler.cancel_dump_traceback_later()
    return 0 if project is not None else 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
