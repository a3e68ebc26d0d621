"""A one-line view of the round in progress, visible whatever section of the panel is shown.

It mirrors the Train panel: the phase (training, scoring...), the step and an
estimate of the time left from the progress so far, with the panel's Cancel. It reads
the Train panel a few times a second (the panel owns the round; this line only shows it).
"""

from __future__ import annotations

import time
from typing import Any

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

__all__ = ["RoundStatusLine", "eta_text"]

_POLL_MS = 250


def eta_text(done: int, total: int, elapsed_s: float) -> str:
    """``"about 40 s left"`` from the progress so far ("" when it cannot be told)."""
    if total <= 0 or done <= 0 or done >= total or elapsed_s <= 0:
        return ""
    left = elapsed_s * (total - done) / done
    if left >= 90:
        return f"about {left / 60:.0f} min left"
    return f"about {max(1, round(left))} s left"


class RoundStatusLine(QWidget):
    """Phase, step, time left and Cancel of the Train panel's round.

    Parameters
    ----------
    train : TrainWidget
        The panel whose round is shown.
    """

    def __init__(self, train: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.train = train
        self.label = QLabel("No round running")
        self.label.setToolTip("The retrain round in progress (details in the Train tab)")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the round; the current model is kept")
        self.cancel_button.clicked.connect(train.cancel)
        self.cancel_button.setEnabled(False)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.label, 1)
        row.addWidget(self.cancel_button)
        self._started: float | None = None
        self._phase: str | None = None
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.refresh)
        self._timer.start(_POLL_MS)

    def refresh(self) -> None:
        """Read the Train panel's round state and show it."""
        train = self.train
        running = bool(getattr(train, "running", False))
        self.cancel_button.setEnabled(running)
        if not running:
            self._started = self._phase = None
            last = getattr(train, "last_result", None)
            self.label.setText("No round running" if last is None else
                               f"Last round: {last.model_version} (threshold {last.threshold:.2f})")
            return
        bar = train.progress_bar
        fmt = bar.format()  # "training %v/%m", "scoring %v/%m"...: one per phase
        if fmt != self._phase:  # a new phase: its own clock
            self._phase, self._started = fmt, time.monotonic()
        shown = fmt.replace("%v", str(bar.value())).replace("%m", str(bar.maximum()))
        elapsed = time.monotonic() - (self._started or time.monotonic())
        eta = eta_text(bar.value() - bar.minimum(), bar.maximum() - bar.minimum(), elapsed)
        self.label.setText(f"Round: {shown}" + (f" — {eta}" if eta else ""))
