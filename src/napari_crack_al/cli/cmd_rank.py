"""``napari-crack-al rank PROJECT``: score the unlabeled images with a model, re-sort the queue."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..core.active.strategies import STRATEGY_NAMES
from .argtypes import int_at_least as _int_at_least
from .argtypes import open_fraction
from .conflicts import refuse_together, refuse_unused
from .printable import printable
from .ranks import join_ranks

_probability = open_fraction("the threshold")

HELP = "score the project's unlabeled images with a model and re-sort the annotation queue"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``rank`` subcommand."""
    description = (
        HELP + ". Every unlabeled (new or suggested) image gets its scores (entropy, "
        "crack_entropy, topk_entropy, margin, least_confidence; bald with --mc-passes; "
        "disagreement with --student), a suggestion mask and a probability map, all stored "
        "with the model version; the strategy's ranking becomes the queue order. Without any "
        "model (nothing trained yet) the queue is ranked by label-free diversity (cold start), "
        "which takes none of the model's options (--strategy, --student, --mc-passes, "
        "--threshold, --tile, --device)."
    )
    p = subparsers.add_parser("rank", help=HELP, description=description)
    p.add_argument("project", metavar="PROJECT", type=Path, help="project folder")
    p.add_argument("--strategy", choices=STRATEGY_NAMES, default=None,
                   help="selection strategy (default hybrid)")
    p.add_argument("--model", type=Path, default=None,
                   help="checkpoint to score with (default: the project's current model)")
    p.add_argument("--student", type=Path, default=None,
                   help="second checkpoint for the teacher-student disagreement score")
    p.add_argument("--k", type=_int_at_least(1), default=5,
                   help="size of the suggested batch (default 5)")
    p.add_argument("--mc-passes", type=_int_at_least(0), default=0,
                   help="MC-dropout passes for the BALD score (0 = none, else >= 2)")
    p.add_argument("--seed", type=_int_at_least(0), default=0, help="seed (default 0)")
    p.add_argument("--threshold", type=_probability, default=None,
                   help="crack probability of the suggestion masks (default: the model's "
                   "calibrated threshold, else 0.5; not with --no-suggestions)")
    p.add_argument("--no-suggestions", action="store_true",
                   help="do not write suggestion masks and probability maps")
    p.add_argument("--suggest-next", metavar="N", type=_int_at_least(0), default=None,
                   help="write suggestions and probability maps only for the first N images "
                   "of the re-sorted queue (the others get theirs when opened in napari; "
                   "default: every scored image, 2 x --k under torchrun; not with "
                   "--no-suggestions)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--tile", type=_int_at_least(16), default=None,
                   help="inference tile (default 512)")
    p.add_argument("--top", type=_int_at_least(0), default=10,
                   help="how many of the ranked names to print (default 10)")
    p.set_defaults(func=run)


def _model_version(project, path: Path) -> str:  # noqa: ANN001
    for m in project.models():
        try:
            if Path(m["path"]).resolve() == path.resolve():
                return str(m["version"])
        except OSError:
            continue
    return f"file:{path.name}"


def _drive(gen, bar_label: str, quiet: bool = False):  # noqa: ANN001, ANN202
    """Run a core generator with a progress bar (none when ``quiet``); return its value."""
    from ..core.events import MessageEvent, Outcome, ProgressEvent
    from .progress import ProgressBar

    bar = None
    run = Outcome(gen)
    try:
        for ev in run:
            if quiet:
                continue
            if isinstance(ev, ProgressEvent) and ev.total:
                if bar is None or bar.label != (ev.what or bar_label):
                    if bar is not None:
                        bar.close()
                    bar = ProgressBar(ev.total, label=ev.what or bar_label)
                bar.update(ev.done)
            elif isinstance(ev, MessageEvent):
                import sys

                print(ev.text, file=sys.stderr)
    finally:
        if bar is not None:
            bar.close()
    return run.value


#: The options only a model uses, refused at the cold start.
_MODEL_ONLY = ("--strategy", "--student", "--mc-passes", "--threshold", "--tile", "--device",
               "--suggest-next")


def _check_options(args: argparse.Namespace) -> str:
    """Refuse contradictory options; return the strategy."""
    from ..core.errors import ConfigError

    strategy = args.strategy or "hybrid"
    if strategy == "bald" and args.mc_passes < 2:
        raise ConfigError("strategy 'bald' needs --mc-passes >= 2")
    if args.mc_passes == 1:
        raise ConfigError("--mc-passes must be 0 or >= 2")
    if strategy == "disagreement" and args.student is None:
        raise ConfigError("strategy 'disagreement' needs --student MODEL")
    refuse_together("--no-suggestions", args.no_suggestions, "--threshold", args.threshold,
                    "--threshold only sets the suggestion masks, which are not written")
    refuse_together("--no-suggestions", args.no_suggestions, "--suggest-next",
                    args.suggest_next, "no suggestion is written")
    return strategy


def _refuse_model_options(args: argparse.Namespace) -> None:
    """At the cold start (no model), refuse what only a model would use."""
    for option in _MODEL_ONLY:
        value = getattr(args, option[2:].replace("-", "_"))
        refuse_unused(option, value or None, "needs a model; the project has none yet (the "
                      "cold start ranks by label-free diversity): give --model, or leave "
                      f"{option} out")


def _score(project: Any, args: argparse.Namespace, model_path: Path,
           strategy: str, dist: Any) -> tuple[list[str] | None, str]:
    """Score the unlabeled images with the model at ``model_path``; the ranking and version."""
    from ..core.active.round import iter_score_project
    from ..core.calibration import model_threshold
    from ..core.device import select_device
    from ..core.model import load_model

    device = dist.device(select_device(args.device or "auto"))
    tile = 512 if args.tile is None else args.tile
    model, ckpt = load_model(model_path, device=device)
    student = None
    if args.student is not None:
        student, _ = load_model(args.student, device=device)
    version = _model_version(project, model_path)
    profile = str(ckpt.train_config.get("profile", "none"))
    threshold = model_threshold(ckpt.metadata) if args.threshold is None else args.threshold
    suggest_next = args.suggest_next
    if dist.active and suggest_next is None:  # rank 0 writes them: only the head of the queue
        suggest_next = 2 * args.k
    ranking = _drive(iter_score_project(
        project, model, version, strategy=strategy, k=args.k, seed=args.seed,
        student=student, mc_passes=args.mc_passes, suggest_threshold=threshold,
        write_suggestions=not args.no_suggestions, store_probabilities=not args.no_suggestions,
        profile=profile, tile=tile, overlap=min(64, tile // 4), device=device,
        suggest_next=suggest_next, distributed=dist), "images", quiet=not dist.is_main)
    return ranking, version


def run(args: argparse.Namespace) -> int:
    """Score, store, rank and print the top of the queue.

    Started by ``torchrun``, each rank scores its share of the images; rank 0 (the only one
    that writes to the project) stores the scores, re-sorts the queue and writes the
    suggestions of the first ``--suggest-next`` images (default ``2 * --k``).
    """
    import time

    from ..core.errors import ProjectError
    from ..core.project import Project

    strategy = _check_options(args)
    if not Project.is_project(args.project):
        raise ProjectError(args.project, "is not a project (no .crack-al/project.sqlite); "
                                         "create one with the napari plugin or make-sample")
    start = time.perf_counter()
    dist = join_ranks(args.device)
    try:
        with Project.open(args.project, read_only=True if not dist.is_main else None) as project:
            ranking, version, how = _rank(project, args, strategy, dist)
    finally:
        dist.close()
    if not dist.is_main:
        return 0
    ranking = ranking or []
    seconds = time.perf_counter() - start
    print(f"ranked {len(ranking)} unlabeled image(s) {how} "
          f"(model {version}) in {seconds:.1f} s; queue re-sorted")
    for i, name in enumerate(ranking[:args.top], 1):
        mark = "*" if i <= args.k else " "
        print(f"{i:4d}{mark} {printable(name)}")
    return 0


def _rank(project: Any, args: argparse.Namespace, strategy: str,
          dist: Any) -> tuple[list[str] | None, str, str]:
    """The ranking, the model version and how it was ranked (cold start without a model)."""
    from ..core.active.round import iter_cold_start

    model_path = args.model
    if model_path is None:
        current = project.current_model()
        model_path = None if current is None else Path(current["path"])
    if model_path is not None:
        ranking, version = _score(project, args, model_path, strategy, dist)
        return ranking, version, f"with strategy {strategy}"
    _refuse_model_options(args)
    ranking = None
    if dist.is_main:  # label-free features of every image: one process is enough
        print("no trained model yet: ranking by label-free diversity (cold start)")
        ranking = _drive(iter_cold_start(project, k=args.k, seed=args.seed), "images")
    return ranking, "cold-start", "by label-free diversity"
