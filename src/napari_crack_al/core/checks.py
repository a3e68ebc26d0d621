"""Validation of config values: one collector of problems for every frozen config dataclass.

A config's ``__post_init__`` checks each field with a :class:`Problems` and raises one
:class:`~napari_crack_al.core.errors.ConfigError` listing everything wrong::

    check = Problems(self)
    check.integer("iterations", 1)
    check.number("lr", 0.0, low_open=True)
    check.raise_if_any("TrainConfig")
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from .errors import ConfigError

__all__ = ["Problems", "is_int", "is_number"]


def is_int(v: object) -> bool:
    """An int that is not a bool."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: object) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


class Problems:
    """Collects what is wrong with the fields of ``obj``; :meth:`raise_if_any` reports them."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        """Record a problem found by the caller."""
        self.messages.append(message)

    def choice(self, name: str, options: Iterable[str]) -> None:
        """``name`` must be one of ``options``."""
        options = tuple(options)
        v = getattr(self.obj, name)
        if v not in options:
            self.add(f"{name} must be one of {', '.join(map(str, options))} (got {v!r})")

    def integer(self, name: str, low: int, high: int | None = None, *,
                none_ok: bool = False) -> None:
        """``name`` must be an integer in ``[low, high]`` (None too with ``none_ok``)."""
        v = getattr(self.obj, name)
        if v is None and none_ok:
            return
        if not is_int(v) or v < low or (high is not None and v > high):
            span = f">= {low}" if high is None else f"in [{low}, {high}]"
            self.add(f"{name} must be an integer {span} (got {v!r})")

    def number(self, name: str, low: float, high: float = math.inf, *, low_open: bool = False,
               high_open: bool = False, none_ok: bool = False) -> None:
        """``name`` must be a finite number between ``low`` and ``high``."""
        v = getattr(self.obj, name)
        if v is None and none_ok:
            return
        ok = is_number(v) and (v > low if low_open else v >= low) and (
            v < high if high_open else v <= high)
        if not ok:
            lb, hb = ("(" if low_open else "["), (")" if high_open else "]")
            self.add(f"{name} must be a number in {lb}{low}, {high}{hb} (got {v!r})")

    def integers(self, name: str, low: int, high: int | None = None, *, count: int | None = None,
                 none_ok: bool = False) -> tuple[int, ...] | None:
        """``name`` must be a non-empty sequence of integers in ``[low, high]``.

        With ``count``, exactly that many. Returns the values as a tuple (to store back on
        a frozen dataclass), or None when they are not valid (or None with ``none_ok``).
        """
        v = getattr(self.obj, name)
        if v is None and none_ok:
            return None
        values = tuple(v) if isinstance(v, (list, tuple)) else ()
        if (not values or (count is not None and len(values) != count)
                or any(not is_int(x) or x < low or (high is not None and x > high)
                       for x in values)):
            many = "a non-empty sequence of" if count is None else str(count)
            span = f">= {low}" if high is None else f"in [{low}, {high}]"
            alt = "None or " if none_ok else ""
            self.add(f"{name} must be {alt}{many} integers {span} (got {v!r})")
            return None
        return values

    def numbers(self, name: str, low: float, *, low_open: bool = False
                ) -> tuple[float, ...] | None:
        """``name`` must be a non-empty sequence of finite numbers above ``low``.

        Returns them as a tuple of float, or None when they are not valid.
        """
        v = getattr(self.obj, name)
        values = tuple(v) if isinstance(v, (list, tuple)) else ()
        if not values or any(not is_number(x) or (x <= low if low_open else x < low)
                             for x in values):
            bound = f"> {low}" if low_open else f">= {low}"
            self.add(f"{name} must be a non-empty sequence of numbers {bound} (got {v!r})")
            return None
        return tuple(float(x) for x in values)

    def pair(self, name: str, low: float, high: float = math.inf, *, integer: bool = False,
             ordered: bool = True, value: Any = None) -> tuple | None:
        """``name`` (or ``value`` when given) must be two numbers in ``[low, high]``.

        ``ordered``: a ``(min, max)`` range (min <= max); otherwise any two values, e.g.
        ``(height, width)``. Returns the pair as floats (ints with ``integer``), or None
        when it is not valid.
        """
        v = getattr(self.obj, name) if value is None else value
        what = "(min, max)" if ordered else "(height, width)"
        try:
            lo, hi = (float(x) for x in v)
        except (TypeError, ValueError):
            self.add(f"{name} must be a {what} pair of numbers (got {v!r})")
            return None
        if integer and not (lo.is_integer() and hi.is_integer()):
            self.add(f"{name} must hold integers (got {v!r})")
            return None
        inside = low <= min(lo, hi) and max(lo, hi) <= high and math.isfinite(lo + hi)
        if not inside or (ordered and lo > hi):
            rule = f"{low} <= min <= max <= {high}" if ordered else f"values in [{low}, {high}]"
            self.add(f"{name} must satisfy {rule} (got {v!r})")
            return None
        return (int(lo), int(hi)) if integer else (lo, hi)

    def members(self, name: str, options: Iterable[str]) -> tuple[str, ...] | None:
        """``name`` must be one of ``options`` or a sequence of them; returns the tuple."""
        options = tuple(options)
        v = getattr(self.obj, name)
        values = (v,) if isinstance(v, str) else tuple(v) if isinstance(v, (list, tuple)) else None
        bad = [x for x in values if x not in options] if values is not None else [v]
        if bad:
            self.add(f"unknown {name} {bad}; valid: {', '.join(options)}")
            return None
        return values

    def boolean(self, *names: str) -> None:
        """Each of ``names`` must be True or False."""
        for name in names:
            v = getattr(self.obj, name)
            if not isinstance(v, bool):
                self.add(f"{name} must be true or false (got {v!r})")

    def raise_if_any(self, what: str) -> None:
        """Raise ``ConfigError("invalid WHAT: problem; problem")`` when a problem was found."""
        if self.messages:
            raise ConfigError(f"invalid {what}: " + "; ".join(self.messages))
