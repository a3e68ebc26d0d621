"""Rendering a :class:`~.report_blocks.Report`: one self-contained HTML page, or Markdown."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping

from .report_blocks import Report

__all__ = ["render_html", "render_markdown"]

_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:960px;
margin:2em auto;padding:0 1em;color:#222}h1{font-size:1.6em}h2{margin-top:1.8em;
border-bottom:1px solid #ddd;padding-bottom:.2em}table{border-collapse:collapse;margin:.8em 0}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#f3f3f3}
td:not(:first-child){text-align:right}img{max-width:100%;display:block;margin:.8em 0}"""


def render_html(report: Report) -> str:
    """One self-contained HTML page: inline CSS, plots as base64 PNG data URIs."""
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{e(report.title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
             f"<h1>{e(report.title)}</h1>"]
    for b in report.blocks:
        if b.kind == "h2":
            parts.append(f"<h2>{e(b.text)}</h2>")
        elif b.kind == "p":
            parts.append(f"<p>{e(b.text)}</p>")
        elif b.kind == "table":
            head = "".join(f"<th>{e(h)}</th>" for h in b.header)
            body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>"
                           for row in b.rows)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif b.kind == "img":
            data = base64.b64encode(b.png).decode("ascii")
            parts.append(f'<img alt="{e(b.text)}" src="data:image/png;base64,{data}">')
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report, image_paths: Mapping[str, str]) -> str:
    """Markdown text; ``image_paths`` maps a plot's ``name`` to its (relative) PNG path."""
    lines = [f"# {report.title}", ""]
    for b in report.blocks:
        if b.kind == "h2":
            lines += [f"## {b.text}", ""]
        elif b.kind == "p":
            lines += [b.text, ""]
        elif b.kind == "table":
            lines.append("| " + " | ".join(_md_cell(h) for h in b.header) + " |")
            lines.append("|" + "|".join("---" for _ in b.header) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            lines.append("")
        elif b.kind == "img":
            lines += [f"![{b.text}]({image_paths[b.name]})", ""]
    return "\n".join(lines)
