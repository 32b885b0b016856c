"""`msm value-eval`: paired value choices and spec questions, one record per item and model."""

from __future__ import annotations

from typing import Annotated

import typer

from ..cli_options import shared

_EPILOG = ("Examples: msm value-eval america affordability -m default -a runs/am/aft -a runs/af/aft "
           "--label america --label affordability -o values.jsonl | msm value-eval spec-qa --from aft.json "
           "--judge-model M --judge-backend openai -o qa.jsonl")


@shared("model", "from_", "adapter", "labels", "temperature", "max_tokens", "judge_max_tokens", "rubric", "seed",
        "chunk_size", "output", "rejects", "shard", "quiet", unset_none=("model",), temperature=0.0, max_tokens=256,
        chunk_size=64)
def value_eval(
    items: Annotated[list[str], typer.Argument(help="Item files (JSONL) or shipped sets: america, affordability, environment, novelty, tradition, simplicity, difficulty, individualism (paired choices), spec-qa (open questions).", metavar="ITEMS...")],
    mode: Annotated[str | None, typer.Option("--mode", help="logprob (the model's likelihood of each option: hf, vllm), generate (a free answer, read or judged: any backend) or judge (QA: an open answer scored 1-10 by a judge). Default: judge for QA items, generate for openai, else logprob.", metavar="logprob|generate|judge")] = None,
    decide: Annotated[str, typer.Option("--decide", help="logprob: which form sets choice_aligned: text (each option as the model's own answer, mean log-probability per token; works for small models) or label (the A/B letter, both orders). Both are recorded.", metavar="text|label")] = "text",
    subset: Annotated[int | None, typer.Option("--subset", help="Use N items of each set, chosen by a hash of their ids: the same N in every run (quick looks, toy runs).", min=1)] = None,
    *,
    model: str | None,
    from_: str | None,
    adapter: list[str],
    labels: list[str],
    temperature: float,
    max_tokens: int,
    judge_max_tokens: int,
    rubric: str | None,
    seed: int,
    chunk_size: int,
    output: str,
    rejects: str | None,
    shard: str | None,
    quiet: bool,
    gen: dict | None = None,
) -> None:
    """Value-generalization eval: which option of each value pair the model prefers (logprob or generate), or how
    well it answers questions about its spec (judge); one record per item and model. Resumable and shardable.

    The judge reads answers the parser cannot (generate mode) and scores QA answers 1-10 (judge mode);
    --temperature and --max-tokens are the evaluated model's in generate and judge modes."""
    params = dict(locals())  # every option by name: the library takes them as they are
    from ..valueeval.invoke import invoke

    invoke(**params)


def register(app: typer.Typer) -> None:
    from ..llm.options import generation_options
    from .docgen import JUDGE_HELP

    app.command("value-eval", epilog=_EPILOG)(
        generation_options("judge", help={"judge": JUDGE_HELP})(value_eval))
