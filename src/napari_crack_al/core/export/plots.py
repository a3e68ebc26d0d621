"""Small matplotlib plots for the project report, rendered off-screen (Agg) to PNG bytes.

No ``pyplot`` and no global state: each plot builds its own ``Figure`` on an Agg
canvas, so this works in a thread, on a server without a display, and next to a
running napari. PNGs carry no timestamp or software tag, so the same data give
the same bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["figure_to_png", "line_plot_png", "histogram_png", "bar_png", "PNG_DPI"]

PNG_DPI = 100
_SIZE = (6.0, 3.4)  # inches


def _figure():  # noqa: ANN202 - matplotlib types
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=_SIZE, dpi=PNG_DPI)
    FigureCanvasAgg(fig)
    return fig


def figure_to_png(fig) -> bytes:  # noqa: ANN001 - matplotlib Figure
    """Render a matplotlib ``Figure`` to PNG bytes (no metadata, so reproducible)."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=PNG_DPI, metadata={"Software": None})
    return buf.getvalue()


def line_plot_png(x: Sequence[float], series: Mapping[str, Sequence[float | None]], *,
                  xlabel: str, ylabel: str = "", title: str = "",
                  integer_x: bool = True, ylim: tuple[float, float] | None = None) -> bytes:
    """Lines with markers, one per entry of ``series`` (None / NaN values are gaps).

    Parameters
    ----------
    x : sequence of float
        Shared x values.
    series : mapping of str to sequence of float or None
        Legend label -> y values (same length as ``x``).
    xlabel, ylabel, title : str
        Axis labels and title.
    integer_x : bool
        Ticks at integers only.
    ylim : (float, float) or None
        Fixed y range (e.g. ``(0, 1)`` for scores).

    Returns
    -------
    bytes
        A PNG image.
    """
    from matplotlib.ticker import MaxNLocator

    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    xs = np.asarray(list(x), dtype=float)
    for label, ys in series.items():
        arr = np.asarray([np.nan if v is None else float(v) for v in ys], dtype=float)
        ax.plot(xs, arr, marker="o", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if integer_x:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(True, alpha=0.3)
    if len(series) > 1:
        ax.legend(loc="best", fontsize="small")
    return figure_to_png(fig)


def histogram_png(values: Sequence[float], *, xlabel: str, title: str = "",
                  bins: int = 20) -> bytes:
    """A histogram of ``values`` (non-finite values are dropped).

    Returns
    -------
    bytes
        A PNG image.
    """
    arr = np.asarray(list(values), dtype=float)
    arr = arr[np.isfinite(arr)]
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    if arr.size:
        lo, hi = float(arr.min()), float(arr.max())
        if not hi > lo:
            lo, hi = lo - 0.5, hi + 0.5
        n_bins = max(1, min(int(bins), 2 * math.ceil(math.sqrt(arr.size))))
        ax.hist(arr, bins=n_bins, range=(lo, hi), color="#4C72B0", edgecolor="white")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    if title:
        ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    return figure_to_png(fig)


def bar_png(counts: Mapping[str, float], *, ylabel: str = "count", title: str = "") -> bytes:
    """Vertical bars, one per entry of ``counts`` (in order), with the value on top.

    Returns
    -------
    bytes
        A PNG image.
    """
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    labels = [str(k) for k in counts]
    heights = [float(v) for v in counts.values()]
    bars = ax.bar(range(len(labels)), heights, color="#4C72B0")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=0 if len(labels) <= 5 else 30)
    for rect, h in zip(bars, heights):
        text = f"{h:g}" if h != int(h) else str(int(h))
        ax.annotate(text, (rect.get_x() + rect.get_width() / 2, h), ha="center", va="bottom",
                    fontsize="small")
    ax.set_ylabel(ylabel)
    if all(h == int(h) for h in heights):
        from matplotlib.ticker import MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if heights:
        ax.set_ylim(0, max(heights) * 1.15 if max(heights) > 0 else 1)
    if title:
        ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    return figure_to_png(fig)
