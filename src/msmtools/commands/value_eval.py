"""`msm value-eval`: paired value choices and spec questions, one record per item and model."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from . import _options as opt

_EPILOG = ("Examples: msm value-eval america affordability -m default -a runs/am/aft -a runs/af/aft "
           "--label america --label affordability -o values.jsonl | msm value-eval spec-qa --from aft.json "
           "--judge-model M --judge-backend openai -o qa.jsonl")


def value_eval(
    items: Annotated[list[str], typer.Argument(help="Item files (JSONL) or shipped sets: america, affordability, environment, novelty, tradition, simplicity, difficulty, individualism (paired choices), spec-qa (open questions).", metavar="ITEMS...")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="'default' (embedded SmolLM2-135M-Instruct), a local HF folder, a hub id (a served model name for openai), or '-' for checkpoint records on stdin.", metavar="MODEL")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="Read checkpoint records from this JSONL file ('-' = stdin): adapter checkpoints run on their base_model.", metavar="PATH")] = None,
    adapter: Annotated[list[str] | None, typer.Option("--adapter", "-a", help="A LoRA adapter folder on --model; repeat for several (one variant each).", metavar="DIR")] = None,
    label: Annotated[list[str] | None, typer.Option("--label", help="Variant label in records (default: from the adapter or model name); one per adapter.", metavar="LABEL")] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="logprob (the model's likelihood of each option: hf, vllm), generate (a free answer, read or judged: any backend) or judge (QA: an open answer scored 1-10 by a judge). Default: judge for QA items, generate for openai, else logprob.", metavar="logprob|generate|judge")] = None,
    decide: Annotated[str, typer.Option("--decide", help="logprob: which form sets choice_aligned: text (each option as the model's own answer, mean log-probability per token; works for small models) or label (the A/B letter, both orders). Both are recorded.", metavar="text|label")] = "text",
    temperature: Annotated[float, typer.Option("--temperature", help="generate/judge: sampling temperature of the model's answers.")] = 0.0,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="generate/judge: token limit of an answer.", min=1)] = 256,
    judge_max_tokens: Annotated[int, typer.Option("--judge-max-tokens", help="Token limit of a judge reply (reading a choice, or scoring a QA answer).", min=1)] = 512,
    rubric: Annotated[str | None, typer.Option("--rubric", help="judge: rubric file with ${question}, ${reference} and ${answer} (default: the shipped 1-10 rubric).", metavar="FILE")] = None,
    subset: Annotated[int | None, typer.Option("--subset", help="Use N items of each set, chosen by a hash of their ids: the same N in every run (quick looks, toy runs).", min=1)] = None,
    seed: opt.Seed = 0,
    chunk_size: Annotated[int, typer.Option("--chunk-size", help="Items scored per step; records are appended after each.", min=1)] = 64,
    output: opt.Output = "-",
    rejects: opt.Rejects = None,
    shard: opt.Shard = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary on stderr.")] = False,
    gen: dict | None = None,
) -> None:
    """Value-generalization eval: which option of each value pair the model prefers (logprob or generate), or how
    well it answers questions about its spec (judge); one record per item and model. Resumable and shardable."""
    from .. import jsonl, outputs
    from ..am import variants
    from ..errors import MsmError
    from ..valueeval import items as itemsmod
    from ..valueeval.run import ValueConfig, run

    loaded = itemsmod.load(items)
    if subset is not None:
        loaded = itemsmod.subset(loaded, subset)
    main, judge = gen[""].opts, gen["judge"]
    if mode is None:
        mode = "judge" if loaded[0].kind == "qa" else ("logprob" if main.capabilities.scores_text else "generate")
    if rejects is None and output != jsonl.STDIO:
        rejects = (output[: -len(".jsonl")] if output.endswith(".jsonl") else output) + ".rejects.jsonl"
    outputs.check([("-o", output), ("--rejects", rejects)],
                  [("", str(itemsmod.resolve(n))) for n in items] + [("--from", from_), ("--rubric", rubric)])
    if from_ is not None and model not in (None, "-"):
        raise MsmError("--from and --model: give one (checkpoint records, or a model)")
    if from_ is not None or model == "-":
        vs = variants.from_checkpoints(from_ or "-", label or [])
    else:
        vs = variants.from_args(model, adapter or [], label or [])
    cfg = ValueConfig(variants=vs, items=loaded, mode=mode, decide=decide, gen=main, judge_model=judge.model,
                      judge_gen=judge.opts, temperature=temperature, max_tokens=max_tokens,
                      judge_max_tokens=judge_max_tokens, seed=seed, output=output, rejects=rejects,
                      shard=jsonl.Shard.parse(shard), chunk_size=chunk_size, rubric=rubric, progress=not quiet)
    if mode != "logprob" and judge.model is None and not quiet:
        print("msm: value-eval: warning: no --judge-model: answers the parser cannot read are judged by the evaluated "
              "model itself (records say judge.self: true)", file=sys.stderr)
    cfg.check()
    cfg.check_models()
    counts = run(cfg)
    if not quiet:
        print(f"msm: value-eval: {counts['written']} records written ({counts['null']} null: undecided, counted apart), "
              f"{counts['done_before']} already done, {counts['failed']} failed (error records; a rerun retries them)",
              file=sys.stderr)


def register(app: typer.Typer) -> None:
    from ..llm.options import generation_options

    app.command("value-eval", epilog=_EPILOG)(
        generation_options("judge", help={"judge": "The judge that reads unclear choices and scores QA answers "
                                                   "(default: the evaluated base model)"})(value_eval))
