"""``napari-crack-al make-sample DIR``: a ready project of synthetic range images + ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path

from .argtypes import non_negative_int as _non_negative_int
from .argtypes import positive_float as _positive_float
from .argtypes import positive_int as _positive_int

HELP = "write synthetic range images + ground truth to DIR and make it a project"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``make-sample`` subcommand."""
    description = (HELP + ". Image i is generated from the seed (SEED, i), so a larger --n extends "
                   "a smaller one identically. ground_truth/ is never read as annotations.")
    p = subparsers.add_parser("make-sample", help=HELP, description=description)
    p.add_argument("dir", metavar="DIR", type=Path, help="destination folder (created if missing)")
    p.add_argument("--n", type=_positive_int, default=50, help="number of images (default 50)")
    p.add_argument("--size", type=_positive_int, default=512,
                   help="image side in pixels (default 512)")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="series seed (default 0)")
    p.add_argument("--pixel-size-mm", type=_positive_float, default=1.0,
                   help="ground sampling distance stored in the project (default 1.0)")
    p.add_argument("--force", action="store_true",
                   help="overwrite the sample files of a non-empty DIR/images")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the images and ground truth, then create (or refresh) the project."""
    import time

    from ..core.project import Project
    from ..core.sample_project import GROUND_TRUTH_DIR, IMAGES_DIR, write_sample_images
    from ..core.synthetic import SyntheticConfig
    from .progress import ProgressBar

    root: Path = args.dir
    config = SyntheticConfig(size=args.size, pixel_size_mm=args.pixel_size_mm)
    bar = ProgressBar(args.n, label="images")
    start = time.perf_counter()
    try:
        paths = write_sample_images(root, n=args.n, seed=args.seed, config=config,
                                    overwrite=args.force,
                                    progress=lambda done, _total: bar.update(done))
    finally:
        bar.close()
    if Project.is_project(root):
        with Project.open(root) as project:
            added = project.refresh()
            project.pixel_size_mm = args.pixel_size_mm
            what = f"refreshed the existing project ({len(added)} new images)"
    else:
        with Project.create(root, pixel_size_mm=args.pixel_size_mm):
            what = "created the project"
    seconds = time.perf_counter() - start
    print(f"wrote {len(paths)} synthetic {args.size}x{args.size} range images to "
          f"{root / IMAGES_DIR} and ground truth to {root / GROUND_TRUTH_DIR} in {seconds:.1f} s; "
          f"{what} in {root}")
    return 0
