"""`msm study`: a study config (YAML) run as a Snakemake workflow, its planned sizes, its job graph."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

StudyFile = Annotated[str, typer.Argument(help="A study config (YAML), e.g. studies/demo.yaml.", metavar="STUDY")]
Out = Annotated[str | None, typer.Option("--out", help="Output folder (default: the study's `out`, else out/NAME).",
                                         metavar="DIR")]

app = typer.Typer(help="Run a whole study (arms x seeds x stages) as one Snakemake workflow, locally or on SLURM.",
                  no_args_is_help=True, rich_markup_mode=None)


@app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run_(
    ctx: typer.Context,
    study: StudyFile,
    out: Out = None,
    profile: Annotated[str | None, typer.Option("--profile", help="Snakemake profile: local (default), slurm, or a folder with a config.yaml.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="Print the planned sizes per run and the jobs Snakemake would start; run nothing.")] = False,
    cores: Annotated[str | None, typer.Option("--cores", help="Local cores for jobs side by side (default: the profile's; 'all').")] = None,
) -> None:
    """Run STUDY: only what is missing or stale (a spec or setting changed) runs; arguments after `--` go to Snakemake."""
    from ..study import run

    raise typer.Exit(run.run(study, out=out, profile=profile, dry_run=dry_run, cores=cores, extra=list(ctx.args)))


@app.command("plan")
def plan(study: StudyFile, out: Out = None) -> None:
    """Print the planned sizes of every run (corpus tokens, chats, rollouts, value items) without Snakemake."""
    from ..study import config, run

    sys.stdout.write(run.render_sizes(config.load(study, out=out)) + "\n")


@app.command("graph")
def graph(
    study: StudyFile,
    out: Out = None,
    jobs: Annotated[bool, typer.Option("--jobs", help="Every job, not one box per rule.")] = False,
) -> None:
    """Print the workflow graph as a mermaid-js flowchart (renders in GitHub Markdown)."""
    from ..study import run

    sys.stdout.write(run.graph(study, out=out, jobs=jobs))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="study")
