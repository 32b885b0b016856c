"""`msm compare`'s library: which spec variant lowers misalignment, by how much, and how sure we are.

    scan (polars: files -> counts per group) -> analyze (stats: rates, contrasts) -> render / plot

`compare()` is the in-process entry point; the CLI in msmtools.commands.compare is a thin layer over it.
"""

from __future__ import annotations

from .analyze import Options, Result, analyze, check_by
from .scan import scan, sources


def compare(paths: list[str], *, labels: dict[str, str] | None = None, by: list[str] | None = None,
            tags: list[str] | None = None, options: Options | None = None) -> Result:
    """Rates and contrasts for rollout/tagged JSONL files.

    `labels` maps a file to the variant name for all its records; `by` splits groups further by record
    fields; `tags` picks tag metrics (None: every tag found, []: none).
    """
    by = list(by or [])
    check_by(by)
    with sources(list(paths), dict(labels or {})) as srcs:
        counts = scan(srcs, by, tags)
    return analyze(counts, options or Options())


__all__ = ["Options", "Result", "compare"]
