"""One simulation arm: a project annotated round after round with the true masks.

:func:`run_arm` builds ``OUT/project_<arm>/``, makes the round-0 selection, then
trains, scores and evaluates each round on the external validation images,
yielding a :class:`SimulationRow` per round and recording which images each
round's selection brought in (see :mod:`.simulate` for the protocol).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ProjectError
from ..events import CancelToken, CheckpointEvent, MessageEvent, Outcome, ProgressEvent
from .curves import FULL_STRATEGY
from .simulation_config import Arm, SimulationConfig
from .simulation_pairs import Pair
from .strategies import get_strategy

__all__ = ["SimulationRow", "run_arm"]


@dataclass(frozen=True)
class SimulationRow:
    """Event: one row of the learning curve is done (``row`` has the curve.csv columns)."""

    arm: str
    row: dict[str, Any] = field(default_factory=dict)


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


def _evaluate(model: Any, validation: Sequence[Any], config: SimulationConfig, threshold: float,
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
        preds.append(prob > threshold)
        gts.append(item.mask)
        valids.append(item.valid)
    yield ProgressEvent(len(validation), len(validation), "validating")
    metrics = evaluate_masks(preds, gts, valid=valids)
    return {k: float(v) for k, v in metrics.items()}


def run_arm(arm: Arm, pairs: Sequence[Pair], validation: Sequence[Any],
            config: SimulationConfig, out_dir: Path, overwrite: bool, cancel: CancelToken,
            selected: list[dict[str, Any]], multi: bool
            ) -> Generator[Any, None, list[dict[str, Any]] | None]:
    """Run one arm in ``out_dir / "project_<arm>"``: round-0 selection, then every round.

    Parameters
    ----------
    arm : Arm
        The strategy and training mode.
    pairs : sequence of (image path, mask path)
        The training pool (the images are copied into the arm's project).
    validation : sequence of TrainingImage
        The loaded external validation images.
    config : SimulationConfig
        Settings.
    out_dir : Path
        The simulation's output folder.
    overwrite : bool
        Replace an existing ``project_<arm>`` folder (only if it is a project or empty).
    cancel : CancelToken
        Checked between steps.
    selected : list of dict
        Appended to: one ``{"round", "image"}`` entry per annotated image (``"arm"``
        first when ``multi``).
    multi : bool
        Several arms are simulated (adds the ``"arm"`` key to ``selected``).

    Yields
    ------
    MessageEvent, ProgressEvent, StepEvent, SimulationRow
        One :class:`SimulationRow` per finished round.

    Returns
    -------
    list of dict or None
        The arm's curve rows; None when cancelled or a round produced no model.

    Raises
    ------
    ProjectError
        The arm's folder exists and may not be replaced.
    """
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
        effort = [0.0, 0.0]  # missed and false crack length of the last annotated batch

        def annotate(chosen: Sequence[str], selection_round: int) -> tuple[int, int, bool]:
            fix = crack = 0
            effort[:] = [0.0, 0.0]
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
                accepted = project.accept(name, truth)
                effort[0] += float(accepted.missed_length or 0.0)
                effort[1] += float(accepted.false_length or 0.0)
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
            yield MessageEvent(f"{arm.name}: cold start (representatives of label-free features)")
            ranking = yield from iter_cold_start(project, k=config.initial, seed=config.seed,
                                                 profile=config.train.profile, cancel=cancel)
            if ranking is None:
                return None
            first = ranking[:config.initial]
        if config.builtin_first and not full:
            from ..detector import iter_builtin_suggestions

            yield MessageEvent(f"{arm.name}: first suggestions by the training-free detector")
            yield from iter_builtin_suggestions(project, first, store_probabilities=False,
                                                cancel=cancel)
        fix, crack, with_model = annotate(first, 0)
        # round-0 images start from the detector's suggestions (or from nothing)
        pending_edit = fix / max(1, crack) if (first and with_model) else math.nan
        pending_effort = list(effort) if first else [math.nan, math.nan]

        round_strategy = "random" if full else arm.strategy
        for r in range(config.rounds):
            if cancel.cancelled:
                return None
            train_cfg = config.train.replace(mode=arm.mode, seed=config.seed * 1000 + r)
            round_cfg = RoundConfig(train=train_cfg, strategy=round_strategy,
                                    batch_size=config.per_round,
                                    heldout_fraction=config.heldout_fraction,
                                    suggest_threshold=config.threshold,
                                    store_probabilities=False, seed=config.seed,
                                    tile=config.tile,
                                    overlap=min(config.overlap, config.tile // 2))
            yield MessageEvent(f"{arm.name}: round {r} — training on "
                               f"{project.counts().get('annotated', 0)} labelled image(s)")
            run = Outcome(run_round(project, round_cfg, cancel=cancel))
            try:
                for ev in run:
                    if type(ev).__name__ == "RoundFinished" or isinstance(ev, CheckpointEvent):
                        continue
                    yield ev
            finally:
                run.close()
            finished = run.value
            if finished is None or finished.checkpoint is None:
                return None
            model, _ = load_model(finished.checkpoint)
            threshold = finished.threshold if config.threshold is None else config.threshold
            metrics = yield from _evaluate(model, validation, config, threshold, cancel)
            if metrics is None:
                return None
            row = {
                "round": r, "n_labeled": len(finished.trained_on), "strategy": arm.strategy,
                "mode": arm.mode,
                **{k: metrics[k] for k in ("crack_iou", "f1", "precision", "recall", "f1_tol2")},
                "edit_fraction": pending_edit,
                "threshold": threshold,
                "train_seconds": finished.train_seconds,
                "score_seconds": finished.score_seconds,
                "missed_length": pending_effort[0] if not full else math.nan,
                "false_length": pending_effort[1] if not full else math.nan,
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
            pending_effort = list(effort) if chosen else [math.nan, math.nan]
    return rows
