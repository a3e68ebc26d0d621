"""Learning curves of a label-efficiency simulation: the CSV tables, summaries and plots.

:mod:`.simulate` writes one row per (arm, round) with the columns of
:data:`CURVE_COLUMNS`; an *arm* is a (strategy, mode) pair, ``strategy="full"``
being the reference trained on every training image. This module reads and writes
those tables, summarises them (area under the learning curve, final values,
averages over seeds) and draws them with matplotlib's Agg canvas (no display, no
pyplot global state).

numpy + matplotlib only (no torch).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io.atomic import atomic_write_bytes
from ..errors import ExportError, InputError
from ..export.csv_util import read_csv, write_csv

__all__ = [
    "CURVE_COLUMNS",
    "SELECTED_COLUMNS",
    "METRIC_COLUMNS",
    "FULL_STRATEGY",
    "arm_name",
    "write_curve_csv",
    "write_selected_csv",
    "read_curve_csv",
    "area_under_curve",
    "summarize_arms",
    "mean_curves",
    "plot_curves",
    "write_curve_plot",
]

log = logging.getLogger(__name__)

#: Header of ``curve.csv``, in order.
CURVE_COLUMNS: tuple[str, ...] = (
    "round", "n_labeled", "strategy", "mode", "crack_iou", "f1", "precision", "recall",
    "f1_tol2", "edit_fraction", "threshold", "train_seconds", "score_seconds",
    "missed_length", "false_length", "suggested_by",
)
#: Header of ``selected.csv``.
SELECTED_COLUMNS: tuple[str, ...] = ("round", "image")
#: Numeric columns of ``curve.csv`` (parsed as float when read back).
METRIC_COLUMNS: tuple[str, ...] = (
    "crack_iou", "f1", "precision", "recall", "f1_tol2", "edit_fraction", "threshold",
    "train_seconds", "score_seconds", "missed_length", "false_length",
)
#: Strategy name of the full-supervision reference arm.
FULL_STRATEGY = "full"


def arm_name(strategy: str, mode: str) -> str:
    """Short name of an arm: ``"full"`` or ``"STRATEGY-MODE"`` (e.g. ``"hybrid-semi"``)."""
    return FULL_STRATEGY if strategy == FULL_STRATEGY else f"{strategy}-{mode}"


def _to_float(text: str) -> float:
    if text is None or str(text).strip() == "":
        return math.nan
    return float(text)


def write_curve_csv(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``curve.csv`` (header :data:`CURVE_COLUMNS`; NaN is written as an empty cell)."""
    return write_csv(path, rows, CURVE_COLUMNS)


def write_selected_csv(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``selected.csv`` (header ``round,image``)."""
    return write_csv(path, rows, SELECTED_COLUMNS)


def read_curve_csv(path: str | Path) -> list[dict[str, Any]]:
    """Read a ``curve.csv`` back: ints for round/n_labeled, floats (NaN for empty) for metrics.

    Raises
    ------
    InputError
        The file is missing, unreadable, or its header is not :data:`CURVE_COLUMNS`.
    """
    path = Path(path)
    try:
        header = path.read_text(encoding="utf-8").splitlines()[:1]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read the table ({exc})") from exc
    if header != [",".join(CURVE_COLUMNS)]:
        raise InputError(path, "is not a simulation curve (expected the header "
                               + ",".join(CURVE_COLUMNS) + ")")
    out: list[dict[str, Any]] = []
    for raw in read_csv(path):
        row: dict[str, Any] = {"round": int(raw["round"]), "n_labeled": int(raw["n_labeled"]),
                               "strategy": raw["strategy"], "mode": raw["mode"]}
        for col in METRIC_COLUMNS:
            row[col] = _to_float(raw[col])
        out.append(row)
    return out


def _arms(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((str(r["strategy"]), str(r["mode"])) for r in rows))


def area_under_curve(n_labeled: Sequence[float], values: Sequence[float]) -> float:
    """Normalised area under a learning curve: trapezoid area / label range.

    This is the mean value of the curve over the labelling budget (same unit as the
    metric). A single point gives that point's value; NaN values are left out.
    """
    x = np.asarray(n_labeled, dtype=float)
    y = np.asarray(values, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size == 0:
        return math.nan
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if x.size == 1 or x[-1] == x[0]:
        return float(np.mean(y))
    area = float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))
    return area / float(x[-1] - x[0])


def summarize_arms(rows: Sequence[Mapping[str, Any]], metric: str = "f1"
                   ) -> list[dict[str, Any]]:
    """One summary per arm: AULC of ``metric`` and of ``f1_tol2``, final values, mean edit fraction.

    Returns
    -------
    list of dict
        Keys ``strategy``, ``mode``, ``rounds``, ``final_n_labeled``, ``aulc_<metric>``,
        ``aulc_f1_tol2``, ``final_<metric>``, ``final_f1_tol2``, ``final_crack_iou``,
        ``mean_edit_fraction`` and ``train_seconds`` (total).
    """
    out: list[dict[str, Any]] = []
    for strategy, mode in _arms(rows):
        arm = sorted((r for r in rows if r["strategy"] == strategy and r["mode"] == mode),
                     key=lambda r: int(r["round"]))
        n = [float(r["n_labeled"]) for r in arm]
        last = arm[-1]
        edits = [float(r["edit_fraction"]) for r in arm
                 if r.get("edit_fraction") is not None and np.isfinite(float(r["edit_fraction"]))]
        out.append({
            "strategy": strategy, "mode": mode, "rounds": len(arm),
            "final_n_labeled": int(last["n_labeled"]),
            f"aulc_{metric}": area_under_curve(n, [float(r[metric]) for r in arm]),
            "aulc_f1_tol2": area_under_curve(n, [float(r["f1_tol2"]) for r in arm]),
            f"final_{metric}": float(last[metric]),
            "final_f1_tol2": float(last["f1_tol2"]),
            "final_crack_iou": float(last["crack_iou"]),
            "mean_edit_fraction": float(np.mean(edits)) if edits else math.nan,
            "train_seconds": float(np.nansum([float(r["train_seconds"]) for r in arm])),
        })
    return out


def mean_curves(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = METRIC_COLUMNS
                ) -> list[dict[str, Any]]:
    """Average rows of several runs (seeds) per (strategy, mode, round).

    Returns
    -------
    list of dict
        One row per (strategy, mode, round) with ``n_labeled`` (mean), ``n_runs``, and for
        each column ``<col>`` (NaN-ignoring mean) and ``<col>_std`` (NaN-ignoring
        population standard deviation).
    """
    groups: dict[tuple[str, str, int], list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault((str(r["strategy"]), str(r["mode"]), int(r["round"])), []).append(r)
    out: list[dict[str, Any]] = []
    for (strategy, mode, rnd), members in groups.items():
        row: dict[str, Any] = {"strategy": strategy, "mode": mode, "round": rnd,
                               "n_labeled": float(np.mean([float(m["n_labeled"])
                                                           for m in members])),
                               "n_runs": len(members)}
        for col in columns:
            vals = np.asarray([float(m[col]) if m.get(col) is not None else math.nan
                               for m in members], dtype=float)
            finite = vals[np.isfinite(vals)]
            row[col] = float(finite.mean()) if finite.size else math.nan
            row[f"{col}_std"] = float(finite.std()) if finite.size else math.nan
        out.append(row)
    return out


def plot_curves(rows: Sequence[Mapping[str, Any]], *, metrics: Sequence[str] = ("f1", "f1_tol2"),
                title: str = "") -> bytes:
    """Learning curves (``metrics`` vs ``n_labeled``), one line per arm, as PNG bytes.

    Rows that carry ``<metric>_std`` (from :func:`mean_curves`) get a shaded ±1 std band.
    The full-supervision arm is drawn as a dashed horizontal line at its last value
    (its label count, which does not change, is in the legend); the x axis spans the
    other arms' label counts.
    """
    from ..export.plots import PNG_DPI, figure_to_png

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0 * len(metrics), 3.8), dpi=PNG_DPI)
    FigureCanvasAgg(fig)
    arms = _arms(rows)
    finite_x = [float(r["n_labeled"]) for r in rows if r["strategy"] != FULL_STRATEGY]
    xmin = min(finite_x) if finite_x else 0.0
    xmax = max(finite_x) if finite_x else 0.0
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        for strategy, mode in arms:
            arm = sorted((r for r in rows if r["strategy"] == strategy and r["mode"] == mode),
                         key=lambda r: int(r["round"]))
            label = arm_name(strategy, mode)
            x = np.asarray([float(r["n_labeled"]) for r in arm])
            y = np.asarray([float(r[metric]) for r in arm])
            if strategy == FULL_STRATEGY:
                ax.axhline(y[-1], color="black", linestyle="--", linewidth=1.2,
                           label=f"{label} ({int(x[-1])} labels)")
                continue
            linestyle = "-" if mode == "semi" else ":"
            (line,) = ax.plot(x, y, marker="o", linestyle=linestyle, label=label)
            std_key = f"{metric}_std"
            if all(std_key in r for r in arm):
                s = np.asarray([float(r[std_key]) for r in arm])
                ax.fill_between(x, y - s, y + s, color=line.get_color(), alpha=0.15)
        ax.set_xlabel("labelled training images")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} on the validation images")
        if finite_x:
            ax.set_xlim(xmin - 1, xmax + 1)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize="small")
    if title:
        fig.suptitle(title)
    return figure_to_png(fig)


def write_curve_plot(path: str | Path, rows: Sequence[Mapping[str, Any]], **kwargs: Any) -> Path:
    """Write :func:`plot_curves` to ``path`` atomically."""
    if not rows:
        raise ExportError(path, "no rows to plot")
    return atomic_write_bytes(path, plot_curves(rows, **kwargs), error=ExportError)
