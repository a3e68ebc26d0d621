"""Atomic CSV files with one formatting convention for every table the package writes.

Exports, reports and simulations all write their tables through :func:`write_csv`:
UTF-8, comma separated, ``\\n`` line ends, a header row, empty cell for a missing
value (None or NaN), ``true``/``false`` for booleans, enum members as their value,
floats with up to :data:`FLOAT_DIGITS` significant digits. The file is written
atomically (temporary file, fsync, rename), so a reader never sees half a table.
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

from ..atomic import atomic_write_bytes
from ..errors import ExportError, InputError

__all__ = ["FLOAT_DIGITS", "format_cell", "csv_text", "write_csv", "read_csv"]

logger = logging.getLogger(__name__)

#: Significant digits of floating-point cells.
FLOAT_DIGITS = 7


def format_cell(value: Any) -> str:
    """Format one value as CSV cell text (see the module docstring for the rules)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return format_cell(value.value)
    if isinstance(value, Path):
        return value.as_posix()
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
    return str(value)


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
    writer.writerow(list(columns))
    known = set(columns)
    for row in rows:
        extra = set(row) - known
        if extra:
            raise ValueError(f"row has keys that are not columns: {sorted(extra)}")
        writer.writerow([format_cell(row.get(col)) for col in columns])
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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise error(path, "file does not exist") from exc
    except UnicodeDecodeError as exc:
        raise error(path, "is not a UTF-8 text table") from exc
    except OSError as exc:
        raise error(path, f"cannot read the table ({exc.strerror or exc})") from exc
    return [dict(row) for row in csv.DictReader(io.StringIO(text))]
