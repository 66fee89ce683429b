"""Markdown tables: what the CLI prints and the Dagster UI shows as asset and check metadata."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def markdown_table(header: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-style table; each cell is `str()` of its value, so format numbers beforehand.

    A `|` inside a cell is escaped: quarantine reasons quote what a client sent, which may hold one.
    """
    lines = [_row(header), "|" + "---|" * len(header)]
    lines += [_row(row) for row in rows]
    return "\n".join(lines)


def _row(cells: Iterable[object]) -> str:
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"
