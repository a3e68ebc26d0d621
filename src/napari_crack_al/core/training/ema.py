"""Exponential-moving-average (EMA) teacher of the U2PL mean-teacher scheme.

``θ_T ← d·θ_T + (1 − d)·θ_S`` with ``d = min(1 − 1/(t + 1), max_decay)`` and ``t``
counted from the end of the supervised warm-up (so ``d = 0`` at ``t = 0``: the
teacher starts as an exact copy of the student, and during warm-up it simply
follows the student).

Unlike upstream U2PL, which averages parameters only and lets the teacher's
batch-norm statistics drift through its own train-mode forwards, this averages
the floating-point buffers too (BN running mean and variance) and copies the
integer ones (``num_batches_tracked``). The teacher is always in eval mode and
never receives gradients.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn

__all__ = ["ema_decay", "ema_update", "EMATeacher"]

logger = logging.getLogger(__name__)


def ema_decay(t: int, max_decay: float = 0.99) -> float:
    """EMA decay ``min(1 − 1/(t + 1), max_decay)`` for step ``t >= 0`` after warm-up.

    Negative ``t`` (still in warm-up) gives 0: the teacher copies the student.
    """
    if not (0.0 <= max_decay < 1.0):
        raise ValueError(f"max_decay must be in [0, 1), got {max_decay}")
    if t < 0:
        return 0.0
    return min(1.0 - 1.0 / (t + 1.0), float(max_decay))


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    """Move ``teacher`` towards ``student`` in place: ``T = d·T + (1 − d)·S``.

    Parameters and floating-point buffers are averaged; other buffers (integer
    counters such as ``num_batches_tracked``) are copied.

    Parameters
    ----------
    teacher, student : nn.Module
        Same architecture (matching parameter and buffer names and shapes).
    decay : float
        ``d`` in [0, 1].
    """
    if not (0.0 <= decay <= 1.0):
        raise ValueError(f"decay must be in [0, 1], got {decay}")
    t_params = dict(teacher.named_parameters())
    s_params = dict(student.named_parameters())
    if t_params.keys() != s_params.keys():
        raise ValueError("teacher and student have different parameters")
    t_list = [t_params[k].data for k in t_params]
    s_list = [s_params[k].data.to(t_params[k].dtype) for k in t_params]
    if decay == 0.0:
        for t, s in zip(t_list, s_list):
            t.copy_(s)
    elif t_list:
        torch._foreach_mul_(t_list, decay)
        torch._foreach_add_(t_list, s_list, alpha=1.0 - decay)
    t_bufs = dict(teacher.named_buffers())
    s_bufs = dict(student.named_buffers())
    if t_bufs.keys() != s_bufs.keys():
        raise ValueError("teacher and student have different buffers")
    for name, tb in t_bufs.items():
        sb = s_bufs[name]
        if tb.dtype.is_floating_point and decay > 0.0:
            tb.mul_(decay).add_(sb.to(tb.dtype), alpha=1.0 - decay)
        else:
            tb.copy_(sb)


class EMATeacher:
    """The teacher network: an EMA copy of a student, in eval mode, without gradients.

    Parameters
    ----------
    student : nn.Module
        The network trained by gradients; the teacher starts as a deep copy.
    max_decay : float
        Upper bound of the decay (0.99).
    warmup : int
        Steps of supervised warm-up; the EMA ramp ``t`` starts after them.
    resume : bool
        The student holds a trained teacher's weights (a warm start): the teacher keeps
        them and averages at ``max_decay`` from the first step, with no warm-up and no
        ramp, so a short round cannot overwrite what was learned.
    """

    def __init__(self, student: nn.Module, *, max_decay: float = 0.99, warmup: int = 0,
                 resume: bool = False) -> None:
        ema_decay(0, max_decay)  # validates
        self.max_decay = float(max_decay)
        self.warmup = int(warmup)
        self.resume = bool(resume)
        self.module = copy.deepcopy(student)
        self.module.eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.updates = 0

    def decay_at(self, step: int) -> float:
        """Decay used after optimisation step ``step`` (0-based)."""
        if self.resume:
            return self.max_decay
        return ema_decay(step - self.warmup, self.max_decay)

    def update(self, student: nn.Module, step: int) -> float:
        """Update the teacher after optimisation step ``step``; returns the decay used."""
        d = self.decay_at(step)
        ema_update(self.module, student, d)
        self.module.eval()
        self.updates += 1
        return d

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The teacher's state dict."""
        return self.module.state_dict()

    def __call__(self, *args, **kwargs):  # noqa: ANN002, ANN003 - forwards to the module
        return self.module(*args, **kwargs)
