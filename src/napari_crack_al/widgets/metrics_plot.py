"""A small live plot for the Train panel: training losses and held-out metrics per round.

Left: the losses of the round being trained (or of the last round, kept in the
project's meta table so the curve survives a restart). Right: the held-out
metrics of every registered model (from :meth:`Project.models`), one point per
round. Redraws are throttled (at most every ``redraw_ms``) so a fast training
loop never floods the UI thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QSizePolicy, QVBoxLayout, QWidget

__all__ = ["MetricsPlot", "LOSS_KEYS", "METRIC_KEYS", "downsample"]

#: Losses drawn, in this order (others yielded by the trainer are ignored).
LOSS_KEYS = ("total", "sup", "unsup", "contrastive")
#: Held-out metrics drawn per round, with their legend labels.
METRIC_KEYS = {"f1": "F1", "crack_iou": "IoU", "f1_tol2": "F1 (2 px tol.)"}


def downsample(points: Sequence[tuple[float, float]], limit: int = 200) -> list[tuple[float, float]]:
    """At most ``limit`` evenly spread points of a curve (the last point kept)."""
    n = len(points)
    if n <= limit:
        return list(points)
    step = n / float(limit - 1)
    out = [points[int(i * step)] for i in range(limit - 1)]
    out.append(points[-1])
    return out


class MetricsPlot(QWidget):
    """Losses of the current round and held-out metrics per round.

    Parameters
    ----------
    parent : QWidget, optional
        Parent widget.
    colors : dict, optional
        ``{"background", "foreground", "text"}`` colours (napari's theme).
    redraw_ms : int
        Minimum time between two redraws.
    """

    def __init__(self, parent: QWidget | None = None, *, colors: Mapping[str, str] | None = None,
                 redraw_ms: int = 500) -> None:
        super().__init__(parent)
        self.colors = {"background": "#262930", "foreground": "#414851", "text": "#f0f1f2"}
        self.colors.update(colors or {})
        self.losses: dict[str, list[tuple[float, float]]] = {}
        self.loss_title = "Losses"
        self.rounds: list[int] = []
        self.round_metrics: dict[str, list[float | None]] = {}
        self.redraw_count = 0
        self._dirty = False

        self.figure = Figure(figsize=(4.0, 2.2), dpi=90, facecolor=self.colors["background"],
                             layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.canvas.setMinimumHeight(170)
        self.ax_loss = self.figure.add_subplot(1, 2, 1)
        self.ax_metric = self.figure.add_subplot(1, 2, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        self._timer = QTimer(self)
        self._timer.setInterval(int(redraw_ms))
        self._timer.timeout.connect(self._redraw_if_dirty)
        self._timer.start()
        self.redraw()

    # ------------------------------------------------------------------ data
    def start_round(self, title: str) -> None:
        """Forget the loss curves: a new round starts (``title`` above the loss axes)."""
        self.losses = {}
        self.loss_title = title
        self._dirty = True

    def add_losses(self, step: int, losses: Mapping[str, float]) -> None:
        """Append the losses of one training step (drawn at the next redraw)."""
        for key in LOSS_KEYS:
            value = losses.get(key)
            if value is not None and value == value:  # not NaN
                self.losses.setdefault(key, []).append((float(step), float(value)))
        self._dirty = True

    def set_losses(self, curves: Mapping[str, Iterable[Sequence[float]]], title: str) -> None:
        """Show stored loss curves ``{name: [[step, value], ...]}`` (a finished round)."""
        self.losses = {k: [(float(s), float(v)) for s, v in pts] for k, pts in curves.items()}
        self.loss_title = title
        self._dirty = True

    def loss_history(self, limit: int = 200) -> dict[str, list[list[float]]]:
        """The loss curves, down-sampled, as JSON-able lists (to store in the project)."""
        return {k: [list(p) for p in downsample(v, limit)] for k, v in self.losses.items()}

    def set_models(self, models: Sequence[Mapping[str, Any]]) -> None:
        """Show the held-out metrics of the registered models (``Project.models()``)."""
        self.rounds = [int(m.get("round", i + 1)) for i, m in enumerate(models)]
        self.round_metrics = {}
        for key in METRIC_KEYS:
            values = [_number(m.get("metrics", {}).get(key)) for m in models]
            if any(v is not None for v in values):
                self.round_metrics[key] = values
        self._dirty = True

    # ------------------------------------------------------------------ drawing
    def _style(self, ax: Any, title: str, xlabel: str) -> None:
        text, fg = self.colors["text"], self.colors["foreground"]
        ax.set_facecolor(self.colors["background"])
        ax.set_title(title, color=text, fontsize=9)
        ax.set_xlabel(xlabel, color=text, fontsize=8)
        ax.tick_params(colors=text, labelsize=7)
        for spine in ax.spines.values():
            spine.set_color(fg)

    def _note(self, ax: Any, text: str) -> None:
        ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=8,
                color=self.colors["text"], alpha=0.7, wrap=True)
        ax.set_xticks([])
        ax.set_yticks([])

    def redraw(self) -> None:
        """Draw both axes now."""
        self._dirty = False
        self.redraw_count += 1
        ax = self.ax_loss
        ax.clear()
        self._style(ax, self.loss_title, "step")
        if any(self.losses.values()):
            for key in LOSS_KEYS:
                pts = self.losses.get(key)
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    ax.plot(xs, ys, lw=1.6 if key == "total" else 0.9, label=key)
            ax.legend(fontsize=6, frameon=False, labelcolor=self.colors["text"], loc="upper right")
        else:
            self._note(ax, "losses appear\nwhile a round trains")
        ax = self.ax_metric
        ax.clear()
        self._style(ax, "Held-out metrics", "round")
        if self.round_metrics:
            for key, values in self.round_metrics.items():
                pts = [(r, v) for r, v in zip(self.rounds, values, strict=True) if v is not None]
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    ax.plot(xs, ys, marker="o", ms=3, lw=1.2, label=METRIC_KEYS[key])
            ax.set_ylim(0.0, 1.0)
            ax.set_xticks(sorted(set(self.rounds)))
            ax.legend(fontsize=6, frameon=False, labelcolor=self.colors["text"], loc="lower right")
        else:
            self._note(ax, "needs 5 accepted images\n(1 in 5 is held out)")
        self.canvas.draw_idle()

    def _redraw_if_dirty(self) -> None:
        if self._dirty and self.isVisible():
            self.redraw()


def _number(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if v == v else None
