"""The report document: a title and a list of blocks (headings, paragraphs, tables, plots).

:func:`~.report_sections.build_report` fills a :class:`Report` from a project;
:mod:`.report_render` turns it into HTML or Markdown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Block", "Report"]


@dataclass(frozen=True)
class Block:
    """One element of a report.

    ``kind`` is ``"h2"`` / ``"p"`` (``text``), ``"table"`` (``header`` and ``rows`` of
    strings) or ``"img"`` (``name`` of the PNG, ``text`` = alt text, ``png`` bytes).
    """

    kind: str
    text: str = ""
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    name: str = ""
    png: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Report:
    """A project report: a title, blocks, and the key numbers (for the CLI and tests)."""

    title: str
    blocks: tuple[Block, ...]
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def n_plots(self) -> int:
        """Number of plots."""
        return sum(b.kind == "img" for b in self.blocks)
