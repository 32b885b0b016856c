"""One `msm compare` run: inputs checked before any reading, every declared score compared, one output.

The command line is a thin layer over `run`; notebooks call `msmtools.compare.compare` for the records.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from .. import formats, outputs, stats
from ..errors import MsmError


@dataclass
class Request:
    """What to compare and where the report goes."""

    files: list[str]
    variants: list[str]  # NAME=FILE
    by: list[str]
    scores: list[str] | None = None
    baseline: str | None = None
    interval: str = "wilson"
    bootstrap: int = 2000
    bootstrap_seed: int = 0
    output: str = "-"
    format: str | None = None
    plot: str | None = None
    plot_score: str | None = None
    across: str | None = None
    gold: str | None = None
    judge_accuracy: str | None = None
    quiet: bool = False


def variant_files(items: list[str]) -> dict[str, str]:
    """`NAME=FILE` arguments -> {file: name}."""
    labels: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise MsmError(f"--variant {item!r}: expected NAME=FILE")
        if path in labels:
            raise MsmError(f"--variant: {path} is named twice ({labels[path]!r} and {name!r})")
        labels[path] = name
    return labels


def run(req: Request) -> None:
    from . import Options, compare, render
    from .plot import FILE_TYPES, plot

    labels = variant_files(req.variants)
    paths = list(req.files)
    if not paths and not labels:
        raise MsmError("no input: give scored JSONL files (rollouts, tagged or value records; '-' for stdin)")
    inputs = [*paths, *(p for p in labels if p not in paths)]
    outputs.check([("-o", req.output), ("--plot", req.plot)],
                  [("", p) for p in [*inputs, *(x for x in (req.gold, req.judge_accuracy) if x)]])
    fmt = formats.choose(req.format, req.output, render.FORMATS, "compare")
    if req.plot is not None and req.plot.rsplit(".", 1)[-1].lower() not in FILE_TYPES:
        raise MsmError(f"--plot {req.plot}: expected a file ending in {', '.join('.' + t for t in FILE_TYPES)}")
    if req.interval not in stats.INTERVALS:
        raise MsmError(f"--interval {req.interval}: expected one of {', '.join(stats.INTERVALS)}")
    if req.bootstrap < 100:
        raise MsmError(f"--bootstrap {req.bootstrap}: use at least 100 replicates (percentiles of fewer are noise)")
    options = Options(interval=req.interval, baseline=req.baseline, bootstrap=req.bootstrap,
                      bootstrap_seed=req.bootstrap_seed)
    res = compare(paths, labels=labels, by=req.by, scores=req.scores, options=options, across=req.across)
    if req.plot is not None:
        plot(res, req.plot, req.plot_score)
    extra = None
    if req.gold or req.judge_accuracy:
        from . import gold

        extra = gold.analyze(inputs, labels_by_path=labels, gold=req.gold, accuracy=req.judge_accuracy,
                             baseline=req.baseline, alpha=options.alpha, reps=req.bootstrap, seed=req.bootstrap_seed)
    render.emit(res, fmt, req.output, extra)
    if res.duplicates_dropped:  # said even with -q: the counts differ from the line counts
        print(f"msm: note: {res.duplicates_dropped} record(s) repeat an id seen before (same result): each id is "
              "counted once", file=sys.stderr)
    if req.quiet:
        return
    for src in res.sources:
        if src.upgraded:
            print(f"msm: note: {src.name}: {src.upgraded} record(s) from before scores were upgraded on reading",
                  file=sys.stderr)
        for name, n in src.nulls.items():
            if n:
                print(f"msm: note: {src.name}: {n} of {src.records} records have {name} null (undecided or not "
                      "measured): excluded from n, counted in n_null", file=sys.stderr)
