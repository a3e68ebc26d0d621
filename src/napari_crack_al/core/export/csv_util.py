"""Atomic CSV files with one formatting convention for every table the package writes.

Exports, reports and simulations all write their tables through :func:`write_csv`:
UTF-8, comma separated, ``\\n`` line ends, a header row, empty cell for a missing
value (None or NaN), ``true``/``false`` for booleans, enum members as their value,
floats with up to :data:`FLOAT_DIGITS` significant digits. The file is written
atomically (temporary file, fsync, rename), so a reader never sees half a table.

Text cells that a spreadsheet would run as a formula — starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return (an image called ``=HYPERLINK(...).png``) —
are written with a leading ``'`` (OWASP's advice against CSV injection);
:func:`read_csv` removes it again, so names round-trip.
"""

from __future__ import annotations

import csv
import enum
import io
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..io.atomic import atomic_write_bytes
from ..errors import ExportError, InputError

__all__ = ["FLOAT_DIGITS", "FORMULA_STARTS", "neutralise", "format_cell", "csv_text", "write_csv",
           "read_csv"]

logger = logging.getLogger(__name__)

#: Significant digits of floating-point cells.
FLOAT_DIGITS = 7
#: First characters that make a spreadsheet read a text cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would read it as a formula.

    A text that already starts with ``'`` before such a character gets one more, so
    that :func:`read_csv` gives every text back unchanged.
    """
    if text.startswith(FORMULA_STARTS) or (text.startswith("'") and text != _restore(text)):
        return "'" + text
    return text


def _restore(text: str) -> str:
    """Undo :func:`neutralise`."""
    body = text[1:]
    if text.startswith("'") and (body.startswith(FORMULA_STARTS) or
                                 (body.startswith("'") and _restore(body) != body)):
        return body
    return text


def format_cell(value: Any) -> str:
    """Format one value as CSV cell text (see the module docstring for the rules)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return format_cell(value.value)
    if isinstance(value, Path):
        return neutralise(value.as_posix())
    if isinstance(value, int):
        return str(value)
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    if kind in ("i", "u"):
        return str(int(value))
    if kind == "b":
        return format_cell(bool(value))
    if isinstance(value, float) or kind == "f":
        number = float(value)
        if math.isnan(number):
            return ""
        if math.isinf(number):
            return "inf" if number > 0 else "-inf"
        return format(number, f".{FLOAT_DIGITS}g")
    return neutralise(str(value))


def csv_text(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Render ``rows`` as CSV text with a header of ``columns``.

    Parameters
    ----------
    rows : iterable of mapping
        One mapping per row; missing keys give empty cells, extra keys are an error.
    columns : sequence of str
        Column names, in order.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        A row has a key that is not a column (a programming error, not user data).
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    # the minimal quoting does not quote a lone carriage return (not in the line terminator)
    quoting_all = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(list(columns))
    known = set(columns)
    for row in rows:
        extra = set(row) - known
        if extra:
            raise ValueError(f"row has keys that are not columns: {sorted(extra)}")
        cells = [format_cell(row.get(col)) for col in columns]
        (quoting_all if any("\r" in c for c in cells) else writer).writerow(cells)
    return buf.getvalue()


def write_csv(path: str | Path, rows: Iterable[Mapping[str, Any]], columns: Sequence[str], *,
              error: type[InputError] = ExportError) -> Path:
    """Write a CSV table atomically.

    Parameters
    ----------
    path : str or Path
        Destination; its folder must exist.
    rows : iterable of mapping
        Rows (see :func:`csv_text`).
    columns : sequence of str
        Column names.
    error : type of InputError
        Exception raised (naming the file or folder) when the file cannot be written.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    data = csv_text(rows, columns).encode("utf-8")
    try:
        atomic_write_bytes(path, data, error=error)
    except InputError:
        raise
    except PermissionError as exc:
        raise error(path, "cannot write the table (permission denied)") from exc
    except OSError as exc:
        raise error(path, f"cannot write the table ({exc.strerror or exc})") from exc
    logger.debug("wrote %s (%d bytes)", path, len(data))
    return path


def read_csv(path: str | Path, *, error: type[InputError] = InputError) -> list[dict[str, str]]:
    """Read a CSV table written by :func:`write_csv` as a list of ``{column: text}``.

    Raises
    ------
    InputError
        The file cannot be read or is not UTF-8 text.
    """
    path = Path(path)
    try:
        with path.open(encoding="utf-8", newline="") as fh:  # keep \r inside quoted cells
            text = fh.read()
    except FileNotFoundError as exc:
        raise error(path, "file does not exist") from exc
    except UnicodeDecodeError as exc:
        raise error(path, "is not a UTF-8 text table") from exc
    except OSError as exc:
        raise error(path, f"cannot read the table ({exc.strerror or exc})") from exc
    return [{k: _restore(v) if isinstance(v, str) else v for k, v in row.items()}
            for row in csv.DictReader(io.StringIO(text))]
