"""Show errors about user data as napari notifications instead of tracebacks.

Every error the core raises about user data is an
:class:`~napari_crack_al.core.errors.InputError` whose message names the file
and the problem; widgets show that message in a notification and stay usable.
Programming errors are not caught here: napari's own handler shows them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any, TypeVar

from ..core.errors import CrackALError

__all__ = ["is_user_error", "report", "reporting", "reports_errors", "info", "warning", "error"]

logger = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is about the user's data or environment (shown, not raised)."""
    return isinstance(exc, (CrackALError, OSError))


def _message(exc: BaseException, action: str | None) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and not isinstance(exc, CrackALError):
        name = getattr(exc, "filename", None)
        text = f"{name}: {exc.strerror}" if name and exc.strerror else text
    return f"{action}: {text}" if action else text


def report_job_failure(outcome: Any, action: str) -> None:
    """Report the error of a finished background job (nothing when it ended well or was
    cancelled); an unexpected error is also logged with its traceback.

    Parameters
    ----------
    outcome : JobOutcome
        The job's outcome (``error``, ``cancelled``).
    action : str
        What the job was doing, prefixed to the message.
    """
    if outcome.error is None or outcome.cancelled:
        return
    if not is_user_error(outcome.error):
        logger.error("%s failed", action, exc_info=outcome.error)
    report(outcome.error, action)


def report(exc: BaseException, action: str | None = None) -> str:
    """Show ``exc`` as an error notification (and log it); returns the message shown.

    Parameters
    ----------
    exc : BaseException
        The error.
    action : str, optional
        What was being done ("Open project"), prefixed to the message.
    """
    msg = _message(exc, action)
    logger.warning("%s", msg)
    error(msg)
    return msg


def error(message: str) -> None:
    """Show an error notification."""
    from napari.utils.notifications import show_error

    show_error(message)


def warning(message: str) -> None:
    """Show a warning notification."""
    from napari.utils.notifications import show_warning

    show_warning(message)


def info(message: str) -> None:
    """Show an information notification."""
    from napari.utils.notifications import show_info

    show_info(message)


@contextlib.contextmanager
def reporting(action: str | None = None) -> Iterator[None]:
    """Context manager: user errors inside become notifications, others propagate.

    Examples
    --------
    >>> with reporting("Open project"):  # doctest: +SKIP
    ...     session.open_project(path)
    """
    try:
        yield
    except Exception as exc:
        if not is_user_error(exc):
            raise
        report(exc, action)


def reports_errors(action: str | None = None) -> Callable[[F], F]:
    """Decorator form of :func:`reporting` (for Qt slots)."""

    def deco(func: F) -> F:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with reporting(action):
                return func(*args, **kwargs)
            return None

        return wrapper  # type: ignore[return-value]

    return deco
