"""Typed events yielded by long-running core generators (training, scoring, prediction).

Widgets run such a generator in a napari thread worker and update the UI from
the ``yielded`` signal; the CLI drives the same generator with a terminal
progress bar. A generator checks a :class:`CancelToken` (or simply gets closed
by the worker's ``quit()``) between steps.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any


class Outcome:
    """Iterate a generator's events; its return value is :attr:`value` once the loop ends.

    The one way this package drives a generator of events to its return value::

        run = Outcome(train(...))
        for event in run:
            ...
        result = run.value

    Parameters
    ----------
    gen : Generator
        The generator (closed by :meth:`close`, e.g. in a ``finally``).
    """

    def __init__(self, gen: Generator[Any, Any, Any]) -> None:
        self.gen = gen
        self.value: Any = None
        self.finished = False

    def __iter__(self) -> Iterator[Any]:
        self.value = yield from self.gen
        self.finished = True

    def close(self) -> None:
        """Close the generator (its ``finally`` blocks run)."""
        self.gen.close()


def drain(gen: Generator[Any, Any, Any]) -> tuple[list[Any], Any]:
    """Run ``gen`` to its end: ``(every event, the return value)``."""
    run = Outcome(gen)
    events = list(run)
    return events, run.value


class CancelToken:
    """A thread-safe flag that long work checks between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the work to stop at its next check."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._event.is_set()


@dataclass(frozen=True)
class ProgressEvent:
    """Generic progress: ``done`` of ``total`` units of ``what``."""

    done: int
    total: int
    what: str = ""


@dataclass(frozen=True)
class StepEvent:
    """One optimisation step finished.

    ``losses`` maps a loss name ("sup", "unsup", "contrastive", "total") to its value.
    """

    step: int
    total_steps: int
    losses: dict[str, float] = field(default_factory=dict)
    lr: float = 0.0
    seconds: float = 0.0


@dataclass(frozen=True)
class ValidationEvent:
    """Validation metrics measured after ``step``."""

    step: int
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckpointEvent:
    """A checkpoint was written atomically to ``path``."""

    step: int
    path: Path
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MessageEvent:
    """A human-readable status line (device chosen, data found, ...)."""

    text: str
