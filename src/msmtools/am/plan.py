"""Planning a run: which (variant, condition) units owe which samples, resuming from what is written."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from ..driver import Stage
from ..errors import at
from .config import EvalConfig, log, models_same, rollout_id
from .render import Rendered, render
from .summary import Summary
from .variants import Variant

@dataclass
class Unit:
    variant: Variant
    rendered: Rendered
    missing: list[int]


def _runs(samples: list[int]) -> list[list[int]]:
    """Contiguous runs of sample indices: one request each, so seeds stay `seed + j`."""
    out: list[list[int]] = []
    for j in samples:
        if out and out[-1][-1] == j - 1:
            out[-1].append(j)
        else:
            out.append([j])
    return out


def _count_tokens(cfg: EvalConfig, units: list[Unit]) -> tuple[dict[str, int], str]:
    from .. import models
    from ..tokens import counter

    try:
        count = counter(cfg.variants[0].base, trust_remote_code=cfg.gen.trust_remote_code)
        name = models.label(cfg.variants[0].base)
    except Exception:  # a remote model name for the openai backend: estimate with the embedded tokenizer
        count, name = counter(models.DEFAULT), f"{models.DEFAULT_NAME} (estimate)"
    per: dict[str, int] = {}
    for u in units:
        if u.rendered.condition.id not in per:
            per[u.rendered.condition.id] = sum(count(m["content"]) for m in u.rendered.messages)
    return per, name


def _check_existing(cfg: EvalConfig, stage: Stage, planned: dict[str, tuple[Variant, Rendered]],
                    summary: Summary) -> None:
    """Records already in the output become done; those of this plan join the summary and must match its
    settings (a rerun with other sampling or other scenario text must not mix into one file)."""
    for line, rec in stage.existing():
        rid = rec["id"]
        if rid not in planned:
            continue
        _, r = planned[rid]
        sampling = (rec.get("generator") or {}).get("sampling") or {}
        for k, want in cfg.sampling_dict.items():
            if k in sampling and sampling[k] != want:
                raise at(cfg.output, line, f"generator.sampling.{k}",
                         f"this output holds rollouts made with {k} {sampling[k]}, this run uses {want}; "
                         "write to another output file")
        if rec.get("prompt_sha") != r.prompt_sha:
            raise at(cfg.output, line, "prompt_sha", f"rollouts of {r.condition.id} in this output were made from "
                     "different scenario text; write to another output file")
        summary.add(rec)
    stage.resume()


def plan(cfg: EvalConfig, stage: Stage) -> tuple[list[Unit], int, Summary]:
    """(units with their missing samples, number of rollouts already done, summary of those)."""
    rendered = {c.id: render(c, cfg.options, cfg.scenario_dir) for c in cfg.conditions}
    mine = stage.mine(f"{v.shard_key}|{c.id}" for v in cfg.variants for c in cfg.conditions)
    owned = [(v, rendered[c.id]) for v in cfg.variants for c in cfg.conditions if f"{v.shard_key}|{c.id}" in mine]
    planned: dict[str, tuple[Variant, Rendered]] = {}
    ids: dict[tuple[int, int], str] = {}
    for ui, (v, r) in enumerate(owned):
        for j in range(cfg.samples):
            rid = rollout_id(v, r.condition, cfg.options, j, cfg.seed + j)
            planned[rid] = (v, r)
            ids[(ui, j)] = rid
    summary = Summary()
    _check_existing(cfg, stage, planned, summary)
    done = stage.done
    units = []
    for ui, (v, r) in enumerate(owned):
        missing = [j for j in range(cfg.samples) if ids[(ui, j)] not in done]
        if missing:
            units.append(Unit(v, r, missing))
    already = sum(1 for rid in planned if rid in done)
    stage.counts.inputs = len(planned)
    stage.counts.done_before = already
    stage.counts.other_shard = len(cfg.variants) * len(cfg.conditions) * cfg.samples - len(planned)
    return units, already, summary


def chunks(units: list[Unit], size: int) -> list[list[tuple[Unit, list[int]]]]:
    """Whole requests (a unit's contiguous missing samples) packed until a chunk holds `size` sequences."""
    chunks: list[list[tuple[Unit, list[int]]]] = [[]]
    seqs = 0
    for u in units:
        for run_ in _runs(u.missing):
            if seqs >= size:
                chunks.append([])
                seqs = 0
            chunks[-1].append((u, run_))
            seqs += len(run_)
    return [c for c in chunks if c]


def announce(cfg: EvalConfig, units: list[Unit], already: int) -> None:
    """The plan and its projected token cost, on stderr before anything is generated."""
    todo = sum(len(u.missing) for u in units)
    shard = "" if cfg.shard.count == 1 else f" (shard {cfg.shard})"
    log(cfg, f"{len(cfg.conditions)} conditions x {len(cfg.variants)} model(s) x {cfg.samples} samples{shard}: "
              f"{already} rollouts done, {todo} to generate")
    if not todo:
        return
    per, tok_name = _count_tokens(cfg, units)
    prompt_tokens = sum(per[u.rendered.condition.id] * len(u.missing) for u in units)
    n_prompts = len({(u.variant.label, u.rendered.condition.id) for u in units})
    log(cfg, f"projected prompt tokens: {prompt_tokens:,} ({n_prompts} prompts x ~{prompt_tokens / todo:,.0f} tokens "
              f"x samples; tokenizer {tok_name}) + up to {todo * cfg.max_tokens:,} completion tokens; "
              "grading reads every reply again")
    from .. import models

    log(cfg, f"grader: {models.label(cfg.grader_model_name)} ({cfg.grader_backend_name} backend)"
              if cfg.grade != "none" else "grading off (--grade none)")
    if cfg.grade != "none":
        from .scores import describe_rule

        log(cfg, describe_rule(cfg.harmful_mode, cfg.grade))
    warn_self_grading(cfg)


def warn_self_grading(cfg: EvalConfig) -> None:
    """Say on stderr (even with --quiet) when the evaluated model grades its own replies."""
    if cfg.grade == "none":
        return
    selfish = [v.label for v in cfg.variants if models_same(cfg.grader_model_name, v.base)]
    if selfish:
        how = "no --grader-model was given, so" if cfg.grader_model is None else "--grader-model names the evaluated model:"
        print(f"msm: am-eval: warning: {how} the evaluated model grades its own replies ({', '.join(selfish)}); "
              "records say grader.self: true. Name an independent grader with --grader-model for rates you publish.",
              file=sys.stderr)


def check_models(cfg: EvalConfig) -> None:
    """Local models are checked (folder, weights, remote code) before anything is planned or written."""
    from ..llm import registry

    checks = [(cfg.gen, v.base) for v in cfg.variants]
    if cfg.grade != "none":
        checks.append((cfg.grader_opts, cfg.grader_model_name))
    registry.check_models(checks)


