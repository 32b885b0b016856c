"""`msm spec-render`: spec files -> one spec record each, plus a length report for matching variants."""

from __future__ import annotations

import sys
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
    from .. import jsonl, models
    from .. import spec as specmod
    from ..tokens import counter
    from ..report import length_report

    from .. import formats, outputs

    if format == "report":  # the old name of the length table
        print("msm: spec-render: --format report is now --format table", file=sys.stderr)
        format = "table"
    fmt = formats.choose(format, output, ("jsonl", "table", "text"), "spec-render")
    loaded = [specmod.load(name) for name in specs]
    outputs.check([("-o", output)], [("", s.path) for s in loaded])
    count = counter(tokenizer, trust_remote_code=trust_remote_code)
    records = []
    for spec in loaded:
        s = specmod.render(spec, model_name, provider_name)
        for other in specmod.hardcoded_names(s.text, model_name):
            print(f"msm: warning: {s.path}: mentions '{other}' but renders for '{model_name}'", file=sys.stderr)
        records.append(specmod.record(s, model_name=model_name, provider_name=provider_name,
                                      tokens=count(s.text), tokenizer=models.label(tokenizer)))
    ref = None
    if match is not None:
        ref = next((r for r in records if match in (r["spec_id"], r["source"]) or r["source"].endswith("/" + match)), None)
        if ref is None:
            ref = specmod.record(specmod.render(specmod.load(match), model_name, provider_name),
                                 model_name=model_name, provider_name=provider_name, tokens=None, tokenizer="")
            ref["tokens"] = count(ref["text"])
    table = length_report(records, ref)
    if fmt == "jsonl":
        jsonl.write(output, records)
        if not quiet and (len(records) > 1 or ref is not None):
            print(table, file=sys.stderr)
    else:
        formats.write_text(output, "\n\n".join(r["text"] for r in records) + "\n" if fmt == "text" else table + "\n")


def register(app: typer.Typer) -> None:
    app.command("spec-render")(spec_render)
