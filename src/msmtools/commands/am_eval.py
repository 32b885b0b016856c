"""`msm am-eval`: agentic-misalignment rollouts, action gates and LLM grades, as rollout records."""

from __future__ import annotations

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
    render_only: Annotated[bool, typer.Option("--render-only", help="Write the rendered prompts of the selected conditions (kind am_prompt) and stop; no model is loaded. With --model, also the whole prompt as that model sees it (its chat template, the system text folded into the user turn where the template has no system role, or the plain format of a base model) and its prompt_format.")] = False,
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
    --max-tokens defaults to 4096 (the paper's), 512 for the embedded models (--model default or
    gemma3-270m, which ramble and are slow on a CPU); replies that hit it are kept, graded and flagged truncated. --chunk-size defaults to --batch-size
    for hf, 256 otherwise.
    A summary of harmful rates per condition goes to stderr at the end.
    """
    params = dict(locals())  # every option by name: the library takes them as they are
    from ..am.invoke import invoke

    invoke(**params)


def register(app: typer.Typer) -> None:
    from ..llm.options import generation_options

    app.command("am-eval", epilog=_EPILOG)(
        generation_options("grader", help={"grader": "The grader (default: the evaluated base model, which then "
                                                     "grades itself; name an independent one)"})(am_eval))
