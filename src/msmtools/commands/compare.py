"""`msm compare`: rollout or tagged JSONL -> harmful and tag rates per variant, contrasts, a plot."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..cli_options import shared


@shared("by", "format", "output", "quiet")
def compare(
    files: Annotated[list[str] | None, typer.Argument(help="Rollout or tagged JSONL files ('-' = stdin); files named in --variant count too.", metavar="FILE...", show_default=False)] = None,
    variant: Annotated[list[str] | None, typer.Option("--variant", "-l", help="NAME=FILE: every record of FILE belongs to variant NAME (its records' own 'label' field is ignored). Repeatable. Was --label (which now names a variant where a model is trained or evaluated).", metavar="NAME=FILE", show_default=False)] = None,
    baseline: Annotated[str | None, typer.Option("--baseline", help="Contrast every variant with this one only (default: every pair, in order of first appearance).", metavar="NAME")] = None,
    interval: Annotated[str, typer.Option("--interval", help="Interval for single rates: wilson or clopper-pearson (exact, conservative). Differences use Newcombe's score interval (its paired form for value-eval contrasts).", metavar="wilson|clopper-pearson")] = "wilson",
    tags: Annotated[str | None, typer.Option("--tags", help="Tag rates to report: comma-separated names, or 'none' (default: every tag found in tagged inputs).", metavar="TAG,...")] = None,
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="Replicates of the seed-clustered bootstrap (used where a group has several training seeds; at least 100).", metavar="N")] = 2000,
    bootstrap_seed: Annotated[int, typer.Option("--bootstrap-seed", help="Random seed of the bootstrap: the same seed gives the same intervals.", metavar="SEED")] = 0,
    plot: Annotated[str | None, typer.Option("--plot", help="Also draw a chart to this file (.png, .pdf or .svg): grouped bars with interval whiskers, or rows of dots and whiskers beyond 10 splits.", metavar="FILE.png")] = None,
    plot_metric: Annotated[str, typer.Option("--plot-metric", help="What --plot shows: harmful, or a tag name.", metavar="METRIC")] = "harmful",
    gold: Annotated[str | None, typer.Option("--gold", help="Hand labels (msm label's records): add judge-corrected, prediction-powered rates per arm and measure, and their contrasts.", metavar="LABELS.jsonl")] = None,
    judge_accuracy: Annotated[str | None, typer.Option("--judge-accuracy", help="A judge's validation records (am-eval --check-grader -o, tag-reasoning --validate --predictions): add Rogan-Gladen corrected rates, assuming the judge errs alike on every arm.", metavar="FILE")] = None,
    *,
    by: list[str],
    format: str | None,
    output: str,
    quiet: bool,
) -> None:
    """Compare spec variants: harmful rate per variant (and split) with intervals, pairwise contrasts with
    exact tests, Holm correction and detectable differences, tag rates, and a plot. See docs/statistics.md."""
    from ..errors import MsmError

    labels: dict[str, str] = {}
    for item in variant or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise MsmError(f"--variant {item!r}: expected NAME=FILE")
        if path in labels:
            raise MsmError(f"--variant: {path} is named twice ({labels[path]!r} and {name!r})")
        labels[path] = name
    paths = list(files or [])
    if not paths and not labels:
        raise MsmError("no input: give rollout or tagged JSONL files (or '-' for stdin)")
    from .. import stats
    from ..compare import Options, render
    from ..compare import compare as run
    from ..compare.plot import FILE_TYPES
    from ..compare.plot import plot as draw

    from .. import outputs

    outputs.check([("-o", output), ("--plot", plot)], [("", p) for p in [*paths, *labels, *(x for x in (gold, judge_accuracy) if x)]])
    from .. import formats

    fmt = formats.choose(format, output, render.FORMATS, "compare")
    if plot is not None and plot.rsplit(".", 1)[-1].lower() not in FILE_TYPES:
        raise MsmError(f"--plot {plot}: expected a file ending in {', '.join('.' + t for t in FILE_TYPES)}")
    if interval not in stats.INTERVALS:
        raise MsmError(f"--interval {interval}: expected one of {', '.join(stats.INTERVALS)}")
    if bootstrap < 100:
        raise MsmError(f"--bootstrap {bootstrap}: use at least 100 replicates (percentiles of fewer are noise)")
    tag_list = None if tags is None else [] if tags.strip() == "none" else [t.strip() for t in tags.split(",") if t.strip()]
    options = Options(interval=interval, baseline=baseline, bootstrap=bootstrap, bootstrap_seed=bootstrap_seed)
    value_files, am_files = _by_kind([*paths, *(p for p in labels if p not in paths)])
    res = vres = None
    if am_files:
        res = run([p for p in paths if p in am_files], labels={p: n for p, n in labels.items() if p in am_files},
                  by=list(by or []), tags=tag_list, options=options)
    if value_files:
        from ..compare import values

        rows, dropped = values.read([(p, p, labels.get(p)) for p in value_files], list(by or []))
        vres = values.analyze(rows, list(by or []), baseline=baseline, alpha=options.alpha, interval=interval,
                              bootstrap=bootstrap, bootstrap_seed=bootstrap_seed, dropped=dropped)
    if plot is not None:
        if res is not None and (vres is None or plot_metric != "choice_aligned"):
            draw(res, plot, plot_metric)
        elif vres is not None and vres.rates:
            draw(values.as_result(vres, options), plot, "choice_aligned")
    extra = None
    if gold or judge_accuracy:
        from ..compare import gold as goldmod

        extra = goldmod.analyze([*paths, *(p for p in labels if p not in paths)], labels_by_path=labels, gold=gold,
                                accuracy=judge_accuracy, baseline=baseline, alpha=options.alpha, reps=bootstrap,
                                seed=bootstrap_seed)
    render.emit_all(res, vres, fmt, output, extra)
    dropped = (res.duplicates_dropped if res else 0) + (vres.dropped if vres else 0)
    if dropped:  # said even with -q: the counts differ from the line counts
        print(f"msm: note: {dropped} record(s) repeat an id seen before (same result): each id is counted once",
              file=sys.stderr)
    if not quiet and res is not None:
        for src in res.sources:
            if src.harmful_null:
                print(f"msm: note: {src.name}: {src.harmful_null} of {src.records} records have harmful=null "
                      "(the grader could not decide): excluded from n, counted in n_null", file=sys.stderr)
            elif not src.records:
                print(f"msm: note: {src.name}: no records", file=sys.stderr)


def _by_kind(paths: list[str]) -> tuple[list[str], list[str]]:
    """(value-eval files, rollout/tagged files), by the kind of each file's first record; stdin counts as rollouts."""
    import orjson

    values, other = [], []
    for p in paths:
        kind = None
        if p != "-":
            try:
                with open(p, "rb") as f:
                    for line in f:
                        if line.strip():
                            kind = orjson.loads(line).get("kind")
                            break
            except (OSError, orjson.JSONDecodeError, AttributeError):
                kind = None  # the rollout reader names the problem
        (values if kind == "value" else other).append(p)
    return values, other


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
