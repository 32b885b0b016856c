"""`msm spec-render`: spec files -> one spec record each, plus a length report for matching variants."""

from __future__ import annotations

from typing import Annotated

import typer

from ..cli_options import shared


@shared("model_name", "tokenizer", "trust_remote_code", "output", "format", "quiet", model_name="Qwen")
def spec_render(
    specs: Annotated[list[str], typer.Argument(help="Spec files (Markdown or plain text), or names of shipped specs (rules, value_augmented, ...).", metavar="SPEC")],
    provider_name: Annotated[str, typer.Option("--provider-name", help="Fills {provider_name}: the organisation that trains it.")] = "Alibaba",
    match: Annotated[str | None, typer.Option("--match", help="Reference spec (a path or spec id among the inputs) for token ratios in the report.")] = None,
    *,
    model_name: str,
    tokenizer: str,
    trust_remote_code: bool,
    output: str,
    format: str | None,
    quiet: bool,
) -> None:
    """Render spec files: fill placeholders, find sections and rule ids, count tokens.

    --format jsonl writes the spec records (and, unless -q, the length report on stderr), table the length
    report, text the rendered specs. 'report' is the old name of table.
    """
    params = dict(locals())  # every option by name: the library takes them as they are
    from ..spec import run

    run(**params)


def register(app: typer.Typer) -> None:
    app.command("spec-render")(spec_render)
