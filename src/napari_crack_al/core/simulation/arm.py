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
from .config import Arm, SimulationConfig
from .pairs import Pair
from ..active.strategies import get_strategy

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
    from ..project import Project

    root = out_dir / f"project_{arm.name}"
    _prepare_arm_folder(root, pairs, overwrite)
    full = arm.strategy == FULL_STRATEGY
    with Project.create(root) as project:
        project.set_meta("simulation", {"strategy": arm.strategy, "mode": arm.mode,
                                        "seed": config.seed, "initial": config.initial,
                                        "per_round": config.per_round,
                                        "rounds": config.rounds})
        annotator = _Annotator(project, {img.stem: mask for img, mask in pairs}, selected,
                               arm.name if multi else None)
        first = yield from _first_selection(project, arm, config, cancel)
        if first is None:
            return None
        # round 0 starts from the detector's masks, tuned on each accepted one
        tune = config.builtin_first and not full
        pending = yield from annotator.annotate(first, 0, tune_detector=tune, cancel=cancel)
        return (yield from _iter_rounds(project, arm, config, validation, cancel, annotator,
                                        pending))


def _iter_rounds(project: Any, arm: Arm, config: SimulationConfig, validation: Sequence[Any],
                 cancel: CancelToken, annotator: "_Annotator", pending: "_Batch",
                 ) -> Generator[Any, None, list[dict[str, Any]] | None]:
    """Every round of an arm after round 0: train, evaluate, annotate the next batch.

    ``pending`` is the cost of the round-0 images; each round's row carries the cost
    of the images annotated before it and the source that suggested them.
    """
    full = arm.strategy == FULL_STRATEGY
    rows: list[dict[str, Any]] = []
    suggested_by = "" if full else ("detector" if config.builtin_first else "none")
    for r in range(config.rounds):
        if cancel.cancelled:
            return None
        done = yield from _simulated_round(project, arm, config, r, validation, cancel)
        if done is None:
            return None
        finished, metrics, threshold = done
        row = _curve_row(arm, r, finished, metrics, threshold, pending, full)
        row["suggested_by"] = suggested_by
        suggested_by = "" if full else finished.suggestion_source
        rows.append(row)
        yield SimulationRow(arm=arm.name, row=dict(row))
        if full or r == config.rounds - 1:
            continue
        queue = [n for n in finished.ranking
                 if project.record(n).status.value in ("new", "suggested")]
        pending = yield from annotator.annotate(queue[:config.per_round], r + 1)
    return rows


@dataclass(frozen=True)
class _Batch:
    """What annotating a batch cost: edit fraction and missed / false crack length."""

    edit_fraction: float
    missed_length: float
    false_length: float


class _Annotator:
    """Plays the annotator: accepts the true mask of each chosen image, counts the work."""

    def __init__(self, project: Any, truth_path: dict[str, Path],
                 selected: list[dict[str, Any]], arm_name: str | None) -> None:
        self.project = project
        self.truth_path = truth_path
        self.selected = selected
        self.arm_name = arm_name

    def annotate(self, chosen: Sequence[str], selection_round: int, *,
                 tune_detector: bool = False, cancel: CancelToken | None = None,
                 ) -> Generator[Any, None, _Batch]:
        """Accept ``chosen`` in order; the batch's edit fraction (NaN without any suggestion).

        With ``tune_detector`` (no model yet), the detector is tuned on the accepted masks
        after each accept and the rest of the batch re-suggested, as the plugin does.
        """
        from ..io.mask_io import read_mask

        project = self.project
        fix = crack = 0
        missed = false = 0.0
        with_model = False
        for i, name in enumerate(chosen):
            if tune_detector and i > 0:
                from ..detector import iter_tune_detector

                yield from iter_tune_detector(project, chosen[i:], store_probabilities=False,
                                              cancel=cancel)
            truth = read_mask(self.truth_path[name], expected_shape=project.image_shape(name))
            suggestion = None
            if project.record(name).suggestion_model_version is not None:
                suggestion = project.read_suggestion(name)
                with_model = with_model or suggestion is not None
            f, c = _edit_counts(suggestion, truth)
            fix, crack = fix + f, crack + c
            accepted = project.accept(name, truth)
            missed += float(accepted.missed_length or 0.0)
            false += float(accepted.false_length or 0.0)
            entry: dict[str, Any] = {"round": selection_round, "image": name}
            if self.arm_name is not None:
                entry = {"arm": self.arm_name, **entry}
            self.selected.append(entry)
        if not chosen:
            return _Batch(math.nan, math.nan, math.nan)
        edit = fix / max(1, crack) if with_model else math.nan
        return _Batch(edit, missed, false)


def _first_selection(project: Any, arm: Arm, config: SimulationConfig, cancel: CancelToken,
                     ) -> Generator[Any, None, list[str] | None]:
    """Round-0 images (every image for the full arm), with the detector's suggestions."""
    names = project.names()
    if arm.strategy == FULL_STRATEGY:
        return list(names)
    if arm.strategy == "random":
        first = get_strategy("random").rank(names, {}, None, config.initial,
                                            config.seed)[:config.initial]
    else:
        from ..active.round import iter_cold_start

        yield MessageEvent(f"{arm.name}: cold start (representatives of label-free features)")
        ranking = yield from iter_cold_start(project, k=config.initial, seed=config.seed,
                                             profile=config.train.profile, cancel=cancel)
        if ranking is None:
            return None
        first = ranking[:config.initial]
    if config.builtin_first:
        from ..detector import iter_builtin_suggestions

        yield MessageEvent(f"{arm.name}: first suggestions by the training-free detector")
        yield from iter_builtin_suggestions(project, first, store_probabilities=False,
                                            cancel=cancel)
    return first


def _simulated_round(project: Any, arm: Arm, config: SimulationConfig, r: int,
                     validation: Sequence[Any], cancel: CancelToken,
                     ) -> Generator[Any, None, tuple[Any, dict[str, float], float] | None]:
    """Round ``r`` of an arm: the plugin's round, then its model on the validation images."""
    from ..model import load_model
    from ..active.round import RoundConfig, run_round

    train_cfg = config.train.replace(mode=arm.mode, seed=config.seed * 1000 + r)
    round_cfg = RoundConfig(train=train_cfg,
                            strategy="random" if arm.strategy == FULL_STRATEGY else arm.strategy,
                            batch_size=config.per_round, heldout_fraction=config.heldout_fraction,
                            suggest_threshold=config.threshold, store_probabilities=False,
                            seed=config.seed, tile=config.tile, choose_source=config.choose_source,
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
    return finished, metrics, threshold


def _curve_row(arm: Arm, r: int, finished: Any, metrics: dict[str, float], threshold: float,
               pending: _Batch, full: bool) -> dict[str, Any]:
    """One ``curve.csv`` row: the round's validation metrics and the cost of its new images."""
    return {
        "round": r, "n_labeled": len(finished.trained_on), "strategy": arm.strategy,
        "mode": arm.mode,
        **{k: metrics[k] for k in ("crack_iou", "f1", "precision", "recall", "f1_tol2")},
        "edit_fraction": pending.edit_fraction,
        "threshold": threshold,
        "train_seconds": finished.train_seconds,
        "score_seconds": finished.score_seconds,
        "missed_length": math.nan if full else pending.missed_length,
        "false_length": math.nan if full else pending.false_length,
    }
