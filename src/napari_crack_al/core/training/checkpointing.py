"""The checkpoints of a training run: what they hold besides the weights.

:class:`RunCheckpointer` writes the run's (intermediate and final) checkpoints
atomically with the data and settings that made them; :func:`final_metadata` adds
what the end of a round decided (held-out metrics, the calibrated threshold and
where it came from, whether the previous model was kept, the budget).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..io.atomic import probe_writable
from ..calibration import DEFAULT_THRESHOLD
from ..errors import CheckpointError
from .data import TrainingImage
from .lazy_images import image_names
from .schedule import StepBudget
from .setup import TrainingRun, WarmStart
from .validation import HeldOutResult

__all__ = ["RunCheckpointer", "final_metadata", "fallback_threshold", "checkpoint_bytes",
           "check_checkpoint_target"]

#: Bytes a checkpoint needs beyond its tensors (pickle framing, configs, metadata).
_CHECKPOINT_OVERHEAD = 4 * 2**20


def checkpoint_bytes(model: torch.nn.Module) -> int:
    """About how many bytes a checkpoint of ``model`` takes on disk (tensors + overhead)."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors) + _CHECKPOINT_OVERHEAD


def check_checkpoint_target(path: Path, nbytes: int) -> None:
    """Refuse, before any training step, a model path that could not be written at the end.

    Parameters
    ----------
    path : Path
        The checkpoint to write.
    nbytes : int
        Its expected size (:func:`checkpoint_bytes`); the folder must have this much free
        space (the new file is written beside an older one before it replaces it).

    Raises
    ------
    CheckpointError
        The path is a folder, its folder is missing or not writable, or the disk is too full.
    """
    folder = path.parent
    if path.is_dir():
        raise CheckpointError(path, "is a folder; give the model file to write, e.g. model.pt")
    if not folder.is_dir():
        raise CheckpointError(folder, "output folder does not exist")
    try:
        probe_writable(folder)
    except OSError as exc:
        why = "permission denied" if isinstance(exc, PermissionError) else exc.strerror or exc
        raise CheckpointError(folder, f"the model cannot be written here ({why}); nothing "
                                      "was trained") from exc
    free = shutil.disk_usage(folder).free
    if free < nbytes:
        raise CheckpointError(folder, f"not enough free space for the model (needs about "
                                      f"{nbytes / 2**20:.0f} MB, {free / 2**20:.0f} MB free); "
                                      "nothing was trained")


def fallback_threshold(warm: WarmStart | None) -> tuple[float, str]:
    """The threshold without held-out images: the warm start's, else 0.5 (and its source)."""
    if warm is not None and warm.threshold is not None:
        return warm.threshold, "previous"
    return DEFAULT_THRESHOLD, "default"


class RunCheckpointer:
    """Writes the checkpoints of one run (atomically) with their metadata."""

    def __init__(self, path: Path, run: TrainingRun, labeled: Sequence[TrainingImage],
                 unlabeled: Sequence[TrainingImage], validation: Sequence[TrainingImage],
                 round_index: int, extra: dict[str, Any] | None, t_start: float) -> None:
        self.path = path
        self.run = run
        self.base: dict[str, Any] = {
            "round": int(round_index),
            "mode": run.mode,
            "weights": run.config.save_which,
            "device": str(run.device),
            "ranks": int(run.dist.world_size),
            "labeled_images": [t.name for t in labeled],
            "unlabeled_images": image_names(unlabeled) if run.semi else [],
            "validation_images": [t.name for t in validation],
        }
        if run.warm is not None:
            self.base["init"] = str(run.warm.path)
        self.extra = dict(extra or {})
        self.t_start = t_start

    def save(self, step: int, metadata: dict[str, Any], *,
             state_dict: dict[str, torch.Tensor] | None = None) -> Path:
        """Save the teacher (or student), or ``state_dict`` when given, at ``step``."""
        from ..model import save_checkpoint

        run = self.run
        net = run.teacher.module if run.config.save_which == "teacher" else run.student
        if state_dict is not None:
            net = run.teacher.module
            net.load_state_dict(state_dict, strict=True)
        meta = {**self.base, "steps": int(step), **metadata,
                "seconds": time.perf_counter() - self.t_start, **self.extra}
        try:
            return save_checkpoint(self.path, net, model_config=run.model_config,
                                   train_config=run.config.to_dict(), metadata=meta)
        except OSError as exc:  # disk full, medium gone: the previous file is untouched
            raise CheckpointError(self.path, f"could not write the model "
                                             f"({exc.strerror or exc}); the previous model "
                                             "file, if any, is unchanged") from exc


def final_metadata(run: TrainingRun, result: HeldOutResult | None, kept: bool,
                   notes: dict[str, Any], losses: dict[str, float], step_seconds: list[float],
                   budget: StepBudget | None) -> dict[str, Any]:
    """Metadata of the final checkpoint: metrics, threshold (and where it came from), budget."""
    threshold, source = fallback_threshold(run.warm)
    if result is not None and result.threshold_source == "heldout":
        threshold, source = result.threshold, "heldout"
    meta: dict[str, Any] = {
        "final": True,
        "metrics": dict(result.metrics) if result is not None else {},
        "last_losses": dict(losses),
        "threshold": float(threshold),
        "threshold_source": source,
        "kept_previous": bool(kept),
        "iterations": int(run.schedule.total),
        "semi_start": int(run.semi_start) if run.semi_open else None,
        "pseudo_threshold": float(run.pseudo_threshold) if run.semi_open else None,
        "step_seconds": sorted(step_seconds)[len(step_seconds) // 2] if step_seconds else None,
        **notes,
    }
    if budget is not None:
        meta["seconds_budget"] = budget.seconds
    return meta
