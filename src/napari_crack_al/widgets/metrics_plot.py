"""A light live plot for the Train panel: training losses and held-out metrics per round.

Left: the losses of the round being trained (or of the last round, kept in the
project's meta table so the curve survives a restart). Right: the held-out
metrics of every registered model (from :meth:`Project.models`), one point per
round.

Drawn with QPainter, not matplotlib: a matplotlib redraw costs the UI thread
100-400 ms on a busy 2-core machine (software OpenGL), a QPainter repaint a few
milliseconds. Repaints are also throttled (at most one every ``redraw_ms``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from qtpy.QtCore import QPointF, QRectF, Qt, QTimer
from qtpy.QtGui import QColor, QFont, QPainter, QPainterPath, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

__all__ = ["MetricsPlot", "LOSS_KEYS", "METRIC_KEYS", "downsample"]

#: Losses drawn, in this order (others yielded by the trainer are ignored).
LOSS_KEYS = ("total", "sup", "unsup", "contrastive")
#: Held-out metrics drawn per round, with their legend labels.
METRIC_KEYS = {"f1": "F1", "crack_iou": "IoU", "f1_tol2": "F1 (2 px tol.)"}
_COLORS = ("#4fc3f7", "#ffb74d", "#81c784", "#e57373", "#ba68c8")


def downsample(points: Sequence[tuple[float, float]], limit: int = 200) -> list[tuple[float, float]]:
    """At most ``limit`` evenly spread points of a curve (the last point kept)."""
    n = len(points)
    if n <= limit:
        return list(points)
    step = n / float(limit - 1)
    out = [points[int(i * step)] for i in range(limit - 1)]
    out.append(points[-1])
    return out


def _number(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100 or float(v).is_integer():
        return f"{v:.0f}"
    return f"{v:.2f}" if abs(v) >= 0.1 else f"{v:.3f}"


class MetricsPlot(QWidget):
    """Losses of the current round and held-out metrics per round.

    Parameters
    ----------
    parent : QWidget, optional
        Parent widget.
    colors : dict, optional
        ``{"background", "foreground", "text"}`` colours (napari's theme).
    redraw_ms : int
        Minimum time between two repaints.
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
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(150)
        self.setToolTip("Left: training losses of the round (per step). Right: metrics on the held-out "
                        "images per round (higher is better).")
        self._timer = QTimer(self)
        self._timer.setInterval(int(redraw_ms))
        self._timer.timeout.connect(self._redraw_if_dirty)
        self._timer.start()

    # ------------------------------------------------------------------ data
    def start_round(self, title: str) -> None:
        """Forget the loss curves: a new round starts (``title`` above the loss panel)."""
        self.losses = {}
        self.loss_title = title
        self._dirty = True

    def add_losses(self, step: int, losses: Mapping[str, float]) -> None:
        """Append the losses of one training step (drawn at the next repaint)."""
        for key in LOSS_KEYS:
            value = _number(losses.get(key))
            if value is not None:
                self.losses.setdefault(key, []).append((float(step), value))
        self._dirty = True

    def shown_losses(self) -> dict[str, list[tuple[float, float]]]:
        """The loss curves drawn: those the round's mode uses (a loss that stayed 0 is left out,
        e.g. the unsupervised terms of a supervised round)."""
        return {k: pts for k, pts in self.losses.items() if any(v != 0.0 for _, v in pts)}

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
            values = [_number((m.get("metrics") or {}).get(key)) for m in models]
            if any(v is not None for v in values):
                self.round_metrics[key] = values
        self._dirty = True

    # ------------------------------------------------------------------ drawing
    def redraw(self) -> None:
        """Repaint now (on the next paint event)."""
        self._dirty = False
        self.redraw_count += 1
        self.update()

    def _redraw_if_dirty(self) -> None:
        if self._dirty:
            self.redraw()

    def paintEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            painter.fillRect(self.rect(), QColor(self.colors["background"]))
            font = QFont(self.font())
            font.setPointSizeF(max(6.0, font.pointSizeF() * 0.8))
            painter.setFont(font)
            w, h = float(self.width()), float(self.height())
            half = w / 2.0
            shown = self.shown_losses()
            loss_series = [(k, shown[k]) for k in LOSS_KEYS if shown.get(k)]
            self._panel(painter, QRectF(0, 0, half, h), self.loss_title, "step", loss_series, None,
                        "losses appear while a round trains")
            metric_series = []
            for key, values in self.round_metrics.items():
                pts = [(float(r), v) for r, v in zip(self.rounds, values, strict=True) if v is not None]
                if pts:
                    metric_series.append((METRIC_KEYS[key], pts))
            self._panel(painter, QRectF(half, 0, half, h), "Held-out metrics", "round", metric_series, (0.0, 1.0),
                        "no held-out metrics yet", markers=True)
        finally:
            painter.end()

    def _panel(self, painter: QPainter, rect: QRectF, title: str, xlabel: str,
               series: list[tuple[str, list[tuple[float, float]]]], ylim: tuple[float, float] | None,
               empty: str, markers: bool = False) -> None:
        text = QColor(self.colors["text"])
        fm = painter.fontMetrics()
        lh = float(fm.height())
        left = rect.left() + fm.horizontalAdvance("0.000") + 6
        # title above; below the plot the x labels, then the legend (outside the curves)
        plot = QRectF(left, rect.top() + lh + 4, rect.right() - left - 8, rect.height() - 3 * lh - 14)
        painter.setPen(text)
        painter.drawText(QRectF(rect.left(), rect.top() + 2, rect.width(), lh), Qt.AlignmentFlag.AlignCenter, title)
        painter.setPen(QPen(QColor(self.colors["foreground"]), 1))
        painter.drawRect(plot)
        if plot.width() < 20 or plot.height() < 20:
            return
        if not series:
            painter.setPen(text)
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, empty)
            return
        xs = [x for _, pts in series for x, _ in pts]
        ys = [y for _, pts in series for _, y in pts]
        x0, x1 = min(xs), max(xs)
        y0, y1 = ylim if ylim is not None else (min(0.0, min(ys)), max(ys))
        if x1 <= x0:
            x0, x1 = x0 - 1, x1 + 1
        if y1 <= y0:
            y1 = y0 + 1.0

        def to_px(x: float, y: float) -> QPointF:
            return QPointF(plot.left() + (x - x0) / (x1 - x0) * plot.width(),
                           plot.bottom() - (y - y0) / (y1 - y0) * plot.height())

        painter.setPen(text)
        painter.drawText(QRectF(rect.left(), plot.top() - lh / 2, left - rect.left() - 3, lh),
                         Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, _fmt(y1))
        painter.drawText(QRectF(rect.left(), plot.bottom() - lh / 2, left - rect.left() - 3, lh),
                         Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, _fmt(y0))
        below = QRectF(plot.left(), plot.bottom() + 2, plot.width(), lh)
        painter.drawText(below, Qt.AlignmentFlag.AlignLeft, _fmt(x0))
        painter.drawText(below, Qt.AlignmentFlag.AlignRight, _fmt(x1))
        painter.drawText(below, Qt.AlignmentFlag.AlignHCenter, xlabel)
        legend_x, legend_y = plot.left(), below.bottom() + 2
        for i, (name, pts) in enumerate(series):
            color = QColor(_COLORS[i % len(_COLORS)])
            painter.setPen(QPen(color, 1.8 if i == 0 else 1.1))
            path = QPainterPath(to_px(*pts[0]))
            for x, y in pts[1:]:
                path.lineTo(to_px(x, y))
            painter.drawPath(path)
            if markers or len(pts) == 1:
                painter.setBrush(color)
                for x, y in pts:
                    painter.drawEllipse(to_px(x, y), 2.5, 2.5)
                painter.setBrush(Qt.BrushStyle.NoBrush)
            label = f"\u2014 {name}"
            painter.drawText(QRectF(legend_x, legend_y, plot.right() - legend_x, lh),
                             Qt.AlignmentFlag.AlignLeft, label)
            legend_x += fm.horizontalAdvance(label) + 12
