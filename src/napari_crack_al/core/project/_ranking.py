"""Scores per image and the annotation queue of a project.

:class:`RankingMixin` stores the scores of the active-learning strategies (one value
per image and kind, with the model version that produced it), sets the queue order a
ranking gives, and finds the next image waiting for annotation. It is mixed into
:class:`~napari_crack_al.core.project.store.Project`.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ._catalog import _QUEUE
from ._meta import _check_version
from .records import ImageStatus, UnknownImageError

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Callable
    from pathlib import Path

__all__ = ["RankingMixin"]


class RankingMixin:
    """Scores and queue order of a :class:`Project` (mixed into it)."""

    # provided by Project
    images_dir: Path
    _connect: Callable[[], contextlib.AbstractContextManager[sqlite3.Connection]]
    _transaction: Callable[[], contextlib.AbstractContextManager[sqlite3.Connection]]
    _require_names: Callable[[sqlite3.Connection, Sequence[str]], None]

    # ------------------------------------------------------------------ scores and queue
    def set_scores(self, scores: Mapping[str, float], model_version: str,
                   kind: str = "score") -> None:
        """Store one score per image for ``kind`` (all in one transaction).

        ``kind="score"`` also becomes the record's ``score`` / ``score_model_version``.

        Raises
        ------
        UnknownImageError
            A name is not in the project (nothing is written).
        ValueError
            A value is not a finite number, or ``kind`` is empty.
        """
        _check_version(model_version)
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"score kind must be a non-empty string, got {kind!r}")
        values = []
        for name, value in scores.items():
            v = float(value)
            if not math.isfinite(v):
                raise ValueError(f"score {kind!r} of {name!r} is not finite ({value!r})")
            values.append((name, v))
        now = time.time()
        with self._transaction() as conn:
            self._require_names(conn, [n for n, _ in values])
            conn.executemany(
                "INSERT INTO scores (name, kind, value, model_version, updated_at) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (name, kind) DO UPDATE SET value = excluded.value, "
                "model_version = excluded.model_version, updated_at = excluded.updated_at",
                [(n, kind, v, model_version, now) for n, v in values])
            if kind == "score":
                conn.executemany("UPDATE images SET score = ?, score_model_version = ?, "
                                 "updated_at = ? WHERE name = ?",
                                 [(v, model_version, now, n) for n, v in values])

    def get_scores(self, kind: str | None = None) -> dict[str, dict[str, float]]:
        """Stored scores as ``{name: {kind: value}}`` (only ``kind`` when given)."""
        query = "SELECT name, kind, value FROM scores"
        args: tuple[str, ...] = ()
        if kind is not None:
            query += " WHERE kind = ?"
            args = (kind,)
        out: dict[str, dict[str, float]] = {}
        with self._connect() as conn:
            for name, k, value in conn.execute(query + " ORDER BY name, kind", args):
                out.setdefault(name, {})[k] = float(value)
        return out

    def score_versions(self, kind: str = "score") -> dict[str, str]:
        """Model version that produced each stored score of ``kind``: ``{name: version}``."""
        with self._connect() as conn:
            return dict(conn.execute("SELECT name, model_version FROM scores WHERE kind = ?",
                                     (kind,)).fetchall())

    def set_queue_order(self, names: Sequence[str]) -> None:
        """Put ``names`` first, in this order; the other images keep their order after them.

        Repeated names count once. Raises :class:`UnknownImageError` for an unknown name.
        """
        wanted = list(dict.fromkeys(names))
        with self._transaction() as conn:
            self._require_names(conn, wanted)
            current = [r[0] for r in conn.execute(f"SELECT name FROM images {_QUEUE}")]
            chosen = set(wanted)
            order = wanted + [n for n in current if n not in chosen]
            conn.executemany("UPDATE images SET queue_position = ? WHERE name = ?",
                             [(i, n) for i, n in enumerate(order)])

    def next_name(self, after: str | None = None) -> str | None:
        """The next image in queue order whose status is new or suggested.

        With ``after``, the search starts behind that image and wraps around to
        the start of the queue (``after`` itself is never returned). None when no
        image waits.
        """
        with self._connect() as conn:
            rows = conn.execute(f"SELECT name, status FROM images {_QUEUE}").fetchall()
            if after is not None:
                idx = next((i for i, r in enumerate(rows) if r[0] == after), None)
                if idx is None:
                    raise UnknownImageError(self.images_dir, after)
                rows = rows[idx + 1:] + rows[:idx]
        pending = {ImageStatus.NEW.value, ImageStatus.SUGGESTED.value}
        return next((name for name, status in rows if status in pending), None)
