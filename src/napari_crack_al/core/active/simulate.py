"""Label-efficiency simulation: the true masks play the annotator on the real trainer and store.

For every *arm* (a selection strategy and a training mode) :func:`simulate` builds a
project in ``OUT/project_<arm>/`` from copies of the training images and runs the
annotation loop the user would run in napari:

* **round 0 selection** — the initial ``initial`` images: random for ``random``,
  label-free k-center diversity (:func:`~.round.iter_cold_start`) for the active
  strategies. They are "annotated" by accepting their true masks
  (:meth:`Project.accept`), with no model suggestion to start from;
* **round r** (r = 0 … rounds − 1) — :func:`~.round.run_round` trains on every
  annotated image (warm start from the previous round's model, ``iterations`` steps;
  semi mode also uses the unlabeled pool), scores the unlabeled images, writes the
  suggestions and re-sorts the queue; the new model is evaluated on the *external*
  validation images (tiled inference, threshold 0.5, :func:`~..metrics.evaluate_masks`);
  then, unless it is the last round, the first ``per_round`` images of the queue are
  annotated with their true masks (starting from this model's suggestions).

Row r of the learning curve is the model of round r, trained on
``n_labeled = initial + r · per_round`` images. Its ``edit_fraction`` belongs to the
images that were *added* for this round: (pixels where the suggestion the annotator
started from differs from the true mask) / max(1, true crack pixels), summed over
those images (the project store's per-image definition applied to their union). The
round-0 selection is made without a model, so row 0 has no edit fraction (NaN,
an empty CSV cell); so does the full-supervision arm, which selects nothing.

The held-out split inside the projects is switched off (``heldout_fraction=0``): the
validation set is external. The ``"full"`` arm is the reference: supervised on every
training image, warm-started round after round with the same ``iterations``, so each
of its rows has the same training budget as the other arms' row of that round.

Files written in ``OUT``: ``curve.csv`` (:data:`~.curves.CURVE_COLUMNS`, one row per arm
and round, rewritten after every round), ``selected.csv`` (``round,image``: the round
whose selection brought the image in, 0 for the initial images; with several arms an
``arm`` column comes first) and ``curve.png`` (F1 and tolerance F1 vs ``n_labeled``).
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError, MaskError, ProjectError
from ..events import CancelToken, CheckpointEvent, MessageEvent, ProgressEvent
from ..training.config import TRAIN_MODES, TrainConfig
from .curves import (
    FULL_STRATEGY,
    arm_name,
    write_curve_csv,
    write_curve_plot,
    write_selected_csv,
)
from .strategies import STRATEGY_NAMES, get_strategy

__all__ = [
    "SimulationConfig",
    "SimulationRow",
    "Arm",
    "parse_arm",
    "simulate",
    "pair_folders",
    "split_pairs",
    "SIM_STRATEGIES",
]

log = logging.getLogger(__name__)

#: Strategies a simulation arm may use ("full" = every training image, supervised).
SIM_STRATEGIES: tuple[str, ...] = tuple(s for s in STRATEGY_NAMES
                                        if s not in ("disagreement", "bald")) + (FULL_STRATEGY,)

Pair = tuple[Path, Path]


@dataclass(frozen=True)
class Arm:
    """One simulated labelling policy: a strategy and a training mode."""

    strategy: str
    mode: str

    @property
    def name(self) -> str:
        """``"full"`` or ``"STRATEGY-MODE"``."""
        return arm_name(self.strategy, self.mode)


@dataclass(frozen=True)
class SimulationConfig:
    """Settings of a simulation (shared by every arm).

    Parameters
    ----------
    train : TrainConfig
        Training settings of ONE round (``iterations`` per round); ``mode`` and
        ``seed`` are set per arm and round.
    strategies : tuple of str
        Selection strategies compared (:data:`SIM_STRATEGIES`); ``"full"`` adds the
        full-supervision reference.
    modes : tuple of str
        Training modes compared ("semi", "supervised"); every strategy runs in every mode.
    initial : int
        Images annotated before the first round (round-0 selection).
    per_round : int
        Images annotated after each round.
    rounds : int
        Training rounds (models) per arm.
    seed : int
        Seed of the selections and the training (round r trains with ``seed * 1000 + r``).
    threshold : float
        Crack probability threshold of the validation masks (and of the suggestions).
    tile, overlap : int
        Tiled inference settings.
    full_reference : bool
        Also run the ``"full"`` arm (same as listing it in ``strategies``).
    arm_list : tuple of str
        Explicit arms by name (``"random-supervised"``, ``"hybrid-semi"``, ``"full"``, ...);
        when given it replaces the product of ``strategies`` and ``modes``.
    """

    train: TrainConfig
    strategies: tuple[str, ...] = ("hybrid",)
    modes: tuple[str, ...] = ("semi",)
    initial: int = 5
    per_round: int = 5
    rounds: int = 4
    seed: int = 0
    threshold: float = 0.5
    tile: int = 512
    overlap: int = 64
    full_reference: bool = False
    arm_list: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems: list[str] = []
        if isinstance(self.arm_list, str) or not isinstance(self.arm_list, tuple):
            problems.append(f"arm_list must be a tuple of arm names (got {self.arm_list!r})")
        else:
            for name in self.arm_list:
                try:
                    parse_arm(name)
                except ConfigError as exc:
                    problems.append(str(exc))
            if len(set(self.arm_list)) != len(self.arm_list):
                problems.append(f"arm_list has repeated arms: {', '.join(self.arm_list)}")
        if not isinstance(self.train, TrainConfig):
            problems.append(f"train must be a TrainConfig (got {type(self.train).__name__})")
        for name, options in (("strategies", SIM_STRATEGIES), ("modes", TRAIN_MODES)):
            values = getattr(self, name)
            if isinstance(values, str) or not isinstance(values, tuple) or not values:
                problems.append(f"{name} must be a non-empty tuple (got {values!r})")
                continue
            bad = [v for v in values if v not in options]
            if bad:
                problems.append(f"unknown {name} {', '.join(map(repr, bad))}; valid: "
                                + ", ".join(options))
            if len(set(values)) != len(values):
                problems.append(f"{name} are repeated: {', '.join(values)}")
        for name, low in (("initial", 1), ("per_round", 1), ("rounds", 1), ("seed", 0),
                          ("tile", 16), ("overlap", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                problems.append(f"{name} must be an integer >= {low} (got {v!r})")
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 < t < 1.0:
            problems.append(f"threshold must be a number in (0, 1) (got {t!r})")
        if not isinstance(self.full_reference, bool):
            problems.append(f"full_reference must be true or false (got {self.full_reference!r})")
        if problems:
            raise ConfigError("invalid SimulationConfig: " + "; ".join(problems))

    @property
    def arms(self) -> list[Arm]:
        """The arms in run order: ``arm_list`` if given, else every (strategy, mode), then
        the full reference once."""
        if self.arm_list:
            return [parse_arm(name) for name in self.arm_list]
        out = [Arm(s, m) for s in self.strategies if s != FULL_STRATEGY for m in self.modes]
        if self.full_reference or FULL_STRATEGY in self.strategies:
            out.append(Arm(FULL_STRATEGY, "supervised"))
        return out

    @property
    def labels_needed(self) -> int:
        """Training images an active arm annotates: ``initial + (rounds - 1) * per_round``."""
        return self.initial + (self.rounds - 1) * self.per_round


def parse_arm(name: str) -> Arm:
    """The :class:`Arm` called ``name`` (``"full"`` or ``"STRATEGY-MODE"``).

    Raises
    ------
    ConfigError
        Unknown strategy or mode; the message lists the valid ones.
    """
    if name == FULL_STRATEGY:
        return Arm(FULL_STRATEGY, "supervised")
    strategy, _, mode = str(name).rpartition("-")
    if strategy not in SIM_STRATEGIES or strategy == FULL_STRATEGY or mode not in TRAIN_MODES:
        raise ConfigError(f"unknown arm {name!r}: expected 'full' or STRATEGY-MODE with a "
                          f"strategy in {', '.join(s for s in SIM_STRATEGIES if s != 'full')} "
                          f"and a mode in {', '.join(TRAIN_MODES)}")
    return Arm(strategy, mode)


@dataclass(frozen=True)
class SimulationRow:
    """Event: one row of the learning curve is done (``row`` has the curve.csv columns)."""

    arm: str
    row: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------- data
def pair_folders(images_dir: str | Path, masks_dir: str | Path) -> list[Pair]:
    """Pair every image of ``images_dir`` with its mask in ``masks_dir`` by file stem.

    Raises
    ------
    InputError
        Missing or empty folders, an image without a mask or a mask without an image
        (the message names them).
    """
    from ..errors import ImageReadError
    from ..range_io import list_images
    from ..training.data import list_images_as_masks, pair_by_stem

    images = list_images(images_dir)
    if not images:
        raise ImageReadError(images_dir, "no images found (supported: .png, .tif, .tiff, .npy)")
    masks = list_images_as_masks(masks_dir)
    if not masks:
        raise MaskError(masks_dir, "no masks found (supported: .png, .tif, .tiff, .npy)")
    pairs, _ = pair_by_stem(images, masks, masks_dir=Path(masks_dir))
    return pairs


def split_pairs(pairs: Sequence[Pair], fraction: float, seed: int = 0
                ) -> tuple[list[Pair], list[Pair]]:
    """Split pairs into (training pool, validation) with ``round(n * fraction)`` validation pairs.

    The choice is a seeded permutation of the pairs sorted by image name, so it does
    not depend on the listing order. Both parts keep at least one pair.

    Raises
    ------
    ConfigError
        ``fraction`` is not in (0, 1), or there are fewer than 2 pairs.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) \
            or not 0.0 < float(fraction) < 1.0:
        raise ConfigError(f"the validation fraction must be a number in (0, 1) (got {fraction!r})")
    ordered = sorted(pairs, key=lambda p: p[0].stem)
    n = len(ordered)
    if n < 2:
        raise ConfigError(f"splitting needs at least 2 image/mask pairs (got {n})")
    n_val = min(n - 1, max(1, int(round(n * float(fraction)))))
    order = np.random.default_rng(seed).permutation(n)
    val_idx = set(int(i) for i in order[:n_val])
    train = [p for i, p in enumerate(ordered) if i not in val_idx]
    val = [p for i, p in enumerate(ordered) if i in val_idx]
    return train, val


def _check_unique(pairs: Sequence[Pair], what: str) -> None:
    stems = [p[0].stem for p in pairs]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise InputError(pairs[0][0].parent, f"{what} images share names: {', '.join(dup[:5])}")


# ---------------------------------------------------------------------------- helpers
def _prepare_arm_folder(root: Path, pairs: Sequence[Pair], overwrite: bool) -> None:
    if root.exists():
        from ..project import Project

        if not overwrite:
            raise ProjectError(root, "already exists; choose another output folder or "
                                     "allow overwriting (--force)")
        if not (Project.is_project(root) or not any(root.iterdir())):
            raise ProjectError(root, "exists and is not a simulation project; not removing it")
        shutil.rmtree(root)
    images = root / "images"
    images.mkdir(parents=True)
    for image, _ in pairs:
        shutil.copyfile(image, images / image.name)


def _edit_counts(suggestion: np.ndarray | None, truth: np.ndarray) -> tuple[int, int]:
    """(pixels to fix, true crack pixels); the empty suggestion when there is none."""
    crack = int(truth.sum())
    if suggestion is None:
        return crack, crack
    return int(np.count_nonzero(suggestion != truth)), crack


def _evaluate(model: Any, validation: Sequence[Any], config: SimulationConfig,
              cancel: CancelToken) -> Generator[Any, None, dict[str, float] | None]:
    from ..inference import predict_image
    from ..metrics import evaluate_masks

    preds, gts, valids = [], [], []
    for i, item in enumerate(validation):
        if cancel.cancelled:
            return None
        yield ProgressEvent(i, len(validation), "validating")
        prob = predict_image(model, item.image, tile=config.tile,
                             overlap=min(config.overlap, config.tile // 2)).probability
        preds.append(prob > config.threshold)
        gts.append(item.mask)
        valids.append(item.valid)
    yield ProgressEvent(len(validation), len(validation), "validating")
    metrics = evaluate_masks(preds, gts, valid=valids)
    return {k: float(v) for k, v in metrics.items()}


# ---------------------------------------------------------------------------- one arm
def _run_arm(arm: Arm, pairs: Sequence[Pair], validation: Sequence[Any],
             config: SimulationConfig, out_dir: Path, overwrite: bool, cancel: CancelToken,
             selected: list[dict[str, Any]], multi: bool
             ) -> Generator[Any, None, list[dict[str, Any]] | None]:
    from ..mask_io import read_mask
    from ..model import load_model
    from ..project import Project
    from .round import RoundConfig, iter_cold_start, run_round

    root = out_dir / f"project_{arm.name}"
    _prepare_arm_folder(root, pairs, overwrite)
    truth_path = {img.stem: mask for img, mask in pairs}
    rows: list[dict[str, Any]] = []
    full = arm.strategy == FULL_STRATEGY
    with Project.create(root) as project:
        project.set_meta("simulation", {"strategy": arm.strategy, "mode": arm.mode,
                                        "seed": config.seed, "initial": config.initial,
                                        "per_round": config.per_round,
                                        "rounds": config.rounds})
        names = project.names()

        def annotate(chosen: Sequence[str], selection_round: int) -> tuple[int, int, bool]:
            fix = crack = 0
            with_model = False
            for name in chosen:
                truth = read_mask(truth_path[name], expected_shape=project.image_shape(name))
                rec = project.record(name)
                suggestion = None
                if rec.suggestion_model_version is not None:
                    suggestion = project.read_suggestion(name)
                    with_model = with_model or suggestion is not None
                f, c = _edit_counts(suggestion, truth)
                fix, crack = fix + f, crack + c
                project.accept(name, truth)
                entry: dict[str, Any] = {"round": selection_round, "image": name}
                if multi:
                    entry = {"arm": arm.name, **entry}
                selected.append(entry)
            return fix, crack, with_model

        # ---------------------------------------------------------------- round-0 selection
        if full:
            first = list(names)
        elif arm.strategy == "random":
            first = get_strategy("random").rank(names, {}, None, config.initial,
                                                config.seed)[:config.initial]
        else:
            yield MessageEvent(f"{arm.name}: cold start (label-free k-center diversity)")
            ranking = yield from iter_cold_start(project, k=config.initial, seed=config.seed,
                                                 profile=config.train.profile, cancel=cancel)
            if ranking is None:
                return None
            first = ranking[:config.initial]
        fix, crack, with_model = annotate(first, 0)
        pending_edit = math.nan  # round-0 selection: no model, no suggestion

        round_strategy = "random" if full else arm.strategy
        for r in range(config.rounds):
            if cancel.cancelled:
                return None
            train_cfg = config.train.replace(mode=arm.mode, seed=config.seed * 1000 + r)
            round_cfg = RoundConfig(train=train_cfg, strategy=round_strategy,
                                    batch_size=config.per_round, heldout_fraction=0.0,
                                    suggest_threshold=config.threshold,
                                    store_probabilities=False, seed=config.seed,
                                    tile=config.tile,
                                    overlap=min(config.overlap, config.tile // 2))
            yield MessageEvent(f"{arm.name}: round {r} — training on "
                               f"{project.counts().get('annotated', 0)} labelled image(s)")
            finished = None
            gen = run_round(project, round_cfg, cancel=cancel)
            try:
                while True:
                    try:
                        ev = next(gen)
                    except StopIteration as stop:
                        finished = stop.value
                        break
                    if type(ev).__name__ == "RoundFinished" or isinstance(ev, CheckpointEvent):
                        continue
                    yield ev
            finally:
                gen.close()
            if finished is None or finished.checkpoint is None:
                return None
            model, _ = load_model(finished.checkpoint)
            metrics = yield from _evaluate(model, validation, config, cancel)
            if metrics is None:
                return None
            row = {
                "round": r, "n_labeled": len(finished.trained_on), "strategy": arm.strategy,
                "mode": arm.mode,
                **{k: metrics[k] for k in ("crack_iou", "f1", "precision", "recall", "f1_tol2")},
                "edit_fraction": pending_edit,
                "train_seconds": finished.train_seconds,
                "score_seconds": finished.score_seconds,
            }
            rows.append(row)
            yield SimulationRow(arm=arm.name, row=dict(row))
            if full or r == config.rounds - 1:
                continue
            queue = [n for n in finished.ranking
                     if project.record(n).status.value in ("new", "suggested")]
            chosen = queue[:config.per_round]
            fix, crack, with_model = annotate(chosen, r + 1)
            pending_edit = fix / max(1, crack) if (chosen and with_model) else math.nan
    return rows


# ---------------------------------------------------------------------------- driver
def simulate(train_pairs: Sequence[Pair], val_pairs: Sequence[Pair], out_dir: str | Path,
             config: SimulationConfig, *, overwrite: bool = False,
             cancel: CancelToken | None = None,
             ) -> Generator[Any, None, list[dict[str, Any]]]:
    """Run every arm of ``config`` and write ``curve.csv``, ``selected.csv`` and ``curve.png``.

    Parameters
    ----------
    train_pairs : sequence of (image path, mask path)
        The training pool (images are copied into each arm's project).
    val_pairs : sequence of (image path, mask path)
        The external validation images.
    out_dir : str or Path
        Output folder (created if missing).
    config : SimulationConfig
        Settings.
    overwrite : bool
        Replace existing ``project_<arm>`` folders (only if they are projects).
    cancel : CancelToken or None
        Checked between steps; a cancelled simulation keeps the rows written so far.

    Yields
    ------
    MessageEvent, ProgressEvent, StepEvent, SimulationRow
        ``ProgressEvent(done, total, "rounds")`` counts finished (arm, round) pairs.

    Returns
    -------
    list of dict
        The curve rows (the content of ``curve.csv``).

    Raises
    ------
    ConfigError
        The pool is too small for ``initial + (rounds - 1) * per_round`` annotations.
    InputError
        Unreadable images or masks, name clashes, an existing output folder.
    """
    from ..training.data import load_training_image

    if not isinstance(config, SimulationConfig):
        raise TypeError(f"config must be a SimulationConfig, got {type(config).__name__}")
    cancel = cancel if cancel is not None else CancelToken()
    train_pairs = [(Path(i), Path(m)) for i, m in train_pairs]
    val_pairs = [(Path(i), Path(m)) for i, m in val_pairs]
    if not train_pairs:
        raise InputError(None, "the training pool is empty")
    if not val_pairs:
        raise InputError(None, "the validation set is empty")
    _check_unique(train_pairs, "training")
    overlap = {i.stem for i, _ in train_pairs} & {i.stem for i, _ in val_pairs}
    if overlap:
        raise InputError(val_pairs[0][0].parent, "validation images also in the training pool: "
                                                 + ", ".join(sorted(overlap)[:5]))
    needed = config.labels_needed
    if any(a.strategy != FULL_STRATEGY for a in config.arms) and needed > len(train_pairs):
        raise ConfigError(f"the training pool has {len(train_pairs)} images, but initial "
                          f"{config.initial} + (rounds {config.rounds} - 1) x per-round "
                          f"{config.per_round} = {needed} would be annotated; lower --initial, "
                          "--per-round or --rounds")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(out, f"cannot create the output folder ({exc.strerror or exc})") from exc

    yield MessageEvent(f"reading {len(val_pairs)} validation image(s)")
    validation = [load_training_image(i, m, profile=config.train.profile) for i, m in val_pairs]
    arms = config.arms
    multi = len(arms) > 1
    total = len(arms) * config.rounds
    rows: list[dict[str, Any]] = []
    selected: list[dict[str, Any]] = []
    done = 0
    yield ProgressEvent(0, total, "rounds")
    t0 = time.perf_counter()
    for arm in arms:
        yield MessageEvent(f"arm {arm.name}: {len(train_pairs)} training images, "
                           f"{len(validation)} validation images")
        gen = _run_arm(arm, train_pairs, validation, config, out, overwrite, cancel, selected,
                       multi)
        try:
            while True:
                try:
                    ev = next(gen)
                except StopIteration:
                    break
                if isinstance(ev, SimulationRow):
                    rows.append(ev.row)
                    done += 1
                    _write_tables(out, rows, selected, multi)
                    yield ev
                    yield ProgressEvent(done, total, "rounds")
                else:
                    yield ev
        finally:
            gen.close()
        if cancel.cancelled:
            break
    _write_tables(out, rows, selected, multi)
    if rows:
        write_curve_plot(out / "curve.png", rows,
                         title=f"seed {config.seed}, {config.train.iterations} iterations/round")
    log.info("simulation of %d arm(s) finished in %.0f s", len(arms), time.perf_counter() - t0)
    return rows


def _write_tables(out: Path, rows: list[dict[str, Any]], selected: list[dict[str, Any]],
                  multi: bool) -> None:
    write_curve_csv(out / "curve.csv", rows)
    if multi:
        from ..export.csv_util import write_csv

        write_csv(out / "selected.csv", selected, ("arm", "round", "image"))
    else:
        write_selected_csv(out / "selected.csv", selected)
