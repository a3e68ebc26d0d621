"""Run a long core generator in a napari thread worker, and never lose the UI.

:class:`BackgroundJob` wraps :class:`napari.qt.threading.GeneratorWorker` so that

* the core generator runs in a worker thread; every event it yields reaches the
  UI thread through the worker's ``yielded`` signal;
* any exception inside the generator is caught *in the worker* and kept in
  :attr:`BackgroundJob.outcome` (superqt drops a ``RuntimeError`` raised by a
  generator without emitting ``finished``; a CUDA out-of-memory error is one);
* ``finished`` is always emitted, after a result, an error or a cancel; widgets
  re-enable their buttons there, never on ``returned``;
* :meth:`BackgroundJob.cancel` sets the :class:`~napari_crack_al.core.events.CancelToken`
  the core checks between steps, asks the worker to quit, and closes the generator
  in the worker thread (its ``finally`` clauses remove temporary files);
* napari's activity dock shows a progress bar (:class:`napari.utils.progress`).

The garbage collector is left alone (no :func:`gc.freeze`: it would change the whole
process, napari's objects included, not only the job's).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import traceback
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from napari.qt.threading import GeneratorWorker

from ..core.events import CancelToken
from ..core.memory_advice import OUT_OF_MEMORY_ADVICE, is_out_of_memory  # re-exported

__all__ = ["BackgroundJob", "JobOutcome", "is_out_of_memory", "OUT_OF_MEMORY_ADVICE", "POOL_RESERVE",
           "reserve_pool_threads"]

logger = logging.getLogger(__name__)

@dataclass
class JobOutcome:
    """How a job ended (read it in the ``finished`` handler).

    Attributes
    ----------
    value : Any
        The generator's return value (None when cancelled or failed).
    error : Exception or None
        The exception raised inside the job.
    cancelled : bool
        :meth:`BackgroundJob.cancel` was called.
    completed : bool
        The generator ran to its end without error.
    """

    value: Any = None
    error: BaseException | None = None
    cancelled: bool = False
    completed: bool = False


def _guarded(factory: Callable[[], Any], outcome: JobOutcome, setup: Callable[[], None] | None,
             running: list[Any]) -> Generator[Any, None, None]:
    """Run ``factory()`` (a generator or a plain call) and store its outcome; never raises.

    The core generator is put in ``running`` so that the worker can close it when asked
    to quit (its ``finally`` clauses then run in the worker thread).
    """
    try:
        if setup is not None:
            setup()
        work = factory()
        if inspect.isgenerator(work):
            running.append(work)
            outcome.value = yield from work
        else:
            outcome.value = work
        outcome.completed = True
    except Exception as exc:  # noqa: BLE001 - handed to the UI thread in `outcome`
        logger.debug("background job failed", exc_info=True)
        # the failed round's model and optimiser (GPU memory) must not live on in the
        # traceback's frames until the notification is gone
        traceback.clear_frames(exc.__traceback__)
        outcome.error = exc


#: Threads of Qt's global pool kept free for Qt's own work whenever a job starts. Qt converts
#: large images on that pool, in parallel, while the UI thread waits holding the GIL (a
#: window repaint does); when every pool thread runs a Python job, which needs the GIL to go
#: on, the conversion never runs: the whole application hangs. Seen on a 2-core machine (the
#: pool's default size is the core count) with two jobs running at a repaint.
POOL_RESERVE = 1


def reserve_pool_threads(pool: Any = None) -> int:
    """Grow Qt's thread pool so that one more job leaves :data:`POOL_RESERVE` threads free.

    Parameters
    ----------
    pool : QThreadPool, optional
        The pool jobs run on (superqt's workers use the global one, the default).

    Returns
    -------
    int
        The pool's thread limit afterwards (it is never lowered).
    """
    if pool is None:
        from qtpy.QtCore import QThreadPool

        pool = QThreadPool.globalInstance()
    needed = pool.activeThreadCount() + 1 + POOL_RESERVE
    if pool.maxThreadCount() < needed:
        pool.setMaxThreadCount(needed)
    return int(pool.maxThreadCount())


class _ClosingWorker(GeneratorWorker):
    """A generator worker that closes the core generator when asked to quit."""

    def __init__(self, factory: Callable[[], Any], outcome: JobOutcome,
                 setup: Callable[[], None] | None) -> None:
        self._running: list[Any] = []
        super().__init__(_guarded, factory, outcome, setup, self._running)

    def work(self) -> Any:  # runs in the worker thread
        try:
            return super().work()
        finally:
            if self.abort_requested:
                for gen in self._running:
                    with contextlib.suppress(Exception):
                        gen.close()


class BackgroundJob:
    """A core generator run in a napari thread worker.

    Parameters
    ----------
    factory : callable
        Called in the worker thread; returns the generator to drive (or a plain value).
    on_event : callable, optional
        Called on the UI thread with every yielded event.
    on_done : callable, optional
        Called on the UI thread with the :class:`JobOutcome` once the worker finished
        (after a result, an error or a cancel).
    cancel : CancelToken, optional
        The token the generator checks; one is made when not given.
    description : str
        Description of the progress bar in napari's activity dock ("" for none).
    setup : callable, optional
        Called first in the worker thread (e.g. to set torch's thread count).

    Examples
    --------
    >>> job = BackgroundJob(lambda: run_round(project, config, cancel=token),  # doctest: +SKIP
    ...                     on_event=show, on_done=done, cancel=token)
    >>> job.start()  # doctest: +SKIP
    """

    def __init__(self, factory: Callable[[], Any], *, on_event: Callable[[Any], None] | None = None,
                 on_done: Callable[[JobOutcome], None] | None = None, cancel: CancelToken | None = None,
                 description: str = "", setup: Callable[[], None] | None = None) -> None:
        self.cancel_token = cancel if cancel is not None else CancelToken()
        self.outcome = JobOutcome()
        self._on_event = on_event
        self._on_done = on_done
        self._running = False
        self._done = False
        self._description = description
        self._pbar: Any = None
        self.worker = _ClosingWorker(factory, self.outcome, setup)
        self.worker.yielded.connect(self._yielded)
        self.worker.finished.connect(self._finished)

    # ------------------------------------------------------------------ control
    def start(self) -> BackgroundJob:
        """Start the worker thread; returns self."""
        if self._description:
            from napari.utils import progress

            self._pbar = progress(total=0, desc=self._description)
        self._running = True
        reserve_pool_threads()
        self.worker.start()
        return self

    def cancel(self) -> None:
        """Ask the job to stop: the core stops at its next check, the worker at its next event."""
        if not self._running:
            return
        self.outcome.cancelled = True
        self.cancel_token.cancel()
        self.worker.quit()

    @property
    def running(self) -> bool:
        """Whether the job was started and has not finished yet."""
        return self._running

    @property
    def done(self) -> bool:
        """Whether ``finished`` was handled."""
        return self._done

    def progress(self, done: int, total: int, text: str | None = None) -> None:
        """Show ``done`` of ``total`` in napari's activity dock (total 0: busy)."""
        pbar = self._pbar
        if pbar is None:
            return
        total = max(0, int(total))
        if pbar.total != total:
            pbar.total = total
        if text is not None and text != pbar.desc:
            pbar.set_description(text)
        delta = int(done) - int(pbar.n)
        if delta:
            pbar.n = int(done)
            pbar.update(0)

    # ------------------------------------------------------------------ slots (UI thread)
    def _yielded(self, event: Any) -> None:
        if self._on_event is None or self.outcome.cancelled:
            return
        try:
            self._on_event(event)
        except Exception:  # noqa: BLE001 - a display problem must not stop the job
            logger.exception("could not show %r", event)

    def _finished(self) -> None:
        self._running = False
        self._done = True
        if self._pbar is not None:
            with contextlib.suppress(Exception):
                self._pbar.close()
            self._pbar = None
        if self.outcome.error is not None and self.outcome.cancelled:
            logger.info("job cancelled; it ended with %r", self.outcome.error)
        if self._on_done is not None:
            self._on_done(self.outcome)
