"""Printing user-controlled text (file names, messages naming them) as one safe line.

A file name may hold a newline, a carriage return, an ANSI escape sequence or a
bidirectional override: printed raw, ``a\\nerror: forged.png`` would show as a
second, forged ``error:`` line. :func:`printable` escapes such characters the way
Python writes them in a string literal (``\\n``, ``\\x1b``, ``\\u202e``).
"""

from __future__ import annotations

import logging
import unicodedata

__all__ = ["printable", "OneLineFormatter"]

#: Unicode categories escaped: controls, format characters (bidi overrides, zero-width
#: characters), line and paragraph separators, and lone surrogates (undecodable bytes of
#: a file name, which would make printing fail).
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _escape(char: str) -> str:
    if unicodedata.category(char) not in _ESCAPED_CATEGORIES:
        return char
    return char.encode("unicode_escape", "backslashreplace").decode("ascii")


def printable(text: object) -> str:
    """``str(text)`` with control and format characters escaped, so it prints as one line.

    Parameters
    ----------
    text : object
        A message, a path, an exception...

    Returns
    -------
    str
        The text with each control, format or separator character written as its
        Python escape (``"\\n"``, ``"\\x1b"``, ``"\\u202e"``); everything else,
        non-ASCII letters included, unchanged.
    """
    s = str(text)
    if s.isprintable():  # the common case: nothing to escape
        return s
    return "".join(_escape(c) for c in s)


class OneLineFormatter(logging.Formatter):
    """A log formatter whose message line goes through :func:`printable`.

    A traceback attached to a record (``exc_info``) still follows on its own lines.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        """Format the message line, with control characters escaped."""
        return printable(super().formatMessage(record))
