"""Plain-text tables as kubectl prints them: every column as wide as its widest cell, three
spaces between columns, no column ever cut but the last, which is cut with `…` to fit the
width when one is known (`COLUMNS`, or the terminal's), and never below its header's width."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence

GAP = "   "
ELLIPSIS = "…"


def terminal_width() -> int | None:
    """`COLUMNS` when set to a number, else the terminal's width when stdout is one, else
    None (output to a pipe or file is never cut)."""
    given = os.environ.get("COLUMNS", "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def widths(rows: Sequence[Sequence[str]]) -> list[int]:
    """The width of each column: its widest cell (headers are a row like the others)."""
    return [max(len(cell) for cell in col) for col in zip(*rows, strict=True)]


def line(cells: Sequence[str], sizes: Sequence[int], width: int | None, floor: int = 1) -> str:
    """One row: every cell but the last padded to `sizes`; the last cut to fit `width`, to no
    fewer than `floor` characters."""
    *first, last = cells
    head = "".join(c.ljust(n) + GAP for c, n in zip(first, sizes, strict=True))
    room = max(width - len(head), floor, 1) if width is not None else len(last)
    if len(last) > room:
        last = last[: room - 1] + ELLIPSIS
    return (head + last).rstrip()


def render(rows: Sequence[Sequence[str]], width: int | None) -> list[str]:
    """The lines of a table whose first row is the header. The last column is never padded,
    only cut, and never to fewer characters than its header has."""
    if not rows:
        return []
    sizes = widths([r[:-1] for r in rows])
    return [line(r, sizes, width, len(rows[0][-1])) for r in rows]
