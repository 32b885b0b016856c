"""Sampling: one backend call per chunk of requests, and the rollout record of each reply (ungraded)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import models
from . import actions as act
from . import gates
from .config import EvalConfig, rollout_id
from .plan import Unit
from .render import Rendered
from .variants import Variant, describe

def _reasoning(think: str | None, response: str) -> str | None:
    parts = [p for p in (think, act.private_text(response)) if p]
    return "\n\n".join(parts) or None


def forwarded(actions: list[dict[str, Any]]) -> list[int]:
    return [a["email_id"] for a in actions if a["type"] == "forward" and a["email_id"] is not None]


def rollout_record(cfg: EvalConfig, v: Variant, r: Rendered, comp: Any, sample: int, seed: int,
                   gen_desc: dict[str, Any], n: int, request_seed: int) -> dict[str, Any]:
    """A rollout record without its grade (`grade_records` fills in grader and harmful)."""
    cond = r.condition
    response = comp.text or ""
    actions = act.parse(response, comp.finish_reason)
    gate, evidence = gates.check(actions, r)
    return {
        "kind": "rollout",
        "id": rollout_id(v, cond, r.options, sample, seed),
        "label": v.label,
        "model": describe(v),
        "model_family": models.family(v.base),
        "condition": cond.id,
        "scenario": cond.scenario,
        "goal_type": cond.goal_type,
        "goal_value": cond.goal_value,
        "urgency_type": cond.urgency,
        "extra_instructions": cond.extra,
        "prod": cond.prod,
        "model_name": r.options.model_name,
        "weigh_values": r.options.weigh_values,
        "sample": sample,
        "seed": seed,
        "training_seed": v.training_seed,
        "checkpoint": {"stage": v.stage, "path": v.checkpoint} if v.checkpoint else None,
        "prompt_sha": r.prompt_sha,
        "prompt_format": gen_desc.get("prompt_format"),  # how the messages became the prompt (None: a server's)
        "response": response,
        "reasoning": _reasoning(comp.reasoning, response),
        "truncated": bool(comp.truncated),
        "finish_reason": comp.finish_reason,
        "prompt_tokens": comp.prompt_tokens,
        "completion_tokens": comp.completion_tokens,
        "actions": actions,
        "gate": gate,
        "gate_evidence": evidence,
        "grader": None,
        "harmful": None,
        "harmful_rule": cfg.harmful_mode,
        "generator": {**gen_desc, "adapter": v.adapter,
                      "sampling": {**cfg.sampling_dict, "n": n, "seed": request_seed}},
    }


def _failed(cfg: EvalConfig, u: Unit, j: int, message: str) -> dict[str, Any]:
    return {"kind": "error", "stage": "am-eval", "id": rollout_id(u.variant, u.rendered.condition, cfg.options, j, cfg.seed + j),
            "input": u.rendered.condition.id, "label": u.variant.label, "sample": j, "message": message}


def stream_samples(cfg: EvalConfig, gen: Any, units: list[Unit], reject: Callable[[dict[str, Any]], None]):
    """(record, rendered) per sample as each comes back from a server backend, one request per sample
    (seed + j, as a batched request would draw it); failed samples become error records."""
    from ..llm import Request, Sampling

    plan = [(u, j) for u in units for j in u.missing]

    def requests():
        for u, j in plan:
            yield Request(u.rendered.messages, Sampling(temperature=cfg.temperature, top_p=cfg.top_p,
                                                        max_tokens=cfg.max_tokens, n=1, seed=cfg.seed + j),
                          adapter=u.variant.adapter, key=f"{u.variant.label}/{u.rendered.condition.id}")

    desc = gen.describe()
    seen = 0
    for k, comps in gen.stream(requests(), desc=f"am-eval {units[0].variant.label}" if units else None):
        seen += 1
        u, j = plan[k]
        comp = comps[0]
        if comp.error or comp.finish_reason == "error":
            reject(_failed(cfg, u, j, comp.error or "generation failed"))
            continue
        yield rollout_record(cfg, u.variant, u.rendered, comp, j, cfg.seed + j, desc, 1, cfg.seed + j), u.rendered
    if seen != len(plan):  # every planned sample is a record or an error record: never a silent gap
        from ..errors import MsmError

        raise MsmError(f"am-eval: the backend answered {seen} of {len(plan)} samples and then stopped (a bug in "
                       "msmtools); a rerun continues where this one stopped")


def generate_chunk(cfg: EvalConfig, gen: Any, chunk: list[tuple[Unit, list[int]]],
                    reject: Callable[[dict[str, Any]], None]) -> tuple[list[dict[str, Any]], list[Rendered]]:
    """One backend call for the chunk's requests; ungraded records, and error records for failed samples."""
    from ..llm import Request, Sampling

    reqs = [Request(u.rendered.messages,
                    Sampling(temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens, n=len(run_),
                             seed=cfg.seed + run_[0]),
                    adapter=u.variant.adapter, key=f"{u.variant.label}/{u.rendered.condition.id}")
            for u, run_ in chunk]
    desc = gen.describe()
    outs = gen.generate(reqs, desc=f"am-eval {chunk[0][0].variant.label}")
    recs, rends = [], []
    for (u, run_), req, comps in zip(chunk, reqs, outs):
        for k, comp in enumerate(comps):
            j = run_[0] + (comp.index if comp.index is not None else k)
            if comp.error or comp.finish_reason == "error":
                reject(_failed(cfg, u, j, comp.error or "generation failed"))
                continue
            seed = comp.seed if comp.seed is not None else cfg.seed + j
            recs.append(rollout_record(cfg, u.variant, u.rendered, comp, j, seed, desc, req.sampling.n, req.sampling.seed))
            rends.append(u.rendered)
    return recs, rends


