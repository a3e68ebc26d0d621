"""The disk work of an annotation session, in order, one task at a time, in thread workers.

Opening a large image and saving its mask cost time in proportion to the image; the
:class:`~napari_crack_al.widgets.session.AnnotationSession` hands that work to a
:class:`SessionIO` queue instead of doing it on the UI thread. Tasks run one after
another, in the order they were submitted, each in a napari thread worker
(:class:`~napari_crack_al.widgets.worker.BackgroundJob`), so a mask saved before an
image is opened is on disk before that image's masks are read, and two saves of one
mask never overtake each other. Each task's ``done`` callback runs on the UI thread.

Two kinds of task: *writes* (saving a mask: never dropped) and *reads* (opening an
image: dropped when superseded). :meth:`SessionIO.finish_writes` waits, on the calling
thread, until every write submitted so far is on disk (closing a project, an explicit
save); a write that no worker has started yet is then run right there.

This module uses napari's thread workers but no Qt widgets.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["IOTask", "SessionIO", "WRITE", "READ"]

logger = logging.getLogger(__name__)

#: A task that writes to the project (saved masks): never dropped, waited for on close.
WRITE = "write"
#: A task that only reads (opening an image): dropped when a newer one supersedes it.
READ = "read"


class IOTask:
    """One piece of disk work: ``run`` in a worker thread, then ``done`` on the UI thread.

    Parameters
    ----------
    kind : {"write", "read"}
        :data:`WRITE` or :data:`READ`.
    run : callable
        The work (plain function; its return value goes to :attr:`value`).
    done : callable, optional
        Called with the task on the UI thread once it ran, failed or was cancelled.
    label : str
        What the task does, for napari's activity dock ("" for no progress bar) and logs.

    Attributes
    ----------
    value : Any
        What ``run`` returned.
    error : Exception or None
        What ``run`` raised.
    cancelled : bool
        The task was dropped before it ran (or its result is no longer wanted).
    """

    def __init__(self, kind: str, run: Callable[[], Any],
                 done: Callable[[IOTask], None] | None = None, label: str = "") -> None:
        if kind not in (WRITE, READ):
            raise ValueError(f"task kind must be {WRITE!r} or {READ!r}; got {kind!r}")
        self.kind = kind
        self.label = label
        self.value: Any = None
        self.error: BaseException | None = None
        self.cancelled = False
        self._run = run
        self._done = done
        self._lock = threading.Lock()
        self._claimed = False
        self._finished = threading.Event()
        self._reported = False

    @property
    def writes(self) -> bool:
        """Whether the task writes to the project."""
        return self.kind == WRITE

    @property
    def finished(self) -> bool:
        """Whether ``run`` has returned (or raised)."""
        return self._finished.is_set()

    def claim(self) -> bool:
        """Take the task to run it (thread-safe); False when it already was taken or dropped."""
        with self._lock:
            if self._claimed or self.cancelled:
                return False
            self._claimed = True
            return True

    def execute(self) -> None:
        """Run the task (after :meth:`claim`); errors are kept in :attr:`error`, never raised."""
        try:
            self.value = self._run()
        except Exception as exc:  # noqa: BLE001 - handed to the UI thread in `error`
            logger.debug("%s failed", self.label or "disk task", exc_info=True)
            self.error = exc
        finally:
            self._finished.set()

    def cancel(self) -> bool:
        """Drop the task if it has not started; returns whether it was dropped."""
        with self._lock:
            if self._claimed:
                return False
            self.cancelled = True
        self._finished.set()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the task ran; returns False on timeout."""
        return self._finished.wait(timeout)

    def report(self) -> None:
        """Call ``done`` (once, on the UI thread)."""
        if self._reported:
            return
        self._reported = True
        if self._done is not None:
            self._done(self)


class SessionIO:
    """A queue of :class:`IOTask` run one at a time, in order, in napari thread workers."""

    def __init__(self) -> None:
        self._tasks: deque[IOTask] = deque()
        self._active: IOTask | None = None
        self._job: Any = None

    @property
    def busy(self) -> bool:
        """Whether a task runs or waits."""
        return self._active is not None or bool(self._tasks)

    @property
    def writing(self) -> bool:
        """Whether a write runs or waits."""
        active = self._active
        return (active is not None and active.writes and not active.finished) \
            or any(t.writes for t in self._tasks)

    def submit(self, task: IOTask) -> IOTask:
        """Queue ``task`` after the others; returns it."""
        self._tasks.append(task)
        self._pump()
        return task

    def cancel_reads(self) -> None:
        """Drop the reads that wait (their ``done`` is told, with ``cancelled`` set)."""
        for task in [t for t in self._tasks if not t.writes]:
            if task.cancel():
                self._tasks.remove(task)
                task.report()

    def finish_writes(self) -> list[IOTask]:
        """Block until every write submitted so far has run (UI thread); returns them.

        The write a worker runs is waited for; the writes that wait run here, in order,
        with their ``done``. Reads are left where they are.
        """
        done: list[IOTask] = []
        active = self._active
        if active is not None and active.writes:
            if active.claim():  # no worker thread has started it yet
                active.execute()
            else:
                active.wait()
            active.report()
            done.append(active)
        for task in [t for t in self._tasks if t.writes]:
            self._tasks.remove(task)
            if task.claim():
                task.execute()
            task.report()
            done.append(task)
        return done

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until the running task has run (for tests and benchmarks); False on timeout."""
        active = self._active
        return True if active is None else active.wait(timeout)

    # ------------------------------------------------------------------ internals
    def _pump(self) -> None:
        from .worker import BackgroundJob

        while self._active is None and self._tasks:
            task = self._tasks.popleft()
            if task.cancelled:
                task.report()
                continue
            self._active = task
            self._job = BackgroundJob(lambda task=task: self._work(task),
                                      on_done=lambda _outcome, task=task: self._finished(task),
                                      description=task.label if not task.writes else "")
            self._job.start()

    @staticmethod
    def _work(task: IOTask) -> None:  # worker thread
        if task.claim():
            task.execute()

    def _finished(self, task: IOTask) -> None:  # UI thread
        if self._active is task:
            self._active = None
        try:
            task.report()
        finally:
            self._pump()
