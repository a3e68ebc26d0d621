"""``napari-crack-al simulate IMAGES MASKS --out DIR``: label efficiency, masks as annotator."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .argtypes import int_at_least as _int_at_least
from .argtypes import existing_file, open_fraction, seconds, share
from .conflicts import refuse_together, refuse_unused

_fraction = open_fraction("the validation fraction")

HELP = "simulate annotate -> retrain -> score -> suggest with the true masks as the annotator"


def _name_list(valid: tuple[str, ...], what: str):  # noqa: ANN202
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
        if not items:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {what}")
        bad = [t for t in items if t not in valid]
        if bad:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(bad)}; valid: {', '.join(valid)}")
        return items

    return parse


def _arm_list(text: str) -> tuple[str, ...]:
    from ..core.simulation import parse_arm
    from ..core.errors import ConfigError

    items = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list of arms")
    for item in items:
        try:
            parse_arm(item)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return items


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` subcommand."""
    description = (
        HELP + ". Each arm (strategy x mode) gets its own project in DIR/project_<arm>/ with "
        "copies of the training images. Round 0 annotates --initial images (random for "
        "'random', representatives of label-free features (k-medoids) for the active strategies) by accepting "
        "their true masks; each round then trains (warm start, --iterations steps), scores "
        "and re-sorts the queue, evaluates the new model on the validation images and "
        "annotates the first --per-round images of the queue. Writes DIR/curve.csv, "
        "DIR/selected.csv and DIR/curve.png. Images and masks pair by file name without "
        "suffix; colour photographs are converted to one channel.")
    p = subparsers.add_parser("simulate", help=HELP, description=description)
    p.add_argument("images", metavar="IMAGES", type=Path, help="folder of training-pool images")
    p.add_argument("masks", metavar="MASKS", type=Path,
                   help="folder of their true masks (same names as the images)")
    p.add_argument("--out", metavar="DIR", type=Path, required=True, help="output folder")
    _add_validation(p)
    _add_arms(p)
    _add_training(p)
    p.set_defaults(func=run)


def _add_validation(p: argparse.ArgumentParser) -> None:
    """The external validation set."""
    val = p.add_argument_group("validation (external to the projects)")
    val.add_argument("--val-images", metavar="DIR", type=Path, default=None,
                     help="folder of validation images (needs --val-masks)")
    val.add_argument("--val-masks", metavar="DIR", type=Path, default=None,
                     help="folder of validation masks")
    val.add_argument("--val-fraction", metavar="F", type=_fraction, default=None,
                     help="without --val-images: share of IMAGES held out for validation, in "
                     "(0, 1) (default 0.2; the split is seeded)")


def _add_arms(p: argparse.ArgumentParser) -> None:
    """The arms: selection, labels per round, strategies and modes."""
    from ..core.simulation import SIM_STRATEGIES
    from ..core.training.config import TRAIN_MODES

    p.add_argument("--initial", type=_int_at_least(1), default=None,
                   help="images annotated before the first round (default 5; not when the "
                   "full arm is the only arm)")
    p.add_argument("--per-round", type=_int_at_least(1), default=None,
                   help="images annotated after each round (default 5; not when the full arm "
                   "is the only arm)")
    p.add_argument("--rounds", type=_int_at_least(1), default=4,
                   help="training rounds per arm (default 4)")
    p.add_argument("--strategy", choices=SIM_STRATEGIES, default=None,
                   help="selection strategy of a single arm (default hybrid; 'full' = every "
                   "training image, supervised)")
    p.add_argument("--compare", metavar="S1,S2,...",
                   type=_name_list(SIM_STRATEGIES, "strategies"), default=None,
                   help="run several strategies with the same seed, budget and validation "
                   "split (not with --strategy)")
    p.add_argument("--mode", choices=TRAIN_MODES, default=None,
                   help="training mode of every arm but the full one, which is always "
                   "supervised (default semi)")
    p.add_argument("--modes", metavar="M1,M2", type=_name_list(TRAIN_MODES, "modes"),
                   default=None, help="several modes, e.g. semi,supervised (not with --mode)")
    p.add_argument("--arms", metavar="A1,A2,...", type=_arm_list, default=None,
                   help="explicit arms STRATEGY-MODE or full, e.g. random-supervised,"
                   "hybrid-semi,full (not with --compare, --modes, --strategy or --mode; --full "
                   "adds the full arm)")
    p.add_argument("--full", action="store_true",
                   help="add the full-supervision reference arm (every training image, "
                   "supervised, same iterations per round)")


def _add_training(p: argparse.ArgumentParser) -> None:
    """Model, training budget, suggestions and compute."""
    from ..core.model.config import DECODERS
    from ..core.normalize import DEFAULT_PROFILE, PROFILE_MODES

    p.add_argument("--preset", choices=("fast", "accurate"), default="fast",
                   help="model preset (default fast)")
    p.add_argument("--iterations", type=_int_at_least(1), default=None,
                   help="training steps per round (default 200; not with --seconds)")
    p.add_argument("--seconds", type=seconds, default=None,
                   help="training time per round instead of --iterations (steps planned from "
                   "the step time measured on this machine; not reproducible across machines)")
    p.add_argument("--decoder", choices=DECODERS, default=None,
                   help="decoder of the models (default: the preset's)")
    p.add_argument("--encoder-weights", metavar="FILE", type=existing_file, default=None,
                   help="local ResNet weights for the encoder of each arm's first model")
    p.add_argument("--threshold", type=open_fraction("the threshold"), default=None,
                   help="fixed crack-probability threshold of suggestions and validation "
                   "(default: each model's threshold, calibrated on the project's held-out "
                   "images as in the plugin)")
    p.add_argument("--heldout-fraction", type=share, default=None,
                   help="share of each project's annotated images held out for the threshold "
                   "(default 0.2, as in the plugin; 0 turns calibration off)")
    p.add_argument("--no-detector", action="store_true",
                   help="round-0 images start from an empty mask instead of the training-free "
                   "detector's suggestion (not when the full arm is the only arm)")
    p.add_argument("--model-suggestions", action="store_true",
                   help="after each round always suggest the model's masks (default: the "
                   "cheapest of the model's, the tuned detector's and none by their edit "
                   "fraction on the held-out images, as in the plugin; not when the full arm "
                   "is the only arm)")
    p.add_argument("--crop-size", type=_int_at_least(32), default=None,
                   help="training crop side, a multiple of 16 (default: the preset's)")
    p.add_argument("--batch-size", type=_int_at_least(1), default=None,
                   help="labelled (and unlabelled) crops per step (default: the preset's)")
    p.add_argument("--warmup", type=_int_at_least(0), default=None,
                   help="supervised warm-up steps of an arm's first round before the "
                   "semi-supervised losses start (later rounds warm-start and use them at "
                   "once; default: 10 %% of --iterations; needs an arm in a semi mode)")
    p.add_argument("--class-weighting", action="store_true",
                   help="inverse-frequency class weights in the cross-entropy terms (helps the "
                   "semi mode against collapsing to background with few labels)")
    p.add_argument("--profile", choices=PROFILE_MODES, default=DEFAULT_PROFILE,
                   help="normalisation: remove the road's transverse profile first (auto, the "
                   "default: per column for one-channel range images, not for photographs)")
    p.add_argument("--tile", type=_int_at_least(16), default=512,
                   help="inference tile for scoring and validation (default 512)")
    p.add_argument("--seed", type=_int_at_least(0), default=0, help="random seed (default 0)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto",
                   help="compute device (default auto)")
    p.add_argument("--threads", type=_int_at_least(1), default=None,
                   help="CPU threads (default: all cores)")
    p.add_argument("--force", action="store_true",
                   help="replace existing project_<arm> folders in DIR")


#: Options of the active arms only: refused when the full arm is the only arm.
_NOT_FOR_FULL = ("--mode", "--modes", "--initial", "--per-round", "--no-detector",
                 "--model-suggestions")


def _value(args: argparse.Namespace, option: str) -> object:
    """The parsed value of ``option`` ("--per-round" -> ``args.per_round``)."""
    return getattr(args, option[2:].replace("-", "_"))


def _check_exclusive(args: argparse.Namespace) -> None:
    """Refuse options that another option would silently override."""
    for a, b in (("--arms", "--compare"), ("--arms", "--modes"), ("--arms", "--strategy"),
                 ("--arms", "--mode"), ("--compare", "--strategy"), ("--modes", "--mode")):
        refuse_together(a, _value(args, a), b, _value(args, b))
    refuse_together("--seconds", args.seconds, "--iterations", args.iterations,
                    "--seconds plans the steps of each round")


def _check_arms(args: argparse.Namespace, arms: list) -> None:
    """Refuse options that no arm of this run would use."""
    from ..core.simulation.curves import FULL_STRATEGY

    if all(arm.strategy == FULL_STRATEGY for arm in arms):
        for option in _NOT_FOR_FULL:
            refuse_unused(option, _value(args, option), "does not apply to the full arm, the "
                          "only arm of this run (it trains supervised on every training image)")
    if all(arm.mode == "supervised" for arm in arms):
        refuse_unused("--warmup", args.warmup, "applies to the semi-supervised modes; every "
                      "arm of this run is supervised")


def _train_config(args: argparse.Namespace):  # noqa: ANN202 - TrainConfig
    """The training settings of one round."""
    from ..core.device import cpu_cores
    from ..core.training.config import TrainConfig

    overrides = {"iterations": 200 if args.iterations is None else args.iterations,
                 "seed": args.seed, "device": args.device, "profile": args.profile,
                 "threads": args.threads if args.threads is not None else cpu_cores()}
    if args.crop_size is not None:
        overrides["crop_size"] = args.crop_size
    if args.warmup is not None:
        overrides["warmup_iterations"] = args.warmup
    if args.class_weighting:
        overrides["class_weighting"] = True
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
        overrides["unlabeled_batch_size"] = args.batch_size
    for name in ("seconds", "decoder"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.encoder_weights is not None:
        overrides["encoder_weights"] = str(args.encoder_weights)
    return TrainConfig.from_preset(args.preset, **overrides)


def build_config(args: argparse.Namespace):  # noqa: ANN201
    """The :class:`SimulationConfig` described by parsed arguments.

    Raises
    ------
    ConfigError
        Two options of which one would override the other, or an option no arm uses.
    """
    from ..core.simulation import SimulationConfig

    _check_exclusive(args)
    held = {} if args.heldout_fraction is None else {"heldout_fraction": args.heldout_fraction}
    strategies = args.compare if args.compare is not None else (args.strategy or "hybrid",)
    modes = args.modes if args.modes is not None else (args.mode or "semi",)
    config = SimulationConfig(
        train=_train_config(args), strategies=tuple(strategies), modes=tuple(modes),
        initial=5 if args.initial is None else args.initial,
        per_round=5 if args.per_round is None else args.per_round, rounds=args.rounds,
        seed=args.seed, tile=args.tile, overlap=min(64, args.tile // 4),
        full_reference=bool(args.full), threshold=args.threshold,
        builtin_first=not args.no_detector, choose_source=not args.model_suggestions,
        arm_list=tuple(args.arms) if args.arms else (), **held)
    _check_arms(args, config.arms)
    return config


def _data(args: argparse.Namespace):  # noqa: ANN202
    from ..core.simulation import pair_folders, split_pairs
    from ..core.errors import ConfigError

    if (args.val_images is None) != (args.val_masks is None):
        raise ConfigError("--val-images and --val-masks go together; give both or neither")
    pairs = pair_folders(args.images, args.masks)
    if args.val_images is not None:
        if args.val_fraction is not None:
            raise ConfigError("give either --val-images/--val-masks or --val-fraction, not both")
        return pairs, pair_folders(args.val_images, args.val_masks)
    fraction = 0.2 if args.val_fraction is None else args.val_fraction
    return split_pairs(pairs, fraction, seed=args.seed)


def _budget(train) -> str:  # noqa: ANN001 - TrainConfig
    """A round's training budget in words: iterations, or seconds with --seconds."""
    if train.seconds is not None:
        return f"{train.seconds:g} s of training"
    return f"{train.iterations} iterations"


def run(args: argparse.Namespace) -> int:
    """Drive :func:`simulate` with progress bars; print the learning curve."""
    from ..core.simulation.curves import summarize_arms
    from ..core.simulation import SimulationRow, simulate
    from ..core.events import MessageEvent, Outcome, ProgressEvent, StepEvent
    from .progress import ProgressBar

    config = build_config(args)
    train_pairs, val_pairs = _data(args)
    arms = config.arms
    print(f"simulating {len(arms)} arm(s) ({', '.join(a.name for a in arms)}): "
          f"{len(train_pairs)} training images, {len(val_pairs)} validation images, "
          f"{config.rounds} round(s) x {_budget(config.train)}", file=sys.stderr)
    bar: ProgressBar | None = None
    rows = []

    def close_bar() -> None:
        nonlocal bar
        if bar is not None:
            bar.close()
            bar = None

    run = Outcome(simulate(train_pairs, val_pairs, args.out, config, overwrite=args.force))
    try:
        for ev in run:
            if isinstance(ev, StepEvent):
                if bar is None or bar.label != "steps":
                    close_bar()
                    bar = ProgressBar(ev.total_steps, label="steps")
                bar.update(ev.step, suffix=f"loss {ev.losses.get('total', 0.0):.3f}")
            elif isinstance(ev, ProgressEvent) and ev.what != "rounds" and ev.total:
                if bar is None or bar.label != ev.what:
                    close_bar()
                    bar = ProgressBar(ev.total, label=ev.what)
                bar.update(ev.done)
            elif isinstance(ev, SimulationRow):
                close_bar()
                r = ev.row
                edit = r["edit_fraction"]
                edit_text = "-" if edit != edit else f"{edit:.3f}"
                print(f"{ev.arm} round {r['round']}: {r['n_labeled']} labelled, "
                      f"F1 {r['f1']:.3f}, F1@2px {r['f1_tol2']:.3f}, IoU {r['crack_iou']:.3f}, "
                      f"edit {edit_text}, threshold {r['threshold']:.2f}, "
                      f"train {r['train_seconds']:.0f} s", file=sys.stderr)
            elif isinstance(ev, MessageEvent) and args.verbose:
                close_bar()
                print(ev.text, file=sys.stderr)
    finally:
        run.close()
        close_bar()
    rows = run.value or []
    out: Path = args.out
    print(f"wrote {out / 'curve.csv'} ({len(rows)} rows), {out / 'selected.csv'}, "
          f"{out / 'curve.png'}")
    for s in summarize_arms(rows):
        name = "full" if s["strategy"] == "full" else f"{s['strategy']}-{s['mode']}"
        print(f"  {name:28s} AULC F1 {s['aulc_f1']:.3f}  final F1 {s['final_f1']:.3f}  "
              f"final F1@2px {s['final_f1_tol2']:.3f}  ({s['final_n_labeled']} labels)")
    return 0
