"""The project report: progress, effort, learning curves, held-out metrics, crack statistics.

:func:`build_report` reads a project into a :class:`Report`, a list of blocks
(headings, paragraphs, tables, plots); :func:`render_html` makes one
self-contained HTML file of it (CSS inline, plots as ``data:image/png;base64``
URIs, no external resource), :func:`render_markdown` a Markdown text whose plots
are PNG files beside it. :func:`write_report` does both steps and writes the
files atomically. A project without annotations or models gives a valid report
whose sections say in a sentence why there is nothing to plot yet.

The parts: :mod:`.report_blocks` (the document), :mod:`.report_sections` (reading
the project, :func:`build_report`) and :mod:`.report_render` (HTML and Markdown);
their public names are importable from here too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io.atomic import atomic_write_bytes
from ..errors import ExportError
from .report_blocks import Block, Report
from .report_render import render_html, render_markdown
from .report_sections import CURVE_METRICS, build_report

__all__ = ["REPORT_FORMATS", "CURVE_METRICS", "Block", "Report", "ReportResult",
           "report_format_for", "build_report", "render_html", "render_markdown", "write_report"]

log = logging.getLogger(__name__)

#: Suffix -> format.
REPORT_FORMATS = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md"}


@dataclass(frozen=True)
class ReportResult:
    """What :func:`write_report` wrote: the report, its format, every file, the report numbers."""

    path: Path
    fmt: str
    files: tuple[Path, ...]
    report: Report = field(repr=False)


def report_format_for(path: str | Path) -> str:
    """``"html"`` or ``"md"`` from the suffix of ``path``.

    Raises
    ------
    ExportError
        Any other suffix.
    """
    fmt = REPORT_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ExportError(path, "unknown report format; the file name must end in .html or .md")
    return fmt



def write_report(project: Any, out: str | Path, *, force: bool = False, min_area: int = 5,
                 progress: Callable[[int, int], None] | None = None) -> ReportResult:
    """Build the report of ``project`` and write it to ``out`` (``.html`` or ``.md``), atomically.

    An HTML report is one self-contained file. A Markdown report's plots are written
    as ``STEM_files/NAME.png`` beside it.

    Raises
    ------
    ExportError
        Unknown suffix, missing folder, or files in the way (unless ``force``).
    """
    out = Path(out)
    fmt = report_format_for(out)
    if out.is_dir():
        raise ExportError(out, "is a folder; give the report's file name")
    if not out.parent.is_dir():
        raise ExportError(out.parent, "folder does not exist")
    if out.exists() and not force:  # before the (slow) measurements
        raise ExportError(out, f"would overwrite {out.name}; use --force (force=True) to replace")
    report = build_report(project, min_area=min_area, progress=progress)
    assets = out.with_name(out.stem + "_files")
    imgs = {b.name: b for b in report.blocks if b.kind == "img"}
    targets = [out] + ([assets / f"{n}.png" for n in imgs] if fmt == "md" else [])
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise ExportError(out, f"would overwrite {', '.join(p.name for p in existing)}; "
                               "use --force (force=True) to replace")
    files: list[Path] = []
    if fmt == "html":
        text = render_html(report)
    else:
        if imgs:
            assets.mkdir(exist_ok=True)
        for name, b in imgs.items():
            files.append(atomic_write_bytes(assets / f"{name}.png", b.png, error=ExportError))
        text = render_markdown(report, {n: f"{assets.name}/{n}.png" for n in imgs})
    atomic_write_bytes(out, text.encode("utf-8"), error=ExportError)
    log.info("wrote %s report %s", fmt, out)
    return ReportResult(path=out, fmt=fmt, files=(out, *files), report=report)
