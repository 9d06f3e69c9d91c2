"""Plain-text and markdown tables for command output."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def print_table(header: Sequence[str], rows: Sequence[Sequence[object]], markdown: bool = False) -> None:
    """Write ``rows`` under ``header`` to stdout, aligned, or as a markdown table."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    if markdown:
        out = ["| " + " | ".join(cells[0]) + " |", "|" + "|".join("---" for _ in header) + "|"]
        out += ["| " + " | ".join(row) + " |" for row in cells[1:]]
    else:
        widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
        out = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    sys.stdout.write("\n".join(out) + "\n")
