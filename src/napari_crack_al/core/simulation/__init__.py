"""Label-efficiency simulation: the true masks play the annotator on the real trainer and store.

For every *arm* (a selection strategy and a training mode) :func:`simulate` builds a
project in ``OUT/project_<arm>/`` from copies of the training images and runs the
annotation loop the user would run in napari:

* **round 0 selection** — the initial ``initial`` images: random for ``random``,
  label-free representatives (k-medoids, :func:`~.round.iter_cold_start`) for the active
  strategies. They are "annotated" by accepting their true masks
  (:meth:`Project.accept`), starting from the training-free detector's suggestions
  (``builtin_first``, what a new project shows before its first model);
* **round r** (r = 0 … rounds − 1) — :func:`~.round.run_round` trains on every
  annotated image (warm start from the previous round's model, ``iterations`` steps;
  semi mode also uses the unlabeled pool), scores the unlabeled images, writes the
  suggestions and re-sorts the queue; the new model is evaluated on the *external*
  validation images (tiled inference, at the model's calibrated threshold unless
  ``threshold`` is set, :func:`~..metrics.evaluate_masks`);
  then, unless it is the last round, the first ``per_round`` images of the queue are
  annotated with their true masks (starting from this model's suggestions).

Row r of the learning curve is the model of round r, trained on
``n_labeled = initial + r · per_round`` images. Its ``edit_fraction`` belongs to the
images that were *added* for this round: (pixels where the suggestion the annotator
started from differs from the true mask) / max(1, true crack pixels), summed over
those images (the project store's per-image definition applied to their union). The columns
``missed_length`` and ``false_length`` measure the same annotation work in crack length
(:func:`~..metrics.effort_lengths`: skeleton pixels of the true cracks the suggestion missed,
and of the suggested cracks that were not cracks, 2-px tolerance), summed over those
images. Row 0's edit fraction is that of the detector's suggestions of the round-0 images (NaN, an
empty CSV cell, with ``builtin_first=False``); the full-supervision arm selects nothing
and has none.

Inside each project a share of the annotated images is held out as in the plugin
(``heldout_fraction``): it calibrates each round's threshold and guards warm starts;
the reported metrics come from the external validation images. The ``"full"`` arm is the reference: supervised on every
training image, warm-started round after round with the same ``iterations``, so each
of its rows has the same training budget as the other arms' row of that round.

Files written in ``OUT``: ``curve.csv`` (:data:`~.curves.CURVE_COLUMNS`, one row per arm
and round, rewritten after every round), ``selected.csv`` (``round,image``: the round
whose selection brought the image in, 0 for the initial images; with several arms an
``arm`` column comes first) and ``curve.png`` (F1 and tolerance F1 vs ``n_labeled``).

The pieces live beside this driver: :mod:`.config` (settings and arms),
:mod:`.pairs` (image/mask pairs and the validation split) and
:mod:`.arm` (the loop of one arm); their public names are importable
from here too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InputError
from ..events import CancelToken, MessageEvent, Outcome, ProgressEvent
from .curves import FULL_STRATEGY, write_curve_csv, write_curve_plot, write_selected_csv
from .arm import SimulationRow, run_arm
from .config import SIM_STRATEGIES, Arm, SimulationConfig, parse_arm
from .pairs import Pair, check_unique, pair_folders, split_pairs

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


def _check_pools(train_pairs: list[Pair], val_pairs: list[Pair], config: SimulationConfig,
                 ) -> None:
    """Both sets non-empty and apart, unique names, a pool large enough for the annotations."""
    if not train_pairs:
        raise InputError(None, "the training pool is empty")
    if not val_pairs:
        raise InputError(None, "the validation set is empty")
    check_unique(train_pairs, "training")
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

    train_pairs, val_pairs, out, cancel = _checked_inputs(train_pairs, val_pairs, out_dir, config,
                                                         cancel)

    yield MessageEvent(f"reading {len(val_pairs)} validation image(s)")
    validation = [load_training_image(i, m, profile=config.train.profile) for i, m in val_pairs]
    arms = config.arms
    multi = len(arms) > 1
    total = len(arms) * config.rounds
    rows: list[dict[str, Any]] = []
    selected: list[dict[str, Any]] = []
    yield ProgressEvent(0, total, "rounds")
    t0 = time.perf_counter()
    for arm in arms:
        yield MessageEvent(f"arm {arm.name}: {len(train_pairs)} training images, "
                           f"{len(validation)} validation images")
        yield from _iter_arm_rows(run_arm(arm, train_pairs, validation, config, out, overwrite,
                                          cancel, selected, multi), out, rows, selected, multi,
                                  total)
        if cancel.cancelled:
            break
    _write_tables(out, rows, selected, multi)
    if rows:
        write_curve_plot(out / "curve.png", rows,
                         title=f"seed {config.seed}, {config.train.iterations} iterations/round")
    log.info("simulation of %d arm(s) finished in %.0f s", len(arms), time.perf_counter() - t0)
    return rows


def _checked_inputs(train_pairs: Sequence[Pair], val_pairs: Sequence[Pair], out_dir: str | Path,
                    config: SimulationConfig, cancel: CancelToken | None,
                    ) -> tuple[list[Pair], list[Pair], Path, CancelToken]:
    """Check the arguments of :func:`simulate` and create the output folder.

    Parameters
    ----------
    train_pairs, val_pairs, out_dir, config, cancel
        As in :func:`simulate`.

    Returns
    -------
    tuple
        The training and validation pairs as paths, the output folder and the cancel
        token (a new one when None).

    Raises
    ------
    TypeError
        ``config`` is not a :class:`SimulationConfig`.
    ConfigError, InputError
        See :func:`_check_pools`; the output folder cannot be created.
    """
    if not isinstance(config, SimulationConfig):
        raise TypeError(f"config must be a SimulationConfig, got {type(config).__name__}")
    cancel = cancel if cancel is not None else CancelToken()
    train = [(Path(i), Path(m)) for i, m in train_pairs]
    val = [(Path(i), Path(m)) for i, m in val_pairs]
    _check_pools(train, val, config)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(out, f"cannot create the output folder ({exc.strerror or exc})") from exc
    return train, val, out, cancel


def _iter_arm_rows(arm_events: Generator[Any, None, Any], out: Path, rows: list[dict[str, Any]],
                   selected: list[dict[str, Any]], multi: bool, total: int,
                   ) -> Generator[Any, None, None]:
    """Pass on the events of one arm, recording and writing its curve rows as they come.

    Parameters
    ----------
    arm_events : Generator
        :func:`~.arm.run_arm` of the arm (closed at the end, also on errors).
    out : Path
        Output folder.
    rows : list of dict
        The curve rows so far; each :class:`SimulationRow`'s row is appended.
    selected : list of dict
        The ``selected.csv`` rows (filled by the arm).
    multi : bool
        Several arms (``selected.csv`` gets an ``arm`` column).
    total : int
        Number of (arm, round) pairs, for the progress events.

    Yields
    ------
    Any
        The arm's events; after each :class:`SimulationRow` a
        ``ProgressEvent(len(rows), total, "rounds")``.
    """
    run = Outcome(arm_events)
    try:
        for ev in run:
            if isinstance(ev, SimulationRow):
                rows.append(ev.row)
                _write_tables(out, rows, selected, multi)
                yield ev
                yield ProgressEvent(len(rows), total, "rounds")
            else:
                yield ev
    finally:
        run.close()


def _write_tables(out: Path, rows: list[dict[str, Any]], selected: list[dict[str, Any]],
                  multi: bool) -> None:
    write_curve_csv(out / "curve.csv", rows)
    if multi:
        from ..export.csv_util import write_csv

        write_csv(out / "selected.csv", selected, ("arm", "round", "image"))
    else:
        write_selected_csv(out / "selected.csv", selected)
