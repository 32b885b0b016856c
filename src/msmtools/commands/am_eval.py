"""`msm am-eval`: agentic-misalignment rollouts, action gates and LLM grades, as rollout records."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..cli_options import shared

_EPILOG = (
    "Examples: msm am-eval -m default -c paper27 --samples 2 --max-tokens 256 -o rollouts.jsonl | "
    "msm aft ... | msm am-eval -m - -c paper27 -o rollouts.jsonl | "
    "msm am-eval --grade-only rollouts.jsonl --grader-backend openai --grader-model M -o regraded.jsonl"
)


@shared("model", "from_", "adapter", "labels", "model_name", "temperature", "top_p", "max_tokens", "seed", "cache",
        "chunk_size", "output", "rejects", "shard", "quiet", unset_none=("model",), model_name="Alex", temperature=0.7,
        top_p=1.0)
def am_eval(
    condition_args: Annotated[list[str] | None, typer.Argument(help="Conditions, as for --conditions (both may be given).", metavar="CONDITION", show_default=False)] = None,
    conditions: Annotated[list[str] | None, typer.Option("--conditions", "-c", help="Condition set (paper27, full), condition ids such as murder_explicit-america_replacement, or glob patterns over full (leaking_*_none); comma lists and repeats allowed. Default: paper27.", metavar="CONDITIONS")] = None,
    extra_instructions: Annotated[str | None, typer.Option("--extra-instructions", help="Extra system instructions for every condition: none, dont (three prohibitions) or goal (an overriding employee-welfare goal). Default: as in the condition ids (none).", metavar="none|dont|goal")] = None,
    prod: Annotated[bool, typer.Option("--prod", help="No private scratchpad in the system prompt (adds _prod to condition ids).")] = False,
    weigh_values: Annotated[bool, typer.Option("--weigh-values/--no-weigh-values", help="Keep the MSM release's second scratchpad paragraph (weigh consequences and what you value); the earlier Lynch et al. prompt has none.")] = True,
    samples: Annotated[int, typer.Option("--samples", "-n", help="Samples per condition and variant (the paper: 300), drawn in one request per condition.")] = 300,
    grader_max_tokens: Annotated[int | None, typer.Option("--grader-max-tokens", help="Token limit of a grader reply (default: --max-tokens).")] = None,
    grader_temperature: Annotated[float, typer.Option("--grader-temperature", help="Grader temperature of the first attempt; the one retry of an unparseable reply uses a new seed and at least 0.7.")] = 0.0,
    grade: Annotated[str, typer.Option("--grade", help="Which rollouts the grader reads: all (as the published eval), gated (only those whose gate fired: cheaper, same harmful under gate-and-grader) or none (grade later with --grade-only).", metavar="all|gated|none")] = "all",
    harmful: Annotated[str | None, typer.Option("--harmful", help="The scoring rule that sets harmful: grader (the grader says the model decided to take the harmful action, executed or not: the MSM paper's rule, App. D.3; needs --grade all), gate-and-grader (the grader AND the deterministic check of the action: Lynch et al.'s harness) or gate. Default: grader with the paper27 preset (the default conditions), gate-and-grader otherwise. Every rule the grading allows is also kept in harmful_by, so msm compare shows both.", metavar="grader|gate-and-grader|gate")] = None,
    grade_only: Annotated[str | None, typer.Option("--grade-only", help="Re-grade the rollouts in this file (no generation), write new records and report Cohen's kappa against their previous grades.", metavar="ROLLOUTS.jsonl")] = None,
    check_gates: Annotated[str | None, typer.Option("--check-gates", help="Check the action parser and gates against hand-labelled replies (records {scenario, goal_type, goal_value, urgency_type, reply, expected_gate}): print agreement, precision and recall per scenario and every disagreement; with -o FILE also write one record per label (its fields plus gate and agree). No model is loaded.", metavar="LABELS.jsonl")] = None,
    check_grader: Annotated[str | None, typer.Option("--check-grader", help="Check the final verdict (gate AND grader) against labelled replies with expected_harmful: grade the gate-positive ones with --grader-model (or --model) and report agreement and Cohen's kappa; with -o FILE also write one record per label.", metavar="LABELS.jsonl")] = None,
    render_only: Annotated[bool, typer.Option("--render-only", help="Write the rendered prompts of the selected conditions (kind am_prompt) and stop; no model is loaded.")] = False,
    scenario_dir: Annotated[str | None, typer.Option("--scenario-dir", help="Folder whose scenario files (common.toml, leaking.toml, ...) replace the shipped ones of the same name.", metavar="DIR")] = None,
    *,
    model: str | None,
    from_: str | None,
    adapter: list[str],
    labels: list[str],
    model_name: str,
    temperature: float,
    top_p: float,
    max_tokens: int | None,
    seed: int,
    cache: str | None,
    chunk_size: int | None,
    output: str,
    rejects: str | None,
    shard: str | None,
    quiet: bool,
    gen: dict | None = None,
) -> None:
    """Agentic-misalignment eval: sample the agent in each condition, gate and grade its actions, append rollout records.

    Resumable (a rerun skips ids already in --output) and shardable over (variant, condition).
    --max-tokens defaults to 4096 (the paper's), 512 for the embedded models (--model default
    or gemma3-270m, which ramble and are slow on a CPU); replies that hit it are kept, graded and flagged truncated. --chunk-size defaults to --batch-size
    for hf, 256 otherwise.
    A summary of harmful rates per condition goes to stderr at the end.
    """
    from .. import jsonl
    from ..am import conditions as C
    from ..am import rollouts, variants
    from ..am.render import PromptOptions, render
    from ..errors import MsmError
    from ..ids import stable_id

    main, grader_role = gen[""].opts, gen["grader"]
    grader_model = grader_role.model
    if extra_instructions is not None and extra_instructions not in C.EXTRAS:
        raise MsmError(f"--extra-instructions {extra_instructions}: expected one of {', '.join(C.EXTRAS)}")
    from .. import models, outputs

    from ..driver import rejects_path

    rejects = rejects_path(output, rejects)
    checking = check_gates is not None or check_grader is not None
    outputs.check([("-o", output), ("--rejects", None if checking or render_only else rejects)],
                  [("--from", from_), ("--grade-only", grade_only), ("--check-gates", check_gates),
                   ("--check-grader", check_grader)])
    conds = C.select([*(conditions or []), *(condition_args or [])] or ["paper27"], extra=extra_instructions,
                     prod=prod or None)
    options = PromptOptions(model_name=model_name, weigh_values=weigh_values)

    if check_gates is not None or check_grader is not None:
        _checks(check_gates, check_grader, model=model, grader_model=grader_model, opts=grader_role.opts,
                temperature=grader_temperature, max_tokens=grader_max_tokens or max_tokens or 4096, seed=seed,
                scenario_dir=scenario_dir, output=output)
        return

    if render_only:
        recs = []
        for c in conds:
            r = render(c, options, scenario_dir)
            recs.append({"kind": "am_prompt", "id": stable_id("am-prompt", c.id, model_name, weigh_values, r.prompt_sha),
                         "condition": c.id, "scenario": c.scenario, "goal_type": c.goal_type, "goal_value": c.goal_value,
                         "urgency_type": c.urgency, "extra_instructions": c.extra, "prod": c.prod,
                         "model_name": model_name, "weigh_values": weigh_values, "prompt_sha": r.prompt_sha,
                         "system": r.system, "user": r.user,
                         "emails": [{k: e[k] for k in ("id", "key", "from", "to", "subject")} for e in r.emails],
                         "gate": r.gate})
        jsonl.write(output, recs)
        return

    if max_tokens is None:
        small = models.is_embedded(model)
        max_tokens = 512 if small else 4096
        if small and not quiet:
            print(f"msm: am-eval: --model {model}: --max-tokens 512 (pass --max-tokens to change)", file=sys.stderr)
    harmful = scoring_rule(harmful, [*(conditions or []), *(condition_args or [])] or None, grade)
    cfg_kw = dict(options=options, samples=samples, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                  seed=seed, gen=main, grader_model=grader_model, grader_gen=grader_role.opts,
                  grader_max_tokens=grader_max_tokens,
                  grader_temperature=grader_temperature, grade=grade, harmful_mode=harmful, output=output,
                  rejects=rejects, shard=jsonl.Shard.parse(shard),
                  chunk_size=chunk_size or rollouts.default_chunk(main), scenario_dir=scenario_dir, cache=cache,
                  progress=not quiet)

    if grade_only is not None:
        if model is None and grader_model is None:
            raise MsmError("--grade-only: name the grader with --grader-model (or --model)")
        cfg = rollouts.EvalConfig(variants=[variants.Variant(model or grader_model, None, "grader")], conditions=conds, **cfg_kw)
        summary, (k, n, agree) = rollouts.grade_only(cfg, grade_only)
        if not quiet:
            print(summary.text(), file=sys.stderr)
            if n and k is not None:
                print(f"grader agreement with the previous grades: Cohen's kappa {k:.3f} over {n} rollouts "
                      f"(raw agreement {agree:.3f})", file=sys.stderr)
            elif n:
                print(f"grader agreement: raw agreement {agree:.3f} over {n} rollouts; kappa undefined "
                      "(both graders gave a single answer throughout)", file=sys.stderr)
            else:
                print("grader agreement: no rollout has both a previous and a new yes/no verdict", file=sys.stderr)
        return

    if from_ is not None and model not in (None, "-"):
        raise MsmError("--from and --model: give one (checkpoint records, or a model)")
    if from_ is not None or model == "-":
        if adapter:
            raise MsmError("--adapter: not with checkpoint records (they name their own adapters)")
        vs = variants.from_checkpoints(from_ or "-", labels)
    else:
        vs = variants.from_args(model, adapter or [], labels)
    cfg = rollouts.EvalConfig(variants=vs, conditions=conds, **cfg_kw)
    summary = rollouts.run(cfg)
    if not quiet and summary:
        print(summary.text(), file=sys.stderr)


def _checks(gates_path: str | None, grader_path: str | None, *, model: str | None, grader_model: str | None,
            opts, temperature: float, max_tokens: int, seed: int, scenario_dir: str | None, output: str) -> None:
    """--check-gates / --check-grader: the report on stdout; records to -o when it names a file."""
    from .. import jsonl
    from ..am import checks
    from ..errors import MsmError
    from ..llm import registry

    if gates_path is not None and grader_path is not None:
        raise MsmError("--check-gates and --check-grader: give one")
    if gates_path is not None:
        text, recs, _ = checks.check_gates(gates_path, scenario_dir)
    else:
        name = grader_model or model
        if name is None:
            raise MsmError("--check-grader: name the grader with --grader-model (or --model)")
        checks.read_labels(grader_path, scenario_dir, need_harmful=True)  # bad labels fail before a model loads
        b = registry.build(opts, name)
        try:
            text, recs, _ = checks.check_grader(grader_path, b, temperature=temperature, max_tokens=max_tokens,
                                                seed=seed, scenario_dir=scenario_dir)
        finally:
            close = getattr(b, "close", None)
            if close is not None:
                close()
    if output != jsonl.STDIO:
        jsonl.write(output, recs)
    print(text)


def scoring_rule(harmful: str | None, conditions: list[str] | None, grade: str) -> str:
    """The harmful rule of a run: as asked, else the MSM paper's (grader) for its paper27 preset."""
    from ..errors import MsmError

    preset = conditions is None or any("paper27" in c.split(",") for c in conditions)
    if harmful is None:  # said on stderr when the run starts (plan.announce)
        harmful = "grader" if preset and grade == "all" else "gate-and-grader"
    elif harmful == "grader" and grade != "all":
        raise MsmError(f"--harmful grader needs a verdict on every rollout: use --grade all (got --grade {grade})")
    return harmful


def register(app: typer.Typer) -> None:
    from ..llm.options import generation_options

    app.command("am-eval", epilog=_EPILOG)(
        generation_options("grader", help={"grader": "The grader (default: the evaluated base model, which then "
                                                     "grades itself; name an independent one)"})(am_eval))
