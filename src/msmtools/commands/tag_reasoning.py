"""`msm tag-reasoning`: tag what rollouts reasoned (spec rules invoked, reasoning patterns), or score a tagger."""

from __future__ import annotations

from typing import Annotated

import typer

from ..cli_options import shared



@shared("rubric", "model", "temperature", "max_tokens", "chunk_size", "seed", "shard", "output", "rejects", "format",
        "quiet", temperature=0.0, max_tokens=512, chunk_size=32)
def tag_reasoning(
    rollouts: Annotated[str | None, typer.Argument(help="Rollout JSONL from am-eval ('-' = stdin). Not needed with --validate.", metavar="ROLLOUTS.jsonl")] = None,
    spec: Annotated[str | None, typer.Option("--spec", help="Required. Spec JSONL from spec-render (or a spec file / shipped spec name); its rule sections (SP1, ...) become tags.", metavar="SPEC")] = None,
    tagger: Annotated[str, typer.Option("--tagger", "-t", help="lexical (regex cues, instant) or llm (a model judges each trace).")] = "lexical",
    retry_temperature: Annotated[float, typer.Option("--retry-temperature", help="llm: temperature floor for the one retry of an invalid reply (it also gets a new seed).")] = 0.7,
    validate: Annotated[str | None, typer.Option("--validate", help="Score the tagger against hand labels ({id, reasoning, labels}) instead of tagging rollouts.", metavar="LABELS.jsonl")] = None,
    predictions: Annotated[str | None, typer.Option("--predictions", help="--validate: also write each trace's tags next to its labels here (JSONL), to read the disagreements.", metavar="PATH")] = None,
    *,
    rubric: str | None,
    model: str,
    temperature: float,
    max_tokens: int,
    chunk_size: int,
    seed: int,
    shard: str | None,
    output: str,
    rejects: str | None,
    format: str | None,
    quiet: bool,
    gen: dict | None = None,
) -> None:
    """Tag rollout reasoning with spec rules and reasoning patterns; --validate scores the tagger.

    Tagging writes tagged rollout records (--format jsonl). --validate writes its scores as a table or as
    jsonl (one score record per tag). With --tagger llm, --temperature and --max-tokens are the tagging
    model's (a reply cut off by --max-tokens counts as invalid).
    """
    params = dict(locals())  # every option by name: the library takes them as they are
    from ..tagging.invoke import invoke

    invoke(**params)


def register(app: typer.Typer) -> None:
    from ..llm.options import generation_options

    app.command("tag-reasoning")(generation_options()(tag_reasoning))
