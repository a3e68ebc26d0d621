"""``napari-crack-al train IMAGES MASKS --out MODEL``: train a crack segmenter (U2PL or supervised)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .argtypes import existing_file
from .argtypes import non_negative_int as _non_negative_int
from .argtypes import positive_float as _positive_float
from .argtypes import positive_int as _positive_int
from .argtypes import seconds as _seconds
from .argtypes import share as _share
from .conflicts import refuse_together
from .ranks import join_ranks

HELP = "train a crack segmenter on images with masks (U2PL semi-supervised or supervised)"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    from ..core.model.config import DECODERS
    from ..core.normalize import DEFAULT_PROFILE, PROFILE_MODES
    from ..core.training.config import TRAIN_MODES

    p = subparsers.add_parser(
        "train", help=HELP,
        description=HELP + ". Images and masks pair by file name without suffix; colour "
        "photographs are converted to one channel. A share of the labelled images (--val-fraction) "
        "is held out: the crack-probability threshold that maximises their F1 is stored with "
        "the model and used by 'predict'. The model file holds the EMA teacher's weights, "
        "the model and training configuration, the threshold and the names of the images used.")
    p.add_argument("images", metavar="IMAGES", type=Path, help="folder of training images")
    p.add_argument("masks", metavar="MASKS", type=Path,
                   help="folder of crack masks (0/255 or 0/1, same names as the images)")
    p.add_argument("--out", metavar="MODEL", type=Path, required=True,
                   help="model file to write (e.g. model.pt); its folder is created")
    p.add_argument("--unlabeled", metavar="DIR", type=Path, default=None,
                   help="folder of images without masks for semi-supervised training "
                   "(images that have a mask in MASKS are left out; not with --mode supervised)")
    p.add_argument("--mode", choices=TRAIN_MODES, default="semi",
                   help="semi: U2PL (default; supervised when no --unlabeled); unimatch: "
                   "weak-to-strong consistency with feature perturbation; supervised only")
    p.add_argument("--preset", choices=("fast", "accurate"), default="fast",
                   help="model size: fast (ResNet-18, CPU) or accurate (ResNet-50, GPU); with "
                   "--init the model is --init's and the preset only sets the default crop "
                   "size, batch size and iterations")
    p.add_argument("--decoder", choices=DECODERS, default=None,
                   help="decoder of a new model (default: the preset's, unet; not with --init)")
    p.add_argument("--iterations", type=_positive_int, default=None,
                   help="optimisation steps (default: the preset's; not with --seconds)")
    p.add_argument("--seconds", type=_seconds, default=None,
                   help="training time instead of --iterations: the steps are planned from "
                   "the step time measured on this machine")
    p.add_argument("--val-images", metavar="DIR", type=Path, default=None,
                   help="held-out images that calibrate the threshold (needs --val-masks; "
                   "default: a share of IMAGES, see --val-fraction)")
    p.add_argument("--val-masks", metavar="DIR", type=Path, default=None,
                   help="masks of --val-images")
    p.add_argument("--val-fraction", metavar="F", type=_share, default=None,
                   help="without --val-images: share of the labelled images held out when there "
                   "are at least 5 (default 0.2; 0 trains on all, threshold 0.5 or --init's)")
    p.add_argument("--crop-size", type=_positive_int, default=None,
                   help="training crop side in pixels, a multiple of 16 (default: the preset's)")
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help="labelled crops per step (default: the preset's)")
    p.add_argument("--lr", type=_positive_float, default=None,
                   help="base learning rate (default 0.01)")
    p.add_argument("--profile", choices=PROFILE_MODES, default=DEFAULT_PROFILE,
                   help="normalisation: remove the road's transverse profile first (auto, the "
                   "default: per column for one-channel range images, not for photographs)")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto",
                   help="compute device (default auto: CUDA, then MPS, then CPU)")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="CPU threads (default: all cores)")
    p.add_argument("--init", metavar="MODEL", type=Path, default=None,
                   help="warm start from this model file (its teacher is kept; a round that "
                   "makes the held-out F1 worse keeps this model)")
    p.add_argument("--encoder-weights", metavar="FILE", type=existing_file, default=None,
                   help="ResNet weights for the encoder of a new model, from a local file (e.g. "
                   "a torchvision resnet18 state dict you downloaded; not with --init); nothing "
                   "is downloaded")
    p.set_defaults(func=run)


def _check_exclusive(args: argparse.Namespace) -> None:
    """Refuse options that another option would silently override."""
    refuse_together("--seconds", args.seconds, "--iterations", args.iterations,
                    "--seconds plans the steps")
    for option in ("--decoder", "--encoder-weights"):
        refuse_together("--init", args.init, option, getattr(args, option[2:].replace("-", "_")),
                        f"--init continues its model; {option} shapes a new one")
    if args.mode == "supervised":
        refuse_together("--unlabeled", args.unlabeled, "--mode supervised", True,
                        "supervised training uses no unlabelled images")


def _config(args: argparse.Namespace, dist):  # noqa: ANN001, ANN202 - Distributed -> TrainConfig
    from ..core.device import cpu_cores
    from ..core.training.config import TrainConfig

    # no user interface to keep responsive: all cores (shared by the ranks of a machine)
    # unless --threads says otherwise
    threads = args.threads if args.threads is not None else dist.cpu_threads(cpu_cores())
    overrides = {"mode": args.mode, "seed": args.seed, "device": args.device,
                 "profile": args.profile, "threads": threads}
    for name in ("iterations", "crop_size", "batch_size", "lr", "seconds", "decoder"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    if args.batch_size is not None:
        overrides["unlabeled_batch_size"] = args.batch_size
    if args.encoder_weights is not None:
        overrides["encoder_weights"] = str(args.encoder_weights)
    return TrainConfig.from_preset(args.preset, **overrides)


def _labeled_and_heldout(args: argparse.Namespace, profile: str) -> tuple[list, list]:
    from ..core.errors import InputError
    from ..core.training.data import HELDOUT_FRACTION, load_labeled_folder, split_validation

    labeled = load_labeled_folder(args.images, args.masks, profile=profile)
    if (args.val_images is None) != (args.val_masks is None):
        raise InputError(args.val_images or args.val_masks,
                         "--val-images and --val-masks go together")
    if args.val_images is not None:
        if args.val_fraction is not None:
            raise InputError(args.val_images, "give --val-images or --val-fraction, not both")
        return labeled, load_labeled_folder(args.val_images, args.val_masks, profile=profile)
    fraction = HELDOUT_FRACTION if args.val_fraction is None else args.val_fraction
    return split_validation(labeled, fraction, seed=args.seed)


def _drive(gen, quiet: bool):  # noqa: ANN001, ANN202 - trainer generator -> TrainResult
    """Run the trainer, printing its messages and a progress bar (nothing when ``quiet``)."""
    from ..core.events import CheckpointEvent, MessageEvent, Outcome, StepEvent, ValidationEvent
    from .progress import ProgressBar

    bar: ProgressBar | None = None
    run = Outcome(gen)
    try:
        for event in run:
            if quiet:
                continue
            if isinstance(event, MessageEvent):
                print(event.text, file=sys.stderr)
            elif isinstance(event, StepEvent):
                if bar is None or bar.total != event.total_steps:
                    if bar is not None:
                        bar.close()
                    bar = ProgressBar(event.total_steps, label="steps")
                bar.update(event.step, suffix=f"loss {event.losses.get('total', 0.0):.3f}")
            elif isinstance(event, ValidationEvent):
                print(f"validation at step {event.step}: " + ", ".join(
                    f"{k} {v:.3f}" for k, v in event.metrics.items()), file=sys.stderr)
            elif isinstance(event, CheckpointEvent) and bar is not None:
                bar.close()
                bar = None
    finally:
        run.close()
        if bar is not None:
            bar.close()
    return run.value


def run(args: argparse.Namespace) -> int:
    """Load the data, drive the trainer with a progress bar, report the model file.

    Started by ``torchrun`` (several processes), every rank trains on its own crops with
    averaged gradients; rank 0 prints and writes the model file.
    """
    from ..core.training.lazy_images import load_unlabeled_folder
    from ..core.training.trainer import train

    _check_exclusive(args)
    dist = join_ranks(args.device)
    config = _config(args, dist)
    labeled, validation = _labeled_and_heldout(args, config.profile)
    unlabeled = []
    if args.unlabeled is not None and config.semi:
        unlabeled = load_unlabeled_folder(args.unlabeled, profile=config.profile,
                                          exclude={t.name for t in labeled + validation})
    out: Path = args.out
    if out.exists() and out.is_dir():
        from ..core.errors import InputError

        raise InputError(out, "is a folder; give the model file to write, e.g. model.pt")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        result = _drive(train(labeled, unlabeled, config, checkpoint_path=out, init=args.init,
                              validation=validation, distributed=dist), quiet=not dist.is_main)
    finally:
        dist.close()
    if result is None or result.checkpoint is None:
        print("training stopped before the end; no model written", file=sys.stderr)
        return 1
    if dist.is_main:
        _report(result, labeled, unlabeled, validation)
    return 0


def _report(result, labeled: list, unlabeled, validation: list) -> None:  # noqa: ANN001
    """The one-line summary of a finished run."""
    losses = ", ".join(f"{k} {v:.3f}" for k, v in result.losses.items())
    where = {"heldout": f"calibrated on {len(validation)} held-out image(s)",
             "previous": "the warm start's", "default": "default, nothing held out"}
    kept = "; the previous model was kept" if result.kept_previous else ""
    print(f"wrote {result.checkpoint} ({result.steps} steps, mode {result.mode}, "
          f"{len(labeled)} labelled + {len(unlabeled) if result.mode == 'semi' else 0} unlabelled "
          f"images, {result.seconds:.1f} s; threshold {result.threshold:.2f} "
          f"({where[result.threshold_source]}){kept}; last losses: {losses})")
