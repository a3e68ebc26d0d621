"""The command line's progress bar: tqdm on a terminal, one line per tenth in a log.

tqdm ships with napari. On a terminal the bar redraws one line; on any other stream
(CI logs, pipes, files) tqdm's redraws would fill the log with carriage returns, so the
same tqdm line is written once per tenth of the work instead.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

__all__ = ["ProgressBar"]

#: Width of a line written to a log.
LOG_COLUMNS = 100


class ProgressBar:
    """Show the progress of ``total`` units of work.

    Parameters
    ----------
    total : int
        Number of units of work.
    label : str
        What is counted ("images", "steps"), shown before the bar.
    stream : file-like
        Where to draw (standard error by default).
    """

    def __init__(self, total: int, label: str = "", stream: TextIO | None = None) -> None:
        self.total = max(int(total), 1)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.suffix = ""
        self._start = time.perf_counter()
        self._last_tenth = -1
        self._bar: tqdm | None = None
        if bool(getattr(self.stream, "isatty", lambda: False)()):
            self._bar = tqdm(total=self.total, desc=label or None, file=self.stream,
                             dynamic_ncols=True, leave=True)

    def update(self, done: int, suffix: str = "") -> None:
        """Set the number of finished units (and the text after the bar) and redraw."""
        self.done = min(max(int(done), 0), self.total)
        self.suffix = suffix
        if self._bar is not None:
            self._bar.n = self.done
            self._bar.set_postfix_str(suffix, refresh=False)
            self._bar.refresh()
            return
        tenth = int(10 * self.done / self.total)
        if tenth != self._last_tenth:
            self._last_tenth = tenth
            line = tqdm.format_meter(self.done, self.total, time.perf_counter() - self._start,
                                     ncols=LOG_COLUMNS, prefix=self.label,
                                     postfix=suffix or None, ascii=True)
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Finish the line."""
        if self._bar is not None:
            self._bar.close()
