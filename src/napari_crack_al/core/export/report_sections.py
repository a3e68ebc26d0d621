"""Reading a project into a report: progress, effort, learning curves, crack statistics.

:func:`build_report` gathers the numbers section by section (images per status,
annotation effort, models and held-out metrics, cracks in the accepted masks) and
returns them as the :class:`~.report_blocks.Report` blocks, plots included.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from . import plots
from .measurements import ORIENTATIONS, measure_cracks
from .report_blocks import Block, Report

__all__ = ["CURVE_METRICS", "build_report"]

log = logging.getLogger(__name__)

#: Held-out metrics shown in the learning curves and the rounds table (key, label).
CURVE_METRICS = (("f1", "F1"), ("crack_iou", "IoU"), ("f1_tol2", "F1 (2 px tolerance)"))
_TABLE_METRICS = CURVE_METRICS + (("precision", "precision"), ("recall", "recall"))
_LABELLED_KEYS = ("n_labeled", "n_labelled", "n_train", "n_train_images", "labeled_images")


# ---------------------------------------------------------------------------- formatting
def _num(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not math.isfinite(f):
        return "-"
    if f == int(f) and abs(f) < 1e12:
        return str(int(f))
    if abs(f) >= 1e4:
        return f"{f:.0f}"
    return f"{f:.{digits + 1}g}"


def _duration(seconds: float) -> str:
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(round(s % 60)):02d} s"
    return f"{int(s // 3600)} h {int(round((s % 3600) / 60)):02d} min"


def _date(ts: float) -> str:
    return _dt.datetime.fromtimestamp(float(ts), tz=_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _stats(values: Sequence[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    return {"n": int(a.size), "mean": float(a.mean()), "median": float(np.median(a)),
            "p10": float(np.percentile(a, 10)), "p90": float(np.percentile(a, 90)),
            "min": float(a.min()), "max": float(a.max())}


# ---------------------------------------------------------------------------- sections
def _status_section(project: Any, records: list, numbers: dict) -> list[Block]:
    counts = project.counts()
    total = sum(counts.values())
    numbers["counts"] = dict(counts)
    numbers["n_images"] = total
    out = [Block("h2", "Images"),
           Block("table", header=("status", "images"),
                 rows=tuple((k, str(v)) for k, v in counts.items()) + (("total", str(total)),))]
    if total:
        out.append(Block("img", "Images per status", name="status",
                         png=plots.bar_png(counts, ylabel="images", title="Images per status")))
    else:
        out.append(Block("p", "The project has no images yet."))
    pixel = project.pixel_size_mm
    out.append(Block("p", f"Pixel size: {_num(pixel)} mm." if pixel else
                     "Pixel size: unknown (crack sizes are given in pixels; set the project's "
                     "pixel size to get millimetres)."))
    return out


def _effort_section(records: list, numbers: dict) -> list[Block]:
    out = [Block("h2", "Annotation effort")]
    annotated = [r for r in records if r.status.value == "annotated"]
    total_s = float(sum(r.annotation_seconds for r in records))
    numbers["annotation_seconds_total"] = total_s
    if not annotated:
        out.append(Block("p", "No image has been annotated yet, so there are no annotation times "
                              "or edit fractions to show."))
        return out
    timed = [r.annotation_seconds for r in annotated if r.annotation_seconds > 0]
    rows = [("annotated images", str(len(annotated))),
            ("total annotation time", _duration(total_s))]
    if timed:
        st = _stats(timed)
        numbers["annotation_seconds_median"] = st["median"]
        rows += [("median time per image", _duration(st["median"])),
                 ("mean time per image", _duration(st["mean"])),
                 ("images with a recorded time", str(len(timed)))]
    fractions = [r.edit_fraction for r in annotated if r.edit_fraction is not None]
    if fractions:
        st = _stats(fractions)
        numbers["edit_fraction_median"] = st["median"]
        rows += [("edit fraction: median", _num(st["median"])),
                 ("edit fraction: mean", _num(st["mean"])),
                 ("edit fraction: 10th-90th percentile", f"{_num(st['p10'])} - {_num(st['p90'])}"),
                 ("accepted with < 5 % edits", str(sum(f < 0.05 for f in fractions)))]
    out.append(Block("table", header=("quantity", "value"), rows=tuple(rows)))
    out.append(Block("p", "The edit fraction is the share of pixels the annotator changed, "
                          "relative to the crack pixels of the accepted mask: 0 = suggestion "
                          "accepted as it was, 1 = drawn from scratch."))
    by_source: dict[str, list] = {}
    for r in annotated:
        by_source.setdefault(r.suggestion_model_version or "(from scratch)", []).append(r)
    trows = []
    for source, recs in sorted(by_source.items()):
        fr = [r.edit_fraction for r in recs if r.edit_fraction is not None]
        ts = [r.annotation_seconds for r in recs if r.annotation_seconds > 0]
        trows.append((source, str(len(recs)), _num(np.median(fr)) if fr else "-",
                      _duration(float(np.median(ts))) if ts else "-"))
    out.append(Block("table", header=("started from", "images", "median edit fraction",
                                      "median time"), rows=tuple(trows)))
    if fractions:
        out.append(Block("img", "Histogram of edit fractions", name="edit_fraction",
                         png=plots.histogram_png(fractions, xlabel="edit fraction",
                                                 title="Edit fraction of accepted masks")))
    if not timed:
        out.append(Block("p", "No annotation time was recorded (masks imported from files)."))
    return out


def _labelled_count(model: Mapping[str, Any]) -> int | None:
    metrics = model.get("metrics") or {}
    for key in _LABELLED_KEYS[:-1]:
        if key in metrics:
            return int(metrics[key])
    path = Path(model.get("path", ""))
    if not path.is_file():
        return None
    try:  # only the metadata is needed: memory-map the tensors instead of reading them
        import torch

        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        labelled = obj["metadata"]["labeled_images"]
        return len(labelled) if isinstance(labelled, (list, tuple)) else int(labelled)
    except Exception:  # noqa: BLE001 - an unreadable model only loses this column
        log.info("%s: no labelled-image count in the checkpoint metadata", path)
        return None


def _model_section(project: Any, numbers: dict) -> list[Block]:
    out = [Block("h2", "Models and learning curves")]
    models = project.models()
    numbers["n_models"] = len(models)
    if not models:
        out.append(Block("p", "No model has been trained yet: learning curves and held-out "
                              "metrics appear here after the first training round."))
        return out
    labelled = [_labelled_count(m) for m in models]
    rows = []
    for m, n in zip(models, labelled):
        met = m.get("metrics") or {}
        rows.append((str(m["round"]), str(m["version"]), _date(m["created_at"]),
                     _num(n), _num(met.get("n_images")))
                    + tuple(_num(met.get(k)) for k, _ in _TABLE_METRICS))
    out.append(Block("table", header=("round", "version", "trained", "labelled images",
                                      "held-out images") + tuple(lbl for _, lbl in _TABLE_METRICS),
                     rows=tuple(rows)))
    series = {lbl: [(m.get("metrics") or {}).get(k) for m in models] for k, lbl in CURVE_METRICS}
    series = {k: v for k, v in series.items() if any(x is not None for x in v)}
    if series:
        out.append(Block("img", "Held-out metrics per round", name="curve_round",
                         png=plots.line_plot_png([m["round"] for m in models], series,
                                                 xlabel="round", ylabel="held-out score",
                                                 title="Learning curve", ylim=(0.0, 1.0))))
        known = [i for i, n in enumerate(labelled) if n is not None]
        if known:
            png = plots.line_plot_png([labelled[i] for i in known],
                                      {k: [v[i] for i in known] for k, v in series.items()},
                                      xlabel="labelled images", ylabel="held-out score",
                                      title="Learning curve", ylim=(0.0, 1.0))
            out.append(Block("img", "Held-out metrics against labelled images",
                             name="curve_labelled", png=png))
    else:
        out.append(Block("p", "The registered models carry no held-out metrics (no image was held "
                              "out for validation), so there is no learning curve to plot."))
    latest = models[-1]
    met = latest.get("metrics") or {}
    numbers["latest_metrics"] = dict(met)
    out.append(Block("h2", f"Held-out metrics of the latest model ({latest['version']})"))
    if met:
        out.append(Block("table", header=("metric", "value"),
                         rows=tuple((k, _num(v, 4)) for k, v in sorted(met.items()))))
    else:
        out.append(Block("p", "The latest model has no held-out metrics."))
    held = (project.get_meta("heldout", kind=list)
            or project.get_meta("heldout_auto", kind=list) or [])
    if isinstance(held, list) and held:
        more = f" and {len(held) - 10} more" if len(held) > 10 else ""
        shown = ", ".join(map(str, held[:10])) + more
        out.append(Block("p", f"Held-out images ({len(held)}): {shown}."))
    return out


def _crack_section(project: Any, records: list, numbers: dict, min_area: int,
                   progress: Callable[[int, int], None] | None) -> list[Block]:
    out = [Block("h2", "Cracks in the accepted masks")]
    names = [r.name for r in records if r.status.value == "annotated"]
    if not names:
        out.append(Block("p", "No accepted mask yet, so there are no cracks to measure."))
        return out
    size = project.pixel_size_mm
    cracks, with_cracks, unreadable = [], 0, []
    for i, name in enumerate(names):
        if progress is not None:
            progress(i, len(names))
        try:
            mask = project.read_annotation(name)
        except InputError as exc:
            unreadable.append(f"{name} ({exc.problem})")
            continue
        if mask is None:
            unreadable.append(f"{name} (mask file missing)")
            continue
        found = measure_cracks(mask, pixel_size_mm=size, min_area=min_area)
        with_cracks += bool(found)
        cracks.extend(found)
    if progress is not None:
        progress(len(names), len(names))
    unit = "mm" if size else "px"
    lengths = [c.length_mm if size else c.length_px for c in cracks]
    widths = [c.mean_width_mm if size else c.mean_width_px for c in cracks]
    total_len = float(sum(lengths))
    numbers.update(n_cracks=len(cracks), total_length=total_len, length_unit=unit)
    rows = [("masks measured", str(len(names) - len(unreadable))),
            ("masks with cracks", str(with_cracks)),
            ("cracks", str(len(cracks))),
            (f"total length ({unit})", _num(total_len, 4))]
    if cracks:
        st = _stats(widths)
        mean_w = float(np.average(widths, weights=lengths)) if total_len > 0 else st["mean"]
        rows += [(f"mean crack width, length-weighted ({unit})", _num(mean_w)),
                 (f"crack width: median ({unit})", _num(st["median"])),
                 (f"crack width: 90th percentile ({unit})", _num(st["p90"])),
                 (f"largest width ({unit})",
                  _num(max(c.max_width_mm if size else c.max_width_px for c in cracks)))]
    out.append(Block("table", header=("quantity", "value"), rows=tuple(rows)))
    if unreadable:
        out.append(Block("p", "Not measured: " + "; ".join(unreadable) + "."))
    if not cracks:
        out.append(Block("p", f"The accepted masks hold no crack of at least {min_area} pixels."))
        return out
    counts = {o: 0 for o in ORIENTATIONS}
    for c in cracks:
        counts[c.orientation] += 1
    numbers["orientation_counts"] = counts
    length_of = {o: 0.0 for o in ORIENTATIONS}
    for length, c in zip(lengths, cracks):
        length_of[c.orientation] += length
    out.append(Block("table", header=("orientation", "cracks", f"length ({unit})"),
                     rows=tuple((o, str(counts[o]), _num(length_of[o], 4)) for o in ORIENTATIONS)))
    out.append(Block("img", "Cracks per orientation", name="orientation",
                     png=plots.bar_png(counts, ylabel="cracks", title="Cracks per orientation")))
    out.append(Block("img", "Distribution of crack widths", name="width",
                     png=plots.histogram_png(widths, xlabel=f"mean crack width ({unit})",
                                             title="Crack width distribution")))
    out.append(Block("p", "Orientation is measured against the image axes: longitudinal = along "
                          "the image rows (driving direction), transverse = across them."))
    return out


def build_report(project: Any, *, min_area: int = 5,
                 progress: Callable[[int, int], None] | None = None) -> Report:
    """Read a project into a :class:`Report`.

    Parameters
    ----------
    project : Project
        An open project.
    min_area : int
        Smallest crack measured, in pixels.
    progress : callable or None
        ``progress(done, total)`` while the accepted masks are measured.

    Returns
    -------
    Report
        ``numbers`` holds ``counts``, ``n_images``, ``annotation_seconds_total``,
        ``n_models``, ``n_cracks``, ``total_length`` (and more when available).
    """
    from ... import __version__

    records = project.records()
    numbers: dict[str, Any] = {}
    title = f"Crack annotation report: {project.root.resolve().name}"
    blocks = [Block("p", f"Project folder {project.root.resolve()}; generated "
                         f"{_date(_dt.datetime.now(_dt.timezone.utc).timestamp())} by "
                         f"napari-crack-al {__version__}.")]
    blocks += _status_section(project, records, numbers)
    blocks += _effort_section(records, numbers)
    blocks += _model_section(project, numbers)
    blocks += _crack_section(project, records, numbers, min_area, progress)
    return Report(title=title, blocks=tuple(blocks), numbers=numbers)
