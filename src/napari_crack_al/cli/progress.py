"""A dependency-free terminal progress bar for the CLI."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """Draw ``[#####.....] 50/100 label`` on one line of a terminal.

    On a non-terminal stream (CI logs, pipes) it prints a line every 10 %.

    Parameters
    ----------
    total : int
        Number of units of work.
    label : str
        Text shown after the counter.
    stream : file-like
        Where to draw (standard error by default).
    """

    def __init__(self, total: int, label: str = "", stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(int(total), 1)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.done = 0
        self.suffix = ""
        self._start = time.perf_counter()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_decile = -1

    def update(self, done: int, suffix: str = "") -> None:
        """Set the number of finished units and redraw."""
        self.done = min(int(done), self.total)
        self.suffix = suffix
        frac = self.done / self.total
        elapsed = time.perf_counter() - self._start
        eta_text = f"eta {elapsed / frac - elapsed:5.0f}s" if frac > 0 else "eta    ?"
        filled = int(round(frac * self.width))
        bar = "#" * filled + "." * (self.width - filled)
        text = f"[{bar}] {self.done}/{self.total} {self.label} {suffix} {eta_text}"
        if self._tty:
            self.stream.write("\r" + text[:150].ljust(150))
            self.stream.flush()
        else:
            decile = int(frac * 10)
            if decile != self._last_decile:
                self._last_decile = decile
                self.stream.write(text + "\n")
                self.stream.flush()

    def close(self) -> None:
        """Finish the line."""
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()
