"""``napari-crack-al export PROJECT --out DIR``: masks, a manifest and crack measurements."""

from __future__ import annotations

import argparse
from pathlib import Path

from .argtypes import non_negative_int as _non_negative_int
from .argtypes import positive_float as _positive_float
from .conflicts import refuse_together

HELP = "export the project's masks, a manifest and crack measurements (CSV) to a folder"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    p = subparsers.add_parser(
        "export", help=HELP,
        description=HELP + ". Masks are written as DIR/NAME.png (or .tif) with DIR/manifest.csv, "
        "DIR/measurements.csv (one row per crack) and DIR/measurements_summary.csv "
        "(one row per image). "
        "Nothing is written when any of these files exists already, unless --force is given.")
    p.add_argument("project", metavar="PROJECT", type=Path, help="project folder")
    p.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="output folder (created if missing)")
    p.add_argument("--format", dest="fmt", choices=("png", "tif"), default="png",
                   help="mask file format (default png)")
    p.add_argument("--values", type=int, choices=(255, 1), default=255,
                   help="pixel value of crack; background is 0 (default 255)")
    p.add_argument("--include", choices=("annotated", "annotated+suggested"), default="annotated",
                   help="accepted masks only, or also the images not yet annotated (nor skipped) "
                        "as the annotator sees them: their draft where there is one, else their "
                        "suggestion (default annotated)")
    p.add_argument("--force", action="store_true", help="overwrite existing files in DIR")
    p.add_argument("--pixel-size-mm", type=_positive_float, default=None, metavar="X",
                   help="pixel size for the millimetre columns (default: the project's; not "
                   "with --no-measurements)")
    p.add_argument("--min-area", type=_non_negative_int, default=None, metavar="PX",
                   help="smallest crack measured, in pixels (default 5; not with "
                   "--no-measurements)")
    p.add_argument("--no-measurements", dest="measure", action="store_false",
                   help="write the masks and the manifest only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export and print a one-line summary."""
    import time

    from ..core.export.masks import export_masks
    from ..core.project import Project
    from .progress import ProgressBar

    for option, value in (("--pixel-size-mm", args.pixel_size_mm), ("--min-area", args.min_area)):
        refuse_together("--no-measurements", not args.measure, option, value,
                        f"{option} only changes the measurements, which are not written")
    start = time.perf_counter()
    with Project.open(args.project) as project:
        bar: ProgressBar | None = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if bar is None:
                bar = ProgressBar(total, label="masks")
            if done:  # the bar has no rate to show before the first mask
                bar.update(done)

        try:
            result = export_masks(project, args.out, fmt=args.fmt, values=args.values,
                                  include=args.include, force=args.force,
                                  pixel_size_mm=args.pixel_size_mm, measure=args.measure,
                                  min_area=5 if args.min_area is None else args.min_area,
                                  progress=progress)
        finally:
            if bar is not None:
                bar.close()
    seconds = time.perf_counter() - start
    parts = [f"exported {result.n_masks} masks ({result.n_annotated} annotated, "
             f"{result.n_drafts} drafts, {result.n_suggested} suggested) as {args.fmt} "
             f"0/{args.values} to {result.out_dir}"]
    if result.measurements is not None:
        size = ("pixel size unknown" if result.pixel_size_mm is None
                else f"{result.pixel_size_mm:g} mm/px")
        parts.append(f"{result.n_cracks} cracks measured ({size})")
    if result.overwritten:
        parts.append(f"{len(result.overwritten)} files overwritten")
    print("; ".join(parts) + f" in {seconds:.1f} s")
    return 0
