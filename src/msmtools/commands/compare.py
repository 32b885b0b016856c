"""`msm compare`: scored JSONL (rollouts, tagged, value records) -> rates and means per variant, contrasts, a plot."""

from __future__ import annotations

from typing import Annotated

import typer

from ..cli_options import shared


@shared("by", "format", "output", "quiet")
def compare(
    files: Annotated[list[str] | None, typer.Argument(help="Scored JSONL files: rollouts, tagged or value records, mixed as you like ('-' = stdin); files named in --variant count too.", metavar="FILE...", show_default=False)] = None,
    variant: Annotated[list[str] | None, typer.Option("--variant", "-l", help="NAME=FILE: every record of FILE belongs to variant NAME (its records' own 'label' field is ignored). Repeatable. Was --label (which now names a variant where a model is trained or evaluated).", metavar="NAME=FILE", show_default=False)] = None,
    baseline: Annotated[str | None, typer.Option("--baseline", help="Contrast every variant with this one only (default: every pair, in order of first appearance).", metavar="NAME")] = None,
    interval: Annotated[str, typer.Option("--interval", help="Interval for single rates: wilson or clopper-pearson (exact, conservative). Differences use Newcombe's score interval (its paired form for value-eval contrasts).", metavar="wilson|clopper-pearson")] = "wilson",
    scores: Annotated[str | None, typer.Option("--scores", help="Scores to report, comma-separated (default: every score the inputs declare: harmful, gate, each tag, choice_aligned, ...).", metavar="NAME,...")] = None,
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="Replicates of the seed-clustered bootstrap (used where a group has several training seeds; at least 100).", metavar="N")] = 2000,
    bootstrap_seed: Annotated[int, typer.Option("--bootstrap-seed", help="Random seed of the bootstrap: the same seed gives the same intervals.", metavar="SEED")] = 0,
    plot: Annotated[str | None, typer.Option("--plot", help="Also draw a chart to this file (.png, .pdf or .svg): grouped bars with interval whiskers, or rows of dots and whiskers beyond 10 splits.", metavar="FILE.png")] = None,
    across: Annotated[str | None, typer.Option("--across", help="A split field (added to --by) whose levels the contrasts are compared between: does the arm effect differ between model families (--across family), scenarios, ...? Difference of contrasts with a Wald interval and z-test, Holm per score.", metavar="FIELD")] = None,
    plot_score: Annotated[str | None, typer.Option("--plot-score", help="The rate score --plot draws (default: the first one declared, e.g. harmful for rollouts).", metavar="NAME")] = None,
    gold: Annotated[str | None, typer.Option("--gold", help="Hand labels (msm label's records): add judge-corrected, prediction-powered rates per arm and measure, and their contrasts.", metavar="LABELS.jsonl")] = None,
    judge_accuracy: Annotated[str | None, typer.Option("--judge-accuracy", help="A judge's validation records (am-eval --check-grader -o, tag-reasoning --validate --predictions): add Rogan-Gladen corrected rates, assuming the judge errs alike on every arm.", metavar="FILE")] = None,
    *,
    by: list[str],
    format: str | None,
    output: str,
    quiet: bool,
) -> None:
    """Compare spec variants on every score the records declare: rates (or means) per variant and split with
    intervals, pairwise contrasts with exact or paired tests, Holm correction, detectable differences, and a
    plot. See docs/statistics.md."""
    from ..compare.report import Request, run

    run(Request(files=list(files or []), variants=list(variant or []), by=list(by or []),
                scores=None if scores is None else [s.strip() for s in scores.split(",") if s.strip()],
                baseline=baseline, interval=interval, bootstrap=bootstrap, bootstrap_seed=bootstrap_seed,
                output=output, format=format, plot=plot, plot_score=plot_score, across=across, gold=gold,
                judge_accuracy=judge_accuracy, quiet=quiet))


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
