"""Rendering a :class:`~.report_blocks.Report`: one self-contained HTML page, or Markdown.

Every text of a report is plain text, and much of it comes from the user (the
project folder, image names, model versions): HTML escapes it with
:func:`html.escape`, Markdown with :func:`md_escape`, so no name becomes markup.
"""

from __future__ import annotations

import base64
import html
import re
import unicodedata
from collections.abc import Mapping
from urllib.parse import quote

from .report_blocks import Report

__all__ = ["render_html", "render_markdown", "md_escape"]

#: Characters Markdown or inline HTML would interpret (``#`` and ``>`` start blocks too).
_MD_INLINE = re.compile(r"([\\`*_\[\]<>|~&#])")
#: What else makes a line a list item or a rule: ``-``, ``+``, ``=``, or ``1.`` / ``1)``.
_MD_BLOCK_START = re.compile(r"^(\s*)([-+=])|^(\s*\d+)([.)])")

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


def md_escape(text: str, *, block: bool = False) -> str:
    """Plain text as Markdown that shows it literally, on one line.

    Parameters
    ----------
    text : str
        Any text (an image name, a model version...).
    block : bool
        The text starts a block (a paragraph or heading): also escape what would
        make it a heading, quote, list item or rule (``#``, ``>``, ``-``, ``1.``).

    Returns
    -------
    str
        Control characters and line breaks replaced by spaces; ``\\ ` * _ [ ] < > | ~ & #``
        backslash-escaped.
    """
    one_line = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c
                       for c in text)
    escaped = _MD_INLINE.sub(r"\\\1", one_line)
    if not block:
        return escaped
    return _MD_BLOCK_START.sub(lambda m: f"{m[1] or m[3] or ''}\\{m[2] or m[4]}", escaped, count=1)


def render_markdown(report: Report, image_paths: Mapping[str, str]) -> str:
    """Markdown text; ``image_paths`` maps a plot's ``name`` to its (relative) PNG path."""
    lines = [f"# {md_escape(report.title)}", ""]
    for b in report.blocks:
        if b.kind == "h2":
            lines += [f"## {md_escape(b.text)}", ""]
        elif b.kind == "p":
            lines += [md_escape(b.text, block=True), ""]
        elif b.kind == "table":
            lines.append("| " + " | ".join(md_escape(h) for h in b.header) + " |")
            lines.append("|" + "|".join("---" for _ in b.header) + "|")
            lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in b.rows]
            lines.append("")
        elif b.kind == "img":
            lines += [f"![{md_escape(b.text)}]({quote(image_paths[b.name], safe='/')})", ""]
    return "\n".join(lines)
