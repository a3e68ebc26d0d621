"""``napari-crack-al predict MODEL IMAGES --out DIR``: crack masks (and probabilities) for images."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from .argtypes import open_fraction
from .conflicts import refuse_unused
from .ranks import join_ranks

_fraction = open_fraction("the threshold")

HELP = "predict crack masks for every image of a folder"

#: The MODEL argument that selects the training-free detector instead of a model file.
BUILTIN = "builtin"

#: Sub-folder of ``--out`` that receives the float32 probability maps.
PROBABILITY_DIR = "probabilities"

#: Options of a model that the detector has no use for, and why.
_MODEL_ONLY = {"--threshold": "the detector thresholds each image by its own statistics",
               "--tile": "the detector reads each image whole",
               "--device": "the detector runs on the CPU"}


def _tile(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 32 or value % 16:
        raise argparse.ArgumentTypeError(f"expected a multiple of 16 >= 32, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predict`` subcommand."""
    p = subparsers.add_parser(
        "predict", help=HELP,
        description=HELP + ". Masks are 0/255 PNGs named by image name (DIR/NAME.png); "
        f"--probabilities also writes float32 TIFFs to DIR/{PROBABILITY_DIR}/NAME.tif.")
    p.add_argument("model", metavar="MODEL", type=Path,
                   help="model: a checkpoint from 'train', an 'export-model' file (TorchScript "
                   f".pt or ONNX .onnx), or '{BUILTIN}' for the training-free ridge detector "
                   f"(a file called {BUILTIN} is given as ./{BUILTIN})")
    p.add_argument("images", metavar="IMAGES", type=Path, help="folder of images")
    p.add_argument("--out", metavar="DIR", type=Path, required=True,
                   help="output folder (created if missing)")
    p.add_argument("--probabilities", action="store_true",
                   help="also write crack probability maps (float32 TIFF) to "
                   f"DIR/{PROBABILITY_DIR} (with {BUILTIN}: the detector's evidence maps)")
    p.add_argument("--threshold", type=_fraction, default=None,
                   help="probability above which a pixel is crack (default: the threshold "
                   f"calibrated on held-out images when the model was trained, else 0.5; not "
                   f"with {BUILTIN})")
    p.add_argument("--tile", type=_tile, default=None,
                   help=f"inference tile size (default 512; not with {BUILTIN})")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default=None,
                   help=f"compute device (default auto; not with {BUILTIN}, which runs on the CPU)")
    p.add_argument("--force", action="store_true",
                   help="replace masks (and probability maps) that already exist in DIR")
    p.set_defaults(func=run)


def write_probability(path: Path, probability) -> Path:  # noqa: ANN001 - numpy array
    """Write a float32 probability map as a TIFF, atomically."""
    import numpy as np
    import tifffile

    from ..core.io.atomic import atomic_write_bytes

    buf = io.BytesIO()
    tifffile.imwrite(buf, np.asarray(probability, dtype=np.float32), photometric="minisblack",
                     compression="zlib")
    return atomic_write_bytes(path, buf.getvalue())


def _output_folder(args: argparse.Namespace, paths: list[Path]) -> Path:
    """The checked output folder: not a file, not the input folder, nothing replaced unasked."""
    from ..core.errors import InputError

    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise InputError(out, "is a file, not a folder")
    images = args.images.resolve()
    target = out.resolve()
    if target == images or images in target.parents:
        raise InputError(out, f"is the image folder {args.images} or inside it; choose another "
                              "output folder")
    existing = [out / f"{p.stem}.png" for p in paths if (out / f"{p.stem}.png").exists()]
    if args.probabilities:
        existing += [out / PROBABILITY_DIR / f"{p.stem}.tif" for p in paths
                     if (out / PROBABILITY_DIR / f"{p.stem}.tif").exists()]
    if existing and not args.force:
        shown = ", ".join(e.name for e in existing[:3]) + (" ..." if len(existing) > 3 else "")
        raise InputError(out, f"holds {len(existing)} file(s) this would replace ({shown}); "
                              "use --force to replace them")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _image_paths(folder: Path) -> list[Path]:
    from ..core.io.range_io import list_images

    paths = list_images(folder)
    if not paths:
        from ..core.errors import ImageReadError

        raise ImageReadError(folder, "no images found (supported: .png, .tif, .tiff, .npy)")
    return paths


def run_builtin(args: argparse.Namespace) -> int:
    """Masks of the training-free detector for every image of IMAGES."""
    from ..core.detector import detect_cracks
    from ..core.io.mask_io import write_mask
    from ..core.io.range_io import read_range_image
    from .progress import ProgressBar

    for option, reason in _MODEL_ONLY.items():
        refuse_unused(option, getattr(args, option[2:]),
                      f"applies to a model, not to {BUILTIN} ({reason})")
    paths = _image_paths(args.images)
    out = _output_folder(args, paths)
    prob_dir = out / PROBABILITY_DIR
    if args.probabilities:
        prob_dir.mkdir(exist_ok=True)
    print(f"detecting cracks in {len(paths)} images without a model", file=sys.stderr)
    bar = ProgressBar(len(paths), label="images")
    n_crack = 0
    try:
        for i, path in enumerate(paths):
            image = read_range_image(path)
            found = detect_cracks(image.data, image.valid)
            n_crack += int(found.mask.any())
            write_mask(out / f"{path.stem}.png", found.mask)
            if args.probabilities:
                write_probability(prob_dir / f"{path.stem}.tif", found.score)
            bar.update(i + 1)
    finally:
        bar.close()
    extra = f" and evidence maps to {prob_dir}" if args.probabilities else ""
    print(f"wrote {len(paths)} masks to {out}{extra} ({n_crack} with cracks)")
    return 0


def run(args: argparse.Namespace) -> int:
    """Predict every image of IMAGES and write the masks (and probability maps).

    Started by ``torchrun``, each rank predicts its share of the images (every N-th) on
    its own device; rank 0 prints the summary.
    """
    if str(args.model) == BUILTIN:
        return run_builtin(args)
    from ..core.device import configure_threads, describe_device, select_device
    from ..core.distributed import shard
    from ..core.export.exported_model import load_any_model
    from torch import set_num_threads as torch_threads

    dist = join_ranks(args.device)
    try:
        torch_threads(dist.cpu_threads(configure_threads(0)))
        device = dist.device(select_device(args.device or "auto"))
        all_paths = _image_paths(args.images)
        out = _output_folder(args, all_paths)  # before the model loads: fail fast
        dist.barrier()  # every rank checked the folder before any writes into it
        paths = shard(all_paths, dist)
        model, ckpt = load_any_model(args.model, device=device)
        threshold = ckpt.threshold if args.threshold is None else args.threshold
        if dist.is_main:
            source = " (the model's)" if args.threshold is None else ""
            ranks = f" over {dist.world_size} ranks" if dist.active else ""
            print(f"predicting {len(all_paths)} images on {describe_device(device)}{ranks}, "
                  f"threshold {threshold:.2f}{source}", file=sys.stderr)
        n_crack = _predict_paths(args, model, ckpt, paths, out, threshold, device,
                                 show=dist.is_main)
        n_crack = dist.total(n_crack)
    finally:
        dist.close()
    if dist.is_main:
        prob_dir = out / PROBABILITY_DIR
        extra = f" and probability maps to {prob_dir}" if args.probabilities else ""
        print(f"wrote {len(all_paths)} masks to {out}{extra} ({n_crack} with cracks)")
    return 0


def _predict_paths(args: argparse.Namespace, model, ckpt, paths: list[Path], out: Path,  # noqa: ANN001
                   threshold: float, device, show: bool) -> int:  # noqa: ANN001
    """Write the mask (and probability map) of every image of ``paths``; how many had cracks."""
    from ..core.inference import ImagePrediction, iter_predict_images
    from ..core.io.mask_io import write_mask
    from ..core.io.range_io import read_range_image
    from ..core.normalize import normalize_for_model
    from .progress import ProgressBar

    profile = str(ckpt.train_config.get("profile", "none"))
    tile = 512 if args.tile is None else args.tile
    prob_dir = out / PROBABILITY_DIR
    if args.probabilities:
        prob_dir.mkdir(exist_ok=True)

    def images():
        for path in paths:
            yield path.stem, normalize_for_model(read_range_image(path), profile=profile)

    bar = ProgressBar(len(paths), label="images") if show else None
    n_crack = 0
    try:
        for event in iter_predict_images(model, images(), total=len(paths), tile=tile,
                                         overlap=min(64, tile // 4), device=device):
            if isinstance(event, ImagePrediction):
                mask = event.prediction.probability > threshold
                n_crack += int(mask.any())
                write_mask(out / f"{event.name}.png", mask)
                if args.probabilities:
                    write_probability(prob_dir / f"{event.name}.tif", event.prediction.probability)
                if bar is not None:
                    bar.update(event.index + 1)
    finally:
        if bar is not None:
            bar.close()
    return n_crack
