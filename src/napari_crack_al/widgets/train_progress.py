"""How the Train panel follows a round: progress, status line, loss plot, models and the outcome.

:class:`RoundProgressMixin` turns the events a round yields (training steps,
progress, held-out metrics, checkpoints, messages) into the progress bar, the
status line and the loss plot on the UI thread, shows the project's models,
and applies the round's outcome when it ends: the new suggestions are opened
(unless the annotator is editing), errors become notifications. It is mixed
into :class:`~napari_crack_al.widgets.train_widget.TrainWidget`.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

from ..core.active.round import RoundFinished
from ..core.events import CheckpointEvent, MessageEvent, ProgressEvent, StepEvent, ValidationEvent
from . import notify
from .metrics_plot import METRIC_KEYS
from .shortcuts import NEXT_KEY, key_text
from .worker import OUT_OF_MEMORY_ADVICE, JobOutcome, is_out_of_memory

if TYPE_CHECKING:  # pragma: no cover
    from qtpy.QtWidgets import QLabel, QProgressBar, QPushButton

    from .metrics_plot import MetricsPlot
    from .session import AnnotationSession
    from .worker import BackgroundJob

__all__ = ["RoundProgressMixin", "LOSSES_META", "FEW_HELDOUT", "round_summary"]

logger = logging.getLogger(f"{__package__}.train_widget")  # the Train panel logs under one name

LOSSES_META = "train_panel_losses"  # loss curve of the last round, for the plot after a restart
_PHASES = {"loading": "Loading images", "scoring": "Scoring the queue", "embedding annotated": "Embedding"}


def _release_gpu_memory() -> None:
    """Give the GPU memory cached by torch back (no gc.collect(): it would stall the UI)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


#: Fewer held-out images than this: the round's notification says what its figures rest on.
FEW_HELDOUT = 3


def round_summary(result: RoundFinished, previous: dict[str, Any] | None, top: str | None) -> str:
    """One line on a finished round, e.g. ``"round-004 ready: held-out F1 0.61 → 0.66; next:
    sample_0012"``.

    Parameters
    ----------
    result : RoundFinished
        The round.
    previous : dict or None
        The previous model's record (``project.models()`` entry), None for the first.
    top : str or None
        The image the queue opens next.
    """
    new_f1 = result.metrics.get("f1")
    old_f1 = (previous or {}).get("metrics", {}).get("f1")
    text = f"{result.model_version} ready"
    if new_f1 is not None and old_f1 is not None:
        text += f": held-out F1 {old_f1:.2f} \u2192 {new_f1:.2f}"
    elif new_f1 is not None:
        text += f": held-out F1 {new_f1:.2f}"
    else:
        text += " (no held-out image yet: accept a few more masks to measure it)"
    if result.kept_previous:
        text += " (worse than the previous model beyond noise: its weights are kept)"
    n = int(result.metrics.get("n_images", len(result.heldout)) or 0)
    if new_f1 is not None and n < FEW_HELDOUT:
        text += f" \u2014 measured on {n} held-out image{'s' if n != 1 else ''} only"
    source = getattr(result, "source", None)
    if source is not None and source.source != "model":
        text += "; " + source.describe(result.model_version)
    text += f"; next: {top}" if top else "; no image waits in the queue"
    return text


class RoundProgressMixin:
    """The round display of the :class:`TrainWidget` (mixed into it)."""

    # provided by TrainWidget
    session: AnnotationSession
    job: BackgroundJob | None
    last_result: RoundFinished | None
    _alive: bool
    model_label: QLabel
    retrain_button: QPushButton
    cancel_button: QPushButton
    progress_bar: QProgressBar
    status_label: QLabel
    plot: MetricsPlot

    def _set_running(self, running: bool) -> None:
        self.retrain_button.setEnabled(not running and self.session.project is not None)
        self.cancel_button.setEnabled(running)

    def _set_progress(self, done: int, total: int, text: str) -> None:
        self.progress_bar.setRange(0, max(0, total))
        self.progress_bar.setValue(min(done, total) if total else 0)
        self.progress_bar.setFormat(f"{text} %v/%m" if total else text)
        if self.job is not None:
            self.job.progress(done, total, f"Crack AL: {text.lower()}")

    def _on_event(self, ev: Any) -> None:
        if not self._alive:
            return
        if isinstance(ev, StepEvent):
            self.plot.add_losses(ev.step, ev.losses)
            self._set_progress(ev.step, ev.total_steps, "Training")
            total = ev.losses.get("total")
            if total is not None:
                self.status_label.setText(f"Training step {ev.step}/{ev.total_steps} — loss {total:.3f}")
        elif isinstance(ev, ProgressEvent):
            self._set_progress(ev.done, ev.total, _PHASES.get(ev.what, ev.what.capitalize() or "Working"))
        elif isinstance(ev, ValidationEvent):
            f1 = ev.metrics.get("f1")
            if f1 is not None:
                self.status_label.setText(f"Held-out F1 after step {ev.step}: {f1:.3f}")
        elif isinstance(ev, CheckpointEvent) and ev.metadata.get("final"):
            self.status_label.setText(f"Model {ev.metadata.get('model_version', '')} saved; scoring the queue…")
            if self.session.project is not None:
                self._show_models(self.session.project)
        elif isinstance(ev, MessageEvent):
            logger.info("%s", ev.text)
            self.status_label.setText(ev.text)
        elif isinstance(ev, RoundFinished):
            self.last_result = ev

    def _on_done(self, outcome: JobOutcome) -> None:
        if not self._alive:
            return
        _release_gpu_memory()
        self._set_running(False)
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("idle")
        project = self.session.project
        if isinstance(outcome.value, RoundFinished):
            self.last_result = outcome.value
            with notify.reporting("Show the new suggestions"):
                self._apply_round(outcome.value)
        elif outcome.error is not None:
            self._report_error(outcome.error)
        else:
            current = project.current_model() if project is not None else None
            kept = f"the model {current['version']} is kept" if current else "no model was saved"
            self.status_label.setText(f"Round cancelled: {kept}.")
            notify.info(f"Round cancelled: {kept}.")
        if project is not None:
            self._show_models(project)

    def _report_error(self, exc: BaseException) -> None:
        if is_out_of_memory(exc):
            msg = f"Retrain {OUT_OF_MEMORY_ADVICE}"
            logger.warning("out of memory during a round: %s", exc)
            notify.error(msg)
        elif notify.is_user_error(exc):
            msg = notify.report(exc, "Retrain")
        else:
            logger.error("the round failed", exc_info=(type(exc), exc, exc.__traceback__))
            msg = f"Retrain failed: {type(exc).__name__}: {exc}"
            notify.error(msg)
        self.status_label.setText(msg)

    def _notify_round(self, result: RoundFinished, top: str | None) -> None:
        """A notification when a round ends: the model, its held-out F1 against the previous
        model's, what opens next, and how many held-out images the figures rest on."""
        project = self.session.project
        models = project.models() if project is not None else []
        previous = next((m for m in reversed(models) if m.get("version") != result.model_version), None)
        notify.info(round_summary(result, previous, top))

    def _apply_round(self, result: RoundFinished) -> None:
        session = self.session
        project = session.project
        if project is None:
            return
        if result.checkpoint is not None:
            project.set_meta(LOSSES_META, {"version": result.model_version, "title": self.plot.loss_title,
                                           "curves": self.plot.loss_history()})
        session.queue_reranked()
        top = project.next_name()
        if result.checkpoint is not None:
            self._notify_round(result, top)
        if result.checkpoint is None:
            done = "No image is accepted yet: the queue is ranked by diversity (no model trained)."
        else:
            done = (f"Round {result.round_index} done: model {result.model_version} "
                    f"(trained {result.train_seconds:.0f} s, scored {result.score_seconds:.0f} s; "
                    f"threshold {result.threshold:.2f}).")
            if result.kept_previous:
                done += " It did worse on the held-out images than the previous model, so that model is kept."
        if top is None:
            self.status_label.setText(f"{done} No image waits in the queue.")
        elif session.current_name is None or not session.touched():
            session.load(top, force=True)  # saves the current mask first
            self.status_label.setText(f"{done} Opened {top}, the top of the new queue.")
        else:
            session.refresh_overlay()
            self.status_label.setText(f"{done} You were editing {session.current_name}: it stays open.")
            notify.info(f"Press {key_text(NEXT_KEY)} (Next suggestion) to open {top} with the new suggestion.")

    def _show_models(self, project: Any) -> None:
        models = project.models()
        self.plot.set_models(models)
        current = models[-1] if models else None
        if current is None:
            self.model_label.setText("Model: none yet — accept a few masks, then Retrain & suggest next.")
            return
        metrics = current.get("metrics") or {}
        parts = [f"Model: <b>{current['version']}</b> (round {current['round']}, {len(models)} trained)"]
        shown = [f"{label} {metrics[k]:.2f}" for k, label in METRIC_KEYS.items() if k in metrics]
        if shown:
            n = metrics.get("n_images")
            parts.append("held-out " + ", ".join(shown) + (f" on {int(n)} image(s)" if n else ""))
        if "threshold" in metrics:
            parts.append(f"threshold {metrics['threshold']:.2f}")
        self.model_label.setText(" — ".join(parts))
