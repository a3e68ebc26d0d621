"""Learning-rate schedules and the round budget in seconds.

* A round from scratch uses U2PL's poly schedule ``lr · (1 − i/N) ** 0.9``.
* A warm-started round starts from a model that is already trained: it opens with a
  short linear ramp to a lower peak (``warm_lr_scale · lr``) and then decays by the
  same poly rule, so its first steps are its smallest, not its largest.
* :class:`StepBudget` turns a budget in seconds into a number of steps from the step
  times measured on this machine during the run.

numpy-free and torch-free.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

__all__ = ["poly_lr", "LRSchedule", "StepBudget", "SEMI_STEP_COST"]

#: Cost of a semi-supervised step relative to a supervised one (measured, docs/model.md);
#: used to plan a budget before the first semi step has been timed.
SEMI_STEP_COST = 2.5


def poly_lr(base_lr: float, step: int, total: int, power: float = 0.9) -> float:
    """Poly schedule ``base_lr · (1 − step / total) ** power``."""
    return float(base_lr) * (1.0 - min(step, total) / max(total, 1)) ** power


@dataclass(frozen=True)
class LRSchedule:
    """Linear ramp to ``peak`` over ``ramp`` steps, then poly decay to 0 at ``total``.

    Parameters
    ----------
    peak : float
        Highest learning rate (of the encoder; heads get a multiple).
    total : int
        Steps of the round.
    ramp : int
        Steps of the linear ramp (0: start at the peak, as a round from scratch does).
    power : float
        Exponent of the poly decay.
    """

    peak: float
    total: int
    ramp: int = 0
    power: float = 0.9

    def lr_at(self, step: int) -> float:
        """Learning rate of optimisation step ``step`` (0-based)."""
        if self.ramp > 0 and step < self.ramp:
            return self.peak * (step + 1) / (self.ramp + 1)
        span = max(1, self.total - self.ramp)
        return poly_lr(self.peak, step - self.ramp, span, self.power)

    def with_total(self, total: int) -> LRSchedule:
        """The same schedule for a round of ``total`` steps (the ramp kept)."""
        return LRSchedule(self.peak, max(1, int(total)), min(self.ramp, max(0, int(total) - 1)),
                          self.power)

    @classmethod
    def for_round(cls, lr: float, total: int, *, warm: bool, warm_lr_scale: float,
                  warm_ramp: float) -> LRSchedule:
        """The schedule of a round from scratch (poly at ``lr``) or warm-started (ramp, lower peak).

        Parameters
        ----------
        lr : float
            Base learning rate.
        total : int
            Steps of the round.
        warm : bool
            Whether the round starts from a trained model.
        warm_lr_scale : float
            Peak of a warm round as a share of ``lr``.
        warm_ramp : float
            Ramp of a warm round as a share of its steps (at least one step).
        """
        if not warm:
            return cls(float(lr), int(total))
        ramp = min(int(total) - 1, max(1, int(math.ceil(warm_ramp * total)))) if total > 1 else 0
        return cls(float(lr) * float(warm_lr_scale), int(total), ramp)


class StepBudget:
    """Plan the steps of a round that must fit in ``seconds`` of training.

    Step times are measured as the round runs (the first step, which pays for memory
    allocation, is not counted). Before any semi-supervised step has been timed, one
    is assumed to cost :data:`SEMI_STEP_COST` supervised steps.

    Parameters
    ----------
    seconds : float
        Training time of the round.
    warmup_share : float
        Share of the steps that are supervised warm-up (the rest are semi steps); 1 for
        a supervised round, 0 for a warm-started semi round.
    min_steps, max_steps : int
        Bounds of the planned number of steps.
    """

    def __init__(self, seconds: float, *, warmup_share: float, min_steps: int = 5,
                 max_steps: int = 1_000_000) -> None:
        self.seconds = float(seconds)
        self.warmup_share = min(1.0, max(0.0, float(warmup_share)))
        self.min_steps = int(min_steps)
        self.max_steps = int(max_steps)
        self._times: dict[bool, list[float]] = {False: [], True: []}
        self._seen = 0

    def observe(self, seconds: float, *, semi: bool) -> bool:
        """Record the wall time of one step (the very first one is ignored).

        Returns
        -------
        bool
            Whether the estimate of that kind of step is still settling (one of its first
            five timed steps): the plan should be made again.
        """
        self._seen += 1
        if self._seen > 1:
            self._times[bool(semi)].append(float(seconds))
        return 0 < len(self._times[bool(semi)]) <= 5

    def exhausted(self, elapsed: float) -> bool:
        """Whether ``elapsed`` seconds of training overran the budget by half: stop now."""
        return elapsed > 1.5 * self.seconds

    def step_seconds(self, semi: bool) -> float | None:
        """Median measured time of a step of that kind (estimated from the other kind)."""
        own = self._times[bool(semi)]
        if own:
            return statistics.median(own[-20:])
        other = self._times[not semi]
        if not other:
            return None
        base = statistics.median(other[-20:])
        return base * SEMI_STEP_COST if semi else base / SEMI_STEP_COST

    def planned_steps(self) -> int | None:
        """Steps that fit the budget, or None before any step was timed."""
        t_sup = self.step_seconds(False)
        t_semi = self.step_seconds(True)
        if t_sup is None or t_semi is None:
            return None
        per_step = self.warmup_share * t_sup + (1.0 - self.warmup_share) * t_semi
        steps = int(self.seconds / max(per_step, 1e-6))
        return max(self.min_steps, min(self.max_steps, steps))
