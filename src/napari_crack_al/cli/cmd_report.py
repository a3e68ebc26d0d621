"""``napari-crack-al report PROJECT --out report.html|report.md``: the project report."""

from __future__ import annotations

import argparse
from pathlib import Path

from .argtypes import non_negative_int as _non_negative_int

HELP = "write a project report (progress, effort, learning curves, crack statistics)"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    p = subparsers.add_parser(
        "report", help=HELP,
        description=HELP + ". A .html report is one self-contained file (plots embedded); a .md "
        "report writes its plots to STEM_files/ beside it. Nothing is overwritten unless --force "
        "is given.")
    p.add_argument("project", metavar="PROJECT", type=Path, help="project folder")
    p.add_argument("--out", metavar="FILE", type=Path, required=True,
                   help="report file ending in .html or .md")
    p.add_argument("--force", action="store_true", help="replace existing report files")
    p.add_argument("--min-area", type=_non_negative_int, default=5, metavar="PX",
                   help="smallest crack measured, in pixels (default 5)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the report and print one line."""
    import time

    from ..core.export.report import report_format_for, write_report
    from ..core.project import Project
    from .progress import ProgressBar

    report_format_for(args.out)  # a wrong suffix fails before the project is read
    start = time.perf_counter()
    bar: ProgressBar | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = ProgressBar(total, label="masks measured")
        if done:
            bar.update(done)

    with Project.open(args.project) as project:
        try:
            result = write_report(project, args.out, force=args.force, min_area=args.min_area,
                                  progress=progress)
        finally:
            if bar is not None:
                bar.close()
    n = result.report.numbers
    print(f"wrote {result.fmt} report {result.path} ({n.get('n_images', 0)} images, "
          f"{n.get('counts', {}).get('annotated', 0)} annotated, {n.get('n_models', 0)} models, "
          f"{result.report.n_plots} plots) in {time.perf_counter() - start:.1f} s")
    return 0
