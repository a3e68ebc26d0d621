"""Typed events yielded by long-running core generators (training, scoring, prediction).

Widgets run such a generator in a napari thread worker and update the UI from
the ``yielded`` signal; the CLI drives the same generator with a terminal
progress bar. A generator checks a :class:`CancelToken` (or simply gets closed
by the worker's ``quit()``) between steps.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
