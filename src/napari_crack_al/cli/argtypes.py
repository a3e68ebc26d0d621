"""Argument types shared by the subcommands: parse a number and check its range.

Each returns the parsed value or raises :class:`argparse.ArgumentTypeError`, which
argparse turns into a one-line usage error (exit code 2).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from .printable import printable

__all__ = ["int_at_least", "positive_int", "non_negative_int", "positive_float", "open_fraction",
           "seconds", "share", "existing_file"]


def _number(text: str, kind: type) -> float | int:
    try:
        return kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def int_at_least(low: int) -> Callable[[str], int]:
    """Parser of integers ``>= low``.

    Parameters
    ----------
    low : int
        Smallest accepted value.

    Returns
    -------
    callable
        ``parse(text) -> int`` for ``argparse``'s ``type=``.
    """

    def parse(text: str) -> int:
        value = int(_number(text, int))
        if value < low:
            words = {0: "a non-negative integer", 1: "a positive integer"}
            raise argparse.ArgumentTypeError(
                f"expected {words.get(low, f'an integer >= {low}')}, got {value}")
        return value

    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def positive_float(text: str) -> float:
    """Parse a finite number ``> 0``."""
    value = float(_number(text, float))
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def open_fraction(what: str = "a number") -> Callable[[str], float]:
    """Parser of numbers strictly between 0 and 1.

    Parameters
    ----------
    what : str
        What the number is, for the error message ("the validation fraction").

    Returns
    -------
    callable
        ``parse(text) -> float``.
    """

    def parse(text: str) -> float:
        value = float(_number(text, float))
        if not 0.0 < value < 1.0:
            raise argparse.ArgumentTypeError(f"{what} must be in (0, 1), exclusive; got {text}")
        return value

    return parse


def seconds(text: str) -> float:
    """Parse a duration in seconds, at least 1 and at most a day."""
    value = float(_number(text, float))
    if not (1.0 <= value <= 86400.0):
        raise argparse.ArgumentTypeError(f"expected seconds in [1, 86400], got {text}")
    return value


def share(text: str) -> float:
    """Parse a share in [0, 1) (0 allowed: "none")."""
    value = float(_number(text, float))
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a share in [0, 1), got {text}")
    return value


def existing_file(text: str) -> Path:
    """Parse the path of a file that must exist (e.g. local encoder weights)."""
    path = Path(text).expanduser()
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise argparse.ArgumentTypeError(f"{printable(path)} {what}")
    return path
