"""The U2PL trainer: a generator of :mod:`napari_crack_al.core.events`.

One round of :func:`train`:

1. :func:`~.setup.prepare_run` seeds everything and builds the student, the EMA
   teacher, the optimiser and the samplers. A warm start (``init``) loads the previous
   model into both networks; the teacher keeps it (no supervised warm-up, EMA at full
   decay from the first step) and the learning rate ramps up to a lower peak
   (:class:`~.schedule.LRSchedule`). A budget in seconds (``TrainConfig.seconds``) plans
   the number of steps from the step times measured during the run
   (:class:`~.schedule.StepBudget`).
2. Each step (:mod:`.steps`): supervised losses during warm-up and in supervised mode,
   U2PL losses in the semi phase (one teacher forward on the unlabelled batch, CutMix,
   one student forward on labelled + mixed unlabelled crops); SGD; EMA update.
3. At the end, the teacher is measured on the held-out images (:mod:`.validation`):
   the threshold that maximises their F1 is stored with the model (without held-out
   images: the previous model's threshold, else 0.5). A warm-started round whose
   held-out F1 is worse than the previous model's beyond noise is rejected: the
   checkpoint then holds the previous model's weights and says so.

The generator checks a :class:`~napari_crack_al.core.events.CancelToken` before every
step and stops cleanly when closed (``generator.close()``, as a napari worker's
``quit()`` does). A cancelled or closed run writes no checkpoint, so the previous file
at the checkpoint path is left untouched; every write is atomic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import torch

from ..calibration import DEFAULT_THRESHOLD
from ..errors import ConfigError, InputError
from ..events import CancelToken, CheckpointEvent, MessageEvent, StepEvent, ValidationEvent
from .checkpointing import (RunCheckpointer, check_checkpoint_target, checkpoint_bytes,
                            fallback_threshold, final_metadata)
from ..distributed import SINGLE, Distributed
from .config import TrainConfig
from .data import TrainingImage
from .lazy_images import NoReadableImage
from .schedule import StepBudget, poly_lr
from .setup import TrainingRun, load_warm_start, prepare_run
from .gate import SemiGate
from .steps import (
    FEATURE_STRIDE,
    LossTerms,
    TrainingDivergedError,
    apply_gradients,
    draw_labeled,
    semi_losses,
    set_learning_rate,
    supervised_losses,
    unimatch_losses,
)
from .validation import HeldOut, HeldOutResult, worse_beyond_noise

__all__ = ["TrainResult", "TrainEvent", "TrainingDivergedError", "train", "poly_lr",
           "DEFAULT_CHECKPOINT_NAME", "FEATURE_STRIDE"]

logger = logging.getLogger(__name__)

DEFAULT_CHECKPOINT_NAME = "model.pt"

TrainEvent = Union[StepEvent, ValidationEvent, CheckpointEvent, MessageEvent]


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns (the ``value`` of its ``StopIteration``).

    Attributes
    ----------
    checkpoint : Path or None
        The final checkpoint, ``None`` when the run was cancelled.
    steps : int
        Optimisation steps done.
    cancelled : bool
        Whether the run stopped early (cancel token or ``close()``).
    losses : dict
        Losses of the last step.
    metrics : dict
        Final held-out metrics of the saved model, at its threshold (empty without
        validation images).
    seconds : float
        Wall time.
    mode : str
        Mode actually used ("supervised" when semi was asked without unlabelled data).
    threshold : float
        The saved model's crack-probability threshold.
    threshold_source : str
        ``"heldout"`` (calibrated on the validation images), ``"previous"`` (the
        warm start's) or ``"default"`` (0.5).
    kept_previous : bool
        The round made the held-out F1 worse beyond noise, so the checkpoint holds the
        previous model.
    """

    checkpoint: Path | None
    steps: int
    cancelled: bool
    losses: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    mode: str = "semi"
    threshold: float = DEFAULT_THRESHOLD
    threshold_source: str = "default"
    kept_previous: bool = False


def _check_data(labeled: Sequence[TrainingImage]) -> None:
    if len(labeled) == 0:
        raise InputError(None, "training needs at least one labelled image (image with a mask)")
    for item in labeled:
        if item.mask is None:
            raise InputError(None, f"labelled image {item.name!r} has no mask")
    names = [t.name for t in labeled]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(None, f"labelled images with the same name: {', '.join(dup)}")


def _resolve_checkpoint_path(out_dir: str | Path | None, checkpoint_path: str | Path | None) -> Path:
    if checkpoint_path is not None:
        return Path(checkpoint_path)
    if out_dir is None:
        raise ConfigError("train() needs out_dir or checkpoint_path")
    return Path(out_dir) / DEFAULT_CHECKPOINT_NAME


@dataclass
class _Outcome:
    """What the step loop leaves for the end of the round."""

    steps: int = 0
    cancelled: bool = False
    losses: dict[str, float] = field(default_factory=dict)
    step_seconds: list[float] = field(default_factory=list)


def _one_step(run: TrainingRun, labeled: list[TrainingImage], unlabeled: Sequence[TrainingImage],
              step: int) -> tuple[LossTerms, float]:
    lr = set_learning_rate(run, step)
    batch = draw_labeled(run, labeled)
    losses = None
    if run.in_semi_phase(step):
        semi_step = unimatch_losses if run.mode == "unimatch" else semi_losses
        try:
            losses = semi_step(run, batch, unlabeled, step)
        except NoReadableImage as exc:  # every unlabelled file is unreadable
            logger.warning("%s; training goes on supervised only", exc)
            run.mode = "supervised"
    if losses is None:
        losses = supervised_losses(run, batch)
    apply_gradients(run, losses, step)
    run.update_teacher(step)
    return losses, lr


def _follow_budget(run: TrainingRun, budget: StepBudget, seconds: float, step: int,
                   elapsed: float) -> None:
    """Plan the run's length from the step times measured so far (``step`` steps done)."""
    if budget.exhausted(elapsed):
        run.set_total(step)
        return
    if budget.observe(seconds, semi=run.in_semi_phase(step - 1)):
        planned = budget.planned_steps()
        if planned is not None and planned != run.schedule.total:
            run.set_total(max(planned, step + 1))


def _share_plan(run: TrainingRun, cancel: CancelToken) -> None:
    """Several ranks: rank 0's plan (run length, cancel) on every rank, after every step."""
    if not run.dist.active:
        return
    cancelled, total = run.dist.share((cancel.cancelled, run.schedule.total))
    if total != run.schedule.total:
        run.set_total(total)
    if cancelled:
        cancel.cancel()


def _check_gate(run: TrainingRun, gate: SemiGate, step: int) -> str | None:
    """The gate's check on rank 0; the other ranks adopt its decision."""
    text = gate.check(step) if run.dist.is_main else None
    if run.dist.active:
        opened, threshold, text = run.dist.share((not gate.active, run.pseudo_threshold, text))
        if opened and gate.active:
            gate.adopt(step, threshold)
    return text


def _step_loop(run: TrainingRun, labeled: list[TrainingImage], unlabeled: Sequence[TrainingImage],
               heldout: HeldOut | None, checkpointer: RunCheckpointer, budget: StepBudget | None,
               cancel: CancelToken) -> Generator[TrainEvent, None, _Outcome]:
    """Run the optimisation steps, with periodic validation and checkpoints."""
    config = run.config
    out = _Outcome()
    step = 0
    fallback, _ = fallback_threshold(run.warm)
    gate = SemiGate(run, heldout)
    t_loop = time.perf_counter()
    while step < run.schedule.total:
        if cancel.cancelled:
            out.cancelled = True
            yield MessageEvent(f"training cancelled after {out.steps} steps")
            break
        t0 = time.perf_counter()
        terms, lr = _one_step(run, labeled, unlabeled, step)
        out.losses = terms.as_floats()
        seconds = time.perf_counter() - t0
        out.step_seconds.append(seconds)
        step = out.steps = step + 1
        if budget is not None and run.dist.is_main:
            _follow_budget(run, budget, seconds, step, time.perf_counter() - t_loop)
        _share_plan(run, cancel)
        gate.observe(terms.labelled_counts)
        if gate.due(step) and (text := _check_gate(run, gate, step)) is not None:
            yield MessageEvent(text)
        total = run.schedule.total
        yield StepEvent(step=step, total_steps=total, losses=dict(out.losses), lr=lr,
                        seconds=seconds)
        last = step >= total
        if heldout is not None and config.val_every and step % config.val_every == 0 \
                and not last and run.dist.is_main:
            result = heldout.evaluate(run.teacher.module, fallback)
            yield ValidationEvent(step=step, metrics=dict(result.metrics))
        if config.checkpoint_every and step % config.checkpoint_every == 0 and not last \
                and not cancel.cancelled and run.dist.is_main:
            path = checkpointer.save(step, {"final": False})
            yield CheckpointEvent(step=step, path=path,
                                  metadata={"round": checkpointer.base["round"], "final": False})
    if not out.cancelled and (text := gate.closing_message()) is not None:
        yield MessageEvent(text)
    return out


def _judge(run: TrainingRun, heldout: HeldOut | None, previous: HeldOutResult | None,
           ) -> Generator[TrainEvent, None, tuple[HeldOutResult | None, bool, dict[str, Any]]]:
    """Measure the trained teacher; reject it when a warm round made things worse."""
    fallback, _ = fallback_threshold(run.warm)
    if heldout is None or not run.dist.is_main:
        return None, False, {}
    result = heldout.evaluate(run.teacher.module, fallback)
    notes: dict[str, Any] = {}
    if previous is None:
        return result, False, notes
    reject, tolerance = worse_beyond_noise(result, previous, run.config.keep_margin)
    notes = {"previous_metrics": dict(previous.metrics), "round_metrics": dict(result.metrics),
             "keep_tolerance": tolerance}
    if reject:
        yield MessageEvent(
            f"this round lowered the held-out F1 from {previous.f1:.3f} to {result.f1:.3f} "
            f"(more than the noise, {tolerance:.3f}): the previous model is kept")
        return previous, True, notes
    return result, False, notes


def train(
    labeled: Sequence[TrainingImage],
    unlabeled: Sequence[TrainingImage],
    config: TrainConfig,
    *,
    out_dir: str | Path | None = None,
    checkpoint_path: str | Path | None = None,
    init: str | Path | None = None,
    validation: Sequence[TrainingImage] = (),
    cancel: CancelToken | None = None,
    round_index: int = 0,
    extra_metadata: dict[str, Any] | None = None,
    distributed: Distributed = SINGLE,
) -> Generator[TrainEvent, None, TrainResult]:
    """Train a crack segmenter with U2PL (or supervised only), yielding progress events.

    Parameters
    ----------
    labeled : sequence of TrainingImage
        Images with masks (at least one; one or two work).
    unlabeled : sequence of TrainingImage
        Images without masks (used in ``mode="semi"``; masks, if any, are ignored).
    config : TrainConfig
        Settings.
    out_dir : path, optional
        Folder of the checkpoint ``model.pt`` (when ``checkpoint_path`` is not given).
    checkpoint_path : path, optional
        The checkpoint file to write (atomically, at the end and every
        ``checkpoint_every`` steps).
    init : path, optional
        Warm start: a checkpoint whose weights initialise the student AND the teacher
        (its model configuration replaces the preset's); see the module docstring.
    validation : sequence of TrainingImage
        Held-out labelled images: they calibrate the threshold and give the
        :class:`ValidationEvent` metrics (teacher, tiled inference), at the end and
        every ``val_every`` steps.
    cancel : CancelToken, optional
        Checked before every step.
    round_index : int
        Active-learning round, stored in the checkpoint metadata.
    extra_metadata : dict, optional
        More JSON-able metadata for the checkpoint.
    distributed : Distributed
        This process's rank when ``torchrun`` started several
        (:func:`~napari_crack_al.core.distributed.from_environment`): gradients are
        averaged over the ranks, rank 0 decides, validates and writes the checkpoint, and
        every rank returns rank 0's result (see :mod:`napari_crack_al.core.distributed`).

    Yields
    ------
    MessageEvent, StepEvent, ValidationEvent, CheckpointEvent

    Returns
    -------
    TrainResult
    """
    t_start = time.perf_counter()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    _check_data(labeled)
    ckpt_path = _resolve_checkpoint_path(out_dir, checkpoint_path)
    if not ckpt_path.parent.is_dir():
        raise InputError(ckpt_path.parent, "output folder does not exist")
    cancel = cancel if cancel is not None else CancelToken()
    labeled = list(labeled)
    if not isinstance(unlabeled, Sequence):  # a LazyImages pool stays lazy
        unlabeled = list(unlabeled)
    run, heldout, previous, budget = yield from _begin(config, labeled, unlabeled, validation,
                                                       init, distributed)
    if distributed.is_main:
        check_checkpoint_target(ckpt_path, checkpoint_bytes(run.student))
    checkpointer = RunCheckpointer(ckpt_path, run, labeled, unlabeled, validation, round_index,
                                 extra_metadata, t_start)
    out = yield from _step_loop(run, labeled, unlabeled, heldout, checkpointer, budget, cancel)
    return (yield from _end(run, out, heldout, previous, budget, checkpointer, cancel, t_start))


def _begin(config: TrainConfig, labeled: list[TrainingImage], unlabeled: Sequence[TrainingImage],
           validation: Sequence[TrainingImage], init: str | Path | None,
           dist: Distributed,
           ) -> Generator[TrainEvent, None, tuple[TrainingRun, HeldOut | None,
                                                   HeldOutResult | None, StepBudget | None]]:
    """Threads, warm start, the run's state, the budget; the previous model on the held-out set."""
    from ..device import configure_threads, describe_device

    torch.set_num_threads(configure_threads(1) if config.threads is None else config.threads)
    warm = load_warm_start(init) if init is not None else None
    budget = None
    if config.seconds is not None:
        share = 1.0 if not config.semi or not unlabeled else (0.0 if warm else 0.1)
        budget = StepBudget(config.seconds, warmup_share=share)
    run = prepare_run(config, labeled, unlabeled, warm, config.iterations, dist)
    if config.semi and run.mode == "supervised":
        yield MessageEvent("no unlabeled images: training supervised only")
    amp = " with mixed precision" if run.scaler.is_enabled() else ""
    ranks = f", rank {dist.rank} of {dist.world_size} ({dist.backend})" if dist.active else ""
    yield MessageEvent(f"device: {describe_device(run.device)}{amp}{ranks}")
    length = f"a budget of {config.seconds:.0f} s" if budget else f"{config.iterations} iterations"
    yield MessageEvent(
        f"data: {len(labeled)} labelled, {len(unlabeled) if run.semi else 0} unlabelled, "
        f"{len(validation)} validation images; mode {run.mode}, {length}, "
        f"crop {config.crop_size}")
    heldout = HeldOut(validation) if validation else None
    previous = None
    if warm is not None:
        yield MessageEvent(f"warm start from {init}")
        if heldout is not None and dist.is_main:
            previous = heldout.evaluate(run.teacher.module, fallback_threshold(warm)[0])
            yield MessageEvent(f"previous model: held-out F1 {previous.f1:.3f} at threshold "
                               f"{previous.threshold:.2f}")
    return run, heldout, previous, budget


def _end(run: TrainingRun, out: _Outcome, heldout: HeldOut | None,
         previous: HeldOutResult | None, budget: StepBudget | None, checkpointer: RunCheckpointer,
         cancel: CancelToken, t_start: float) -> Generator[TrainEvent, None, TrainResult]:
    """The end of the round; on several ranks rank 0 ends it and every rank returns its result."""
    if not run.dist.active:
        return (yield from _finish(run, out, heldout, previous, budget, checkpointer, cancel,
                                   t_start))
    result = None
    if run.dist.is_main:
        result = yield from _finish(run, out, heldout, previous, budget, checkpointer, cancel,
                                    t_start)
    return run.dist.share(result)  # the other ranks wait here until rank 0 wrote the file


def _finish(run: TrainingRun, out: _Outcome, heldout: HeldOut | None,
            previous: HeldOutResult | None, budget: StepBudget | None,
            checkpointer: RunCheckpointer, cancel: CancelToken,
            t_start: float) -> Generator[TrainEvent, None, TrainResult]:
    """Final validation and guard, the final checkpoint, the result."""
    cancelled = out.cancelled
    result = kept = None
    notes: dict[str, Any] = {}
    if not cancelled:
        result, kept, notes = yield from _judge(run, heldout, previous)
        if result is not None:
            yield ValidationEvent(step=out.steps, metrics=dict(result.metrics))
        cancelled = cancel.cancelled  # cancelled during the final validation: keep the file
    metrics = dict(result.metrics) if result is not None else {}
    if cancelled:
        return TrainResult(checkpoint=None, steps=out.steps, cancelled=True, losses=out.losses,
                           metrics=metrics, seconds=time.perf_counter() - t_start,
                           mode=run.mode)
    meta = final_metadata(run, result, bool(kept), notes, out.losses, out.step_seconds, budget)
    warm = run.warm
    path = checkpointer.save(out.steps, meta,
                             state_dict=warm.state_dict if kept and warm is not None else None)
    yield CheckpointEvent(step=out.steps, path=path,
                          metadata={"round": checkpointer.base["round"], "final": True,
                                    "metrics": metrics, "threshold": meta["threshold"],
                                    "kept_previous": bool(kept)})
    seconds = time.perf_counter() - t_start
    logger.info("trained %d steps in %.1f s -> %s (threshold %.2f, %s)", out.steps, seconds,
                path, meta["threshold"], meta["threshold_source"])
    return TrainResult(checkpoint=path, steps=out.steps, cancelled=False, losses=out.losses,
                       metrics=metrics, seconds=seconds, mode=run.mode,
                       threshold=meta["threshold"], threshold_source=meta["threshold_source"],
                       kept_previous=bool(kept))
