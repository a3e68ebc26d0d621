"""Project meta values (JSON, e.g. the pixel size) and the registry of trained models.

:class:`MetaMixin` reads and writes the ``meta`` key-value table and the ``models``
table; it is mixed into :class:`~napari_crack_al.core.project.store.Project`. The
checks of a pixel size and of a model version live here too.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, ProjectError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["MetaMixin"]

_KIND_WORDS = {list: "a list", dict: "an object", float: "a number", str: "a string"}


def _is_kind(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


class MetaMixin:
    """Meta values and model registry of a :class:`Project` (mixed into it)."""

    # provided by Project
    root: Path
    db_path: Path
    _connect: Callable[[], contextlib.AbstractContextManager[sqlite3.Connection]]
    _transaction: Callable[[], contextlib.AbstractContextManager[sqlite3.Connection]]

    # ------------------------------------------------------------------ meta
    def get_meta(self, key: str, default: Any = None, *, kind: type | None = None) -> Any:
        """The JSON value stored under ``key``, or ``default``.

        Parameters
        ----------
        key : str
            The meta key.
        default : any
            Returned when nothing is stored (or JSON ``null``).
        kind : type, optional
            The type the value must have (``list``: a list of names, ``dict``, ``float``:
            any JSON number).

        Raises
        ------
        ProjectError
            The stored text is not JSON, or not of ``kind`` (a database edited by hand).
        """
        with self._connect() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            return default
        try:
            value = json.loads(row[0]) if isinstance(row[0], (str, bytes)) else row[0]
        except ValueError:
            raise ProjectError(self.db_path, f"meta value {key!r} is not valid JSON "
                                             f"({str(row[0])[:40]!r}); the project database "
                                             "may have been edited by hand") from None
        if value is None:
            return default
        if kind is not None and not _is_kind(value, kind):
            raise ProjectError(self.db_path, f"meta value {key!r} must be "
                                             f"{_KIND_WORDS.get(kind, kind.__name__)}, got "
                                             f"{str(value)[:40]!r}; the project database may "
                                             "have been edited by hand")
        return value

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable ``value`` under ``key`` (ValueError otherwise)."""
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"meta value for {key!r} is not JSON-serialisable ({exc})") from exc
        with self._transaction() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, text))

    @property
    def pixel_size_mm(self) -> float | None:
        """Size of one pixel in millimetres (None when unknown)."""
        value = self.get_meta("pixel_size_mm", kind=float)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ProjectError(self.db_path, f"meta value 'pixel_size_mm' must be a positive "
                                             f"number, got {value!r}")
        return None if value is None else float(value)

    @pixel_size_mm.setter
    def pixel_size_mm(self, value: float | None) -> None:
        _check_pixel_size(value)
        self.set_meta("pixel_size_mm", None if value is None else float(value))

    # ------------------------------------------------------------------ models
    def add_model(self, version: str, path: str | Path, *, round: int,
                  metrics: Mapping[str, float]) -> None:
        """Register a trained model (``path`` is stored relative to the root when inside it).

        Raises
        ------
        ProjectError
            ``version`` is already registered.
        """
        _check_version(version)
        path = Path(path)
        with contextlib.suppress(ValueError):
            path = path.resolve().relative_to(self.root.resolve())
        try:
            metrics_json = json.dumps({str(k): float(v) for k, v in dict(metrics).items()})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"metrics of model {version!r} must map names to numbers ({exc})") \
                from exc
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM models WHERE version = ?", (version,)).fetchone():
                raise ProjectError(self.db_path, f"model version {version!r} is already registered")
            conn.execute("INSERT INTO models (version, path, round, metrics, created_at) "
                         "VALUES (?, ?, ?, ?, ?)",
                         (version, path.as_posix(), int(round), metrics_json, time.time()))

    def models(self) -> list[dict[str, Any]]:
        """Registered models, oldest first.

        Returns
        -------
        list of dict
            Keys ``version``, ``path`` (absolute), ``round``, ``metrics``, ``created_at``.
        """
        with self._connect() as conn:
            rows = conn.execute("SELECT version, path, round, metrics, created_at FROM models "
                                "ORDER BY created_at, rowid").fetchall()
        return [{"version": v, "path": self.root / p, "round": int(r), "metrics": json.loads(m),
                 "created_at": float(c)} for v, p, r, m, c in rows]

    def current_model(self) -> dict[str, Any] | None:
        """The most recently registered model, or None."""
        models = self.models()
        return models[-1] if models else None


def _check_pixel_size(value: float | None) -> None:
    if value is None:
        return
    try:
        ok = math.isfinite(float(value)) and float(value) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError("pixel_size_mm must be a positive number of millimetres or None; "
                          f"got {value!r}")


def _check_version(version: str) -> None:
    if not isinstance(version, str) or not version:
        raise ValueError(f"model version must be a non-empty string, got {version!r}")
