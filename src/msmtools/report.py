"""Small text tables for human-facing summaries on stderr."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Aligned plain-text table; numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(_isnum(r[i]) for r in rows if r[i] is not None) and rows for i in range(len(headers))]

    def fmt(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if numeric[i] else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    lines = [fmt(cells[0]), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in cells[1:]]
    return "\n".join(lines)


def _isnum(x: Any) -> bool:
    return isinstance(x, (int, float)) or (isinstance(x, str) and x.replace(".", "", 1).replace("x", "").lstrip("-+").isdigit())


def length_report(records: Sequence[dict], ref: dict | None) -> str:
    """Tokens, words and rule ids per spec, with the ratio to a reference spec when given."""
    headers = ["spec", "tokens", "words", "sections", "rule ids"] + ([f"/ {ref['spec_id']}"] if ref else [])
    rows = []
    for r in records:
        row = [r["spec_id"], r["tokens"], r["words"], len(r["sections"]), " ".join(r["rule_ids"][:8]) + (" ..." if len(r["rule_ids"]) > 8 else "")]
        if ref:
            row.append(f"{r['tokens'] / ref['tokens']:.2f}x" if ref["tokens"] else "")
        rows.append(row)
    return table(headers, rows)
