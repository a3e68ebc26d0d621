"""Pseudo labels only from a teacher worth copying: when the semi-supervised phase starts.

A semi run from scratch used to start U2PL after a fixed 10 % warm-up, when the
teacher — a copy of a student trained for a few dozen steps — could not yet segment a
crack, so its pseudo labels taught "no crack". :class:`SemiGate` keeps such a run
supervised until the teacher passes a bar:

* with held-out images, its held-out F1 (one tiled pass over them; the threshold
  calibrated there also becomes the pseudo-label threshold);
* without, its F1 on the labelled crops of the last steps, at the threshold that
  maximises it (which then becomes the pseudo-label threshold: a teacher trained on a
  few labels is rarely sure enough of thin cracks for 0.5).

The gate is checked at the end of the warm-up and then every ``check_every`` steps up to
80 % of the run (a later start would leave too few semi steps to matter); if it never
opens, the round stays supervised and says so. A warm start is trusted at once: its
teacher is the previous round's model (:func:`~.setup.prepare_run` opens the phase at
step 0).
"""

from __future__ import annotations

import logging
from collections import deque

from .setup import TrainingRun
from .validation import HeldOut

__all__ = ["SemiGate", "LAST_PHASE"]

logger = logging.getLogger(__name__)

#: The gate is not checked after this share of the run.
LAST_PHASE = 0.8


class SemiGate:
    """Opens the semi phase of ``run`` once its teacher is worth copying (see the module).

    Parameters
    ----------
    run : TrainingRun
        A semi run from scratch (the gate does nothing for other runs).
    heldout : HeldOut or None
        The held-out images, if any.
    check_every : int or None
        Steps between two checks after the warm-up (default: 5 % of the run, at least 1).
    window : int
        Steps over which the labelled-crop F1 is averaged.
    """

    def __init__(self, run: TrainingRun, heldout: HeldOut | None, *,
                 check_every: int | None = None, window: int = 10) -> None:
        self.run = run
        self.heldout = heldout
        self.check_every = check_every
        self.bar = float(run.config.semi_entry_f1)
        self._recent: deque[tuple] = deque(maxlen=max(1, int(window)))
        self.last_f1: float | None = None
        self.active = run.semi and not run.semi_open

    def observe(self, counts: tuple | None) -> None:
        """Record the labelled-crop threshold counts of a supervised step (see ``batch_counts``)."""
        if counts is not None:
            self._recent.append(counts)

    def _labelled_choice(self) -> tuple[float, float] | None:
        """(best F1, its threshold) over the recorded labelled crops."""
        from ..calibration import choose_threshold

        if not self._recent:
            return None
        choice = choose_threshold(sum(c[0] for c in self._recent), sum(c[1] for c in self._recent),
                                  sum(c[2] for c in self._recent))
        return None if choice is None else (choice.f1, choice.threshold)

    def due(self, steps_done: int) -> bool:
        """Whether the gate should be checked after ``steps_done`` steps."""
        if not self.active:
            return False
        run = self.run
        total = run.schedule.total
        every = self.check_every or max(1, int(0.05 * total))
        start = max(1, run.warmup_steps)
        if steps_done < start or steps_done >= LAST_PHASE * total:
            return False
        return (steps_done - start) % every == 0

    def check(self, steps_done: int) -> str | None:
        """Check the teacher; opens the semi phase at ``steps_done`` when it passes.

        Returns
        -------
        str or None
            A message when the gate opened, else None.
        """
        run = self.run
        threshold = None
        if self.heldout is not None and len(self.heldout):
            result = self.heldout.evaluate(run.teacher.module, run.pseudo_threshold)
            f1, what = result.f1, "held-out F1"
            if result.threshold_source == "heldout":
                threshold = result.threshold
        else:
            choice = self._labelled_choice()
            if choice is None:
                return None
            (f1, threshold), what = choice, "F1 on the labelled crops"
        self.last_f1 = f1
        logger.debug("semi gate at step %d: %s %.3f (bar %.2f)", steps_done, what, f1, self.bar)
        if f1 < self.bar:
            return None
        run.open_semi(steps_done, threshold)
        self.active = False
        cut = f", pseudo labels cut at {threshold:.2f}" if threshold is not None else ""
        return (f"semi-supervised phase from step {steps_done + 1}: the teacher's {what} "
                f"is {f1:.2f} (bar {self.bar:.2f}){cut}")

    def adopt(self, steps_done: int, threshold: float | None) -> None:
        """Open the phase as another rank's gate decided (several ranks: rank 0 checks)."""
        self.run.open_semi(steps_done, threshold)
        self.active = False

    def closing_message(self) -> str | None:
        """What to say when the run ends with the gate still closed."""
        if not self.active:
            return None
        seen = "" if self.last_f1 is None else f" (last {self.last_f1:.2f})"
        return (f"the teacher never reached F1 {self.bar:.2f}{seen}: this round trained "
                "supervised only, without pseudo labels")
