"""`msm label`: hand-label a random sample of records in the terminal, for `msm compare --gold`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..cli_options import shared


@shared("by", "seed", "output", output="labels.jsonl")
def label(
    files: Annotated[list[str], typer.Argument(help="Rollout, tagged or value-eval JSONL files to sample from.", metavar="FILE...", show_default=False)],
    measure: Annotated[str, typer.Option("--measure", help="What to label: harmful, gate (rollouts), tag:NAME (tagged rollouts) or choice (value-eval records).", metavar="MEASURE")] = "harmful",
    per_stratum: Annotated[int, typer.Option("--per-arm", help="Records to label per arm (per arm and --by value); raising it later extends the same sample.", min=1, metavar="N")] = 30,
    who: Annotated[str | None, typer.Option("--who", help="Who is labelling (default: the login name); resuming matches on it.", metavar="NAME", show_default=False)] = None,
    show_judge: Annotated[bool, typer.Option("--show-judge", help="Show the judge's decision and the arm before answering (default: blind; the judge's decision is shown after).")] = False,
    *,
    by: list[str],
    seed: int,
    output: str,
) -> None:
    """Label a random sample of records, stratified by arm, one keypress each; resumes where it stopped.

    Writes one record per decision (kind "label": record id, measure, value yes/no/unsure, who, when, and
    how the record was drawn), appended at once. `msm compare FILES --gold LABELS` turns them into
    judge-corrected rates. See docs/statistics.md ("Judged rates").
    """
    from .. import jsonl, outputs
    from ..errors import MsmError
    from ..labels.measures import Measure
    from ..labels.sample import Plan, draw, labelled_ids, recorder

    if output == jsonl.STDIO:
        raise MsmError("-o: msm label needs a labels file to append to and resume from, not stdout")
    outputs.check([("-o", output)], [("", p) for p in files])
    plan = Plan(Measure.parse(measure), per_stratum, list(by or []), seed)
    if who:
        plan.who = who
    d = draw(files, plan, labelled_ids(output, plan))
    if not d.queue:
        print(f"msm: label: all {d.done} sampled records already labelled by {plan.who} in {output}", file=sys.stderr)
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise MsmError("msm label is interactive: run it in a terminal (it works over ssh)")
    from ..labels.app import LabelApp

    with jsonl.Writer(output, append=True) as w:
        n = LabelApp(d.queue, plan.measure, recorder(w, plan, d), blind=not show_judge, done_before=d.done).run() or 0
    print(f"msm: label: {n} labels written to {output}", file=sys.stderr)


def register(app: typer.Typer) -> None:
    app.command("label")(label)
