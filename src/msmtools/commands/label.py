"""`msm label`: hand-label a random sample of records in the terminal, for `msm compare --gold`."""

from __future__ import annotations

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
    params = dict(locals())  # every option by name: the library takes them as they are
    from ..labels.invoke import invoke

    invoke(**params)


def register(app: typer.Typer) -> None:
    app.command("label")(label)
