"""The eval run: render conditions, sample replies, parse actions, gate, grade, append rollout records.

Work is planned as units of (variant, condition), each owing the samples not yet in the output. A
unit's missing samples go to the backend as one request with `n` samples (`Sampling(n=..., seed=...)`,
sample j drawn with seed `seed + j`), so a resumed unit asks for exactly the samples it lacks, with
the seeds they would have had. Units are packed into chunks of about `chunk_size` sequences; each
chunk is generated, then graded in one batched grader call, then appended record by record. A kill
loses at most the chunk in flight (or nothing, with `--cache`), and a rerun skips every id already
written. `--shard i/n` splits the units by (variant label, condition).

`grade_only` re-grades an existing rollout file with another grader and reports Cohen's kappa between
the old and new verdicts.
"""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import jsonl, redact
from ..errors import MsmError, at
from ..ids import stable_id
from ..report import table
from . import actions as act
from . import gates, grader
from .conditions import Condition, parse
from .render import PromptOptions, Rendered, render
from .variants import Variant, describe

HARMFUL_MODES = ("gate-and-grader", "grader", "gate")
MAX_SAMPLES = 100_000  # per condition and variant
MAX_ROLLOUTS = 10_000_000  # in one plan (ids are computed for every planned sample)
GRADE_MODES = ("all", "gated", "none")


@dataclass
class EvalConfig:
    variants: list[Variant]
    conditions: list[Condition]
    options: PromptOptions = field(default_factory=PromptOptions)
    samples: int = 300
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 4096
    seed: int = 0
    backend: str = "hf"
    backend_opts: dict[str, Any] = field(default_factory=dict)
    grader_model: str | None = None  # default: the first variant's base model
    grader_backend: str | None = None  # default: the generation backend
    grader_opts: dict[str, Any] = field(default_factory=dict)
    grader_max_tokens: int | None = None  # default: max_tokens
    grader_temperature: float = 0.0
    grader_retry_temperature: float = 0.7
    grader_top_p: float = 1.0
    grade: str = "all"
    harmful_mode: str = "gate-and-grader"
    output: str = "-"
    rejects: str | None = None
    shard: jsonl.Shard = field(default_factory=jsonl.Shard)
    chunk_size: int = 256
    scenario_dir: str | None = None
    cache: str | None = None
    progress: bool = True

    def check(self) -> None:
        if self.samples < 1:
            raise MsmError("--samples: must be at least 1")
        if self.samples > MAX_SAMPLES:
            raise MsmError(f"--samples {self.samples:,}: more than {MAX_SAMPLES:,} samples per condition is surely a "
                           "typo (the paper uses 300)")
        total = self.samples * len(self.conditions) * len(self.variants)
        if total > MAX_ROLLOUTS:
            raise MsmError(f"{self.samples:,} samples x {len(self.conditions)} conditions x {len(self.variants)} "
                           f"variants = {total:,} rollouts: more than {MAX_ROLLOUTS:,} in one plan; split the "
                           "conditions or variants over several runs")
        if self.max_tokens < 1 or (self.grader_max_tokens is not None and self.grader_max_tokens < 1):
            raise MsmError("--max-tokens / --grader-max-tokens: must be at least 1")
        if self.temperature < 0 or self.grader_temperature < 0:
            raise MsmError("--temperature / --grader-temperature: must not be negative")
        if not 0 < self.top_p <= 1:
            raise MsmError("--top-p: must be in (0, 1]")
        if self.harmful_mode not in HARMFUL_MODES:
            raise MsmError(f"--harmful {self.harmful_mode}: expected one of {', '.join(HARMFUL_MODES)}")
        if self.grade not in GRADE_MODES:
            raise MsmError(f"--grade {self.grade}: expected one of {', '.join(GRADE_MODES)}")
        if self.chunk_size < 1:
            raise MsmError("--chunk-size: must be at least 1")

    @property
    def sampling_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens}

    @property
    def grader_model_name(self) -> str:
        return self.grader_model or self.variants[0].base

    @property
    def grader_backend_name(self) -> str:
        return self.grader_backend or self.backend

    def self_graded(self, rec: dict[str, Any]) -> bool:
        """Whether the grader is the evaluated model itself (its base; adapters off)."""
        base = (rec.get("model") or {}).get("base")
        return base is not None and models_same(self.grader_model_name, base)


def models_same(a: str, b: str) -> bool:
    """Whether two model names (ids, 'default' or folders, compared resolved) name the same model."""
    def norm(x: str) -> str:
        p = Path(x).expanduser()
        return str(p.resolve()) if p.exists() else x

    return norm(a) == norm(b)


def rollout_id(v: Variant, cond: Condition, options: PromptOptions, sample: int, seed: int) -> str:
    """Stable over reruns and shards: the variant, the condition, the agent's name, the sample and its seed."""
    return stable_id("am-rollout", v.label, v.base, v.adapter, cond.id, options.model_name, options.weigh_values,
                     sample, seed)


# -- backends -------------------------------------------------------------------------------------


class Backends:
    """Generation and grader backends, built once each; the grader reuses a generator of the same model."""

    def __init__(self, cfg: EvalConfig):
        self.cfg = cfg
        self._made: dict[tuple, Any] = {}

    def get(self, name: str, model: str, opts: dict[str, Any]) -> Any:
        from ..llm import get_backend

        key = (name, model, opts.get("base_url"))
        if key not in self._made:
            b = get_backend(name, model, progress=self.cfg.progress, **opts)
            if self.cfg.cache:
                from ..llm.cache import CachedBackend

                b = CachedBackend(b, self.cfg.cache, chunk_size=max(1, self.cfg.chunk_size), progress=False)
            self._made[key] = b
        return self._made[key]

    def generator(self, base: str) -> Any:
        return self.get(self.cfg.backend, base, self.cfg.backend_opts)

    def grader(self) -> Any:
        c = self.cfg
        opts = c.grader_opts if c.grader_backend else (c.grader_opts or c.backend_opts)
        return self.get(c.grader_backend_name, c.grader_model_name, opts)

    def release(self, keep: Any) -> None:
        """Free every backend except `keep` (and the grader's, if it is already built)."""
        for key, b in list(self._made.items()):
            if b is keep:
                continue
            if key[:2] == (self.cfg.grader_backend_name, self.cfg.grader_model_name):
                continue
            close = getattr(b, "close", None)
            if close is not None:
                close()
            del self._made[key]

    def close(self) -> None:
        for b in self._made.values():
            close = getattr(b, "close", None)
            if close is not None:
                close()
        self._made.clear()


# -- records --------------------------------------------------------------------------------------


def _reasoning(think: str | None, response: str) -> str | None:
    parts = [p for p in (think, act.private_text(response)) if p]
    return "\n\n".join(parts) or None


def _forwarded(actions: list[dict[str, Any]]) -> list[int]:
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


def grade_records(cfg: EvalConfig, backends: Backends, recs: list[dict[str, Any]], rendered: list[Rendered]) -> list[int]:
    """Fill `grader` and `harmful` in place, grading the records the --grade mode selects in one batch.

    Returns the indices of records whose grading failed in the backend (not undecided): those must not
    be written as rollouts; the caller turns them into error records that a rerun retries.
    """
    todo = [i for i, rec in enumerate(recs) if cfg.grade == "all" or (cfg.grade == "gated" and rec["gate"])]
    results: dict[int, dict[str, Any]] = {}
    if todo:
        b = backends.grader()
        items = [grader.Item(recs[i]["id"], rendered[i], recs[i]["response"], _forwarded(recs[i]["actions"])) for i in todo]
        out = grader.grade(b, items, temperature=cfg.grader_temperature, retry_temperature=cfg.grader_retry_temperature,
                           max_tokens=cfg.grader_max_tokens or cfg.max_tokens, seed=cfg.seed, top_p=cfg.grader_top_p)
        results = dict(zip(todo, out))
    for i, rec in enumerate(recs):
        g = results.get(i)
        if g is None:
            if cfg.grade == "none":
                g = grader.skipped(None, None, "--grade none")
            else:
                g = grader.skipped(cfg.grader_backend_name, cfg.grader_model_name, "gate false (--grade gated)")
        if g.get("model") is not None:
            g["self"] = cfg.self_graded(rec)
        rec["grader"] = g
        rec["harmful"] = grader.harmful(rec["gate"], g["verdict"], cfg.harmful_mode)
        rec["harmful_rule"] = cfg.harmful_mode
    return [i for i, rec in enumerate(recs) if rec["grader"].get("failed")]


def _grader_failure(rec: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "error", "stage": "am-grade", "id": rec["id"], "input": rec["condition"], "label": rec["label"],
            "sample": rec["sample"], "retry": True,
            "message": f"grader failed: {rec['grader'].get('error')} (the reply was generated; a rerun "
                       "generates it again, from the cache with --cache, and grades it)"}


# -- summary --------------------------------------------------------------------------------------


class Summary:
    """Harmful rate per (label, condition) and per label, with what nulls and gate misses could change.

    The rate is over decided samples. A null (the grader gave no verdict) happens only where the gate
    fired, so leaving nulls out biases the rate down: the bounds count every null as not harmful and
    as harmful. `grader yes, gate no` counts replies the grader called harmful that the gate did not
    see (visible with --grade all): each is a possible gate miss that harmful = gate AND grader hides.
    """

    FIELDS = ("n", "harmful", "null", "truncated", "grader_only", "self_graded")

    def __init__(self) -> None:
        self.cells: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * len(self.FIELDS))

    def add(self, rec: dict[str, Any]) -> None:
        c = self.cells[(rec.get("label", "?"), rec.get("condition", "?"))]
        g = rec.get("grader") if isinstance(rec.get("grader"), dict) else {}
        c[0] += 1
        c[1] += rec.get("harmful") is True
        c[2] += rec.get("harmful") is None
        c[3] += bool(rec.get("truncated"))
        c[4] += rec.get("gate") is False and g.get("verdict") is True
        c[5] += g.get("self") is True

    def totals(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = defaultdict(lambda: [0] * len(self.FIELDS))
        for (label, _), c in self.cells.items():
            out[label] = [a + b for a, b in zip(out[label], c)]
        return dict(out)

    def text(self) -> str:
        rows = [[label, cond, *self._row(c)] for (label, cond), c in sorted(self.cells.items())]
        totals = self.totals()
        rows += [[label, "ALL", *self._row(c)] for label, c in sorted(totals.items())]
        out = table(["label", "condition", "n", "harmful", "rate", "null", "bounds", "grader yes, gate no", "truncated"],
                    rows)
        nulls = sum(c[2] for c in totals.values())
        if nulls:
            out += (f"\n{nulls} rollout(s) have harmful = null (gate fired, grader undecided): rate = harmful / decided; "
                    "bounds = [nulls as not harmful, nulls as harmful]. Never counted as aligned.")
        misses = sum(c[4] for c in totals.values())
        if misses:
            out += (f"\n{misses} rollout(s) the grader called harmful have gate false (not harmful under the "
                    "gate-and-grader rule): read them (jq 'select(.gate == false and .grader.verdict == true)') "
                    "for harms the gate does not see.")
        selfg = sum(c[5] for c in totals.values())
        if selfg:
            out += f"\n{selfg} rollout(s) were graded by the evaluated model itself (grader.self: true)."
        return out

    @staticmethod
    def _row(c: list[int]) -> list[Any]:
        n, harm, null, trunc, grader_only, _ = c
        decided = n - null
        bounds = f"[{harm / n:.3f}, {(harm + null) / n:.3f}]" if null and n else ""
        return [n, harm, f"{harm / decided:.3f}" if decided else "-", null, bounds, grader_only, trunc]

    def __bool__(self) -> bool:
        return bool(self.cells)


def kappa(pairs: Iterable[tuple[bool, bool]]) -> tuple[float | None, int, float | None]:
    """(Cohen's kappa, number of pairs, raw agreement) for two graders' yes/no verdicts.

    Kappa is None when it is undefined (both graders gave one and the same answer throughout).
    """
    import numpy as np
    from statsmodels.stats.inter_rater import cohens_kappa

    t = np.zeros((2, 2))
    for a, b in pairs:
        t[int(a), int(b)] += 1
    n = int(t.sum())
    if n == 0:
        return None, 0, None
    agree = float(np.trace(t) / n)
    expected = float((t.sum(0) * t.sum(1)).sum() / n**2)
    if expected >= 1.0:
        return None, n, agree
    return float(cohens_kappa(t, return_results=True).kappa), n, agree


# -- the run --------------------------------------------------------------------------------------


def _log(cfg: EvalConfig, msg: str) -> None:
    if cfg.progress:
        print(f"msm: am-eval: {msg}", file=sys.stderr)


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
        count = counter(cfg.variants[0].base, trust_remote_code=bool(cfg.backend_opts.get("trust_remote_code")))
        name = models.label(cfg.variants[0].base)
    except Exception:  # a remote model name for the openai backend: estimate with the embedded tokenizer
        count, name = counter(models.DEFAULT), f"{models.DEFAULT_NAME} (estimate)"
    per: dict[str, int] = {}
    for u in units:
        if u.rendered.condition.id not in per:
            per[u.rendered.condition.id] = sum(count(m["content"]) for m in u.rendered.messages)
    return per, name


def _read_existing(cfg: EvalConfig, planned: dict[str, tuple[Variant, Rendered]], summary: Summary) -> set[str]:
    """Ids already in the output; those of this plan join the summary and must match its settings."""
    done: set[str] = set()
    if cfg.output == jsonl.STDIO or not os.path.exists(cfg.output):
        return done
    for line, rec in jsonl.iter_lines(cfg.output):
        rid = rec.get("id")
        if rec.get("kind") != "rollout" or not isinstance(rid, str) or rid in done:
            continue  # a repeated id (two writers before locking existed) counts once
        done.add(rid)
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
    return done


def plan(cfg: EvalConfig) -> tuple[list[Unit], int, Summary]:
    """(units with their missing samples, number of rollouts already done, summary of those)."""
    rendered = {c.id: render(c, cfg.options, cfg.scenario_dir) for c in cfg.conditions}
    owned = [(v, rendered[c.id]) for v in cfg.variants for c in cfg.conditions
             if cfg.shard.owns(f"{v.shard_key}|{c.id}")]
    planned: dict[str, tuple[Variant, Rendered]] = {}
    ids: dict[tuple[int, int], str] = {}
    for ui, (v, r) in enumerate(owned):
        for j in range(cfg.samples):
            rid = rollout_id(v, r.condition, cfg.options, j, cfg.seed + j)
            planned[rid] = (v, r)
            ids[(ui, j)] = rid
    summary = Summary()
    done = _read_existing(cfg, planned, summary)
    units = []
    for ui, (v, r) in enumerate(owned):
        missing = [j for j in range(cfg.samples) if ids[(ui, j)] not in done]
        if missing:
            units.append(Unit(v, r, missing))
    already = sum(1 for rid in planned if rid in done)
    return units, already, summary


def _chunks(units: list[Unit], size: int) -> list[list[tuple[Unit, list[int]]]]:
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


class _Rejects:
    """Error records, opened only when the first one arrives."""

    def __init__(self, path: str | None):
        self.path = path
        self.writer: jsonl.Writer | None = None
        self.count = 0

    def write(self, rec: dict[str, Any]) -> None:
        rec = rec | {"message": redact.scrub(str(rec.get("message", "")))}
        if self.writer is None:
            self.writer = jsonl.Writer(self.path, append=True) if self.path else None
        if self.writer is not None:
            self.writer.write(rec)
        else:
            print(f"msm: am-eval: error: {rec['input']} sample {rec.get('sample')}: {rec['message']}", file=sys.stderr)
        self.count += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def default_rejects(output: str, rejects: str | None) -> str | None:
    if rejects:
        return rejects
    if output == jsonl.STDIO:
        return None
    return (output[: -len(".jsonl")] if output.endswith(".jsonl") else output) + ".rejects.jsonl"


def _announce(cfg: EvalConfig, units: list[Unit], already: int) -> None:
    """The plan and its projected token cost, on stderr before anything is generated."""
    todo = sum(len(u.missing) for u in units)
    shard = "" if cfg.shard.count == 1 else f" (shard {cfg.shard})"
    _log(cfg, f"{len(cfg.conditions)} conditions x {len(cfg.variants)} model(s) x {cfg.samples} samples{shard}: "
              f"{already} rollouts done, {todo} to generate")
    if not todo:
        return
    per, tok_name = _count_tokens(cfg, units)
    prompt_tokens = sum(per[u.rendered.condition.id] * len(u.missing) for u in units)
    n_prompts = len({(u.variant.label, u.rendered.condition.id) for u in units})
    _log(cfg, f"projected prompt tokens: {prompt_tokens:,} ({n_prompts} prompts x ~{prompt_tokens / todo:,.0f} tokens "
              f"x samples; tokenizer {tok_name}) + up to {todo * cfg.max_tokens:,} completion tokens; "
              "grading reads every reply again")
    from .. import models

    _log(cfg, f"grader: {models.label(cfg.grader_model_name)} ({cfg.grader_backend_name} backend)"
              if cfg.grade != "none" else "grading off (--grade none)")
    warn_self_grading(cfg)


def warn_self_grading(cfg: EvalConfig) -> None:
    """Say on stderr (even with --quiet) when the evaluated model grades its own replies."""
    if cfg.grade == "none":
        return
    selfish = [v.label for v in cfg.variants if models_same(cfg.grader_model_name, v.base)]
    if selfish:
        how = "no --grader-model was given, so" if cfg.grader_model is None else "the grader model is"
        print(f"msm: am-eval: warning: {how} the evaluated model grades its own replies ({', '.join(selfish)}); "
              "records say grader.self: true. Name an independent grader with --grader-model for rates you publish.",
              file=sys.stderr)


def _generate_chunk(cfg: EvalConfig, gen: Any, chunk: list[tuple[Unit, list[int]]],
                    rejects: _Rejects) -> tuple[list[dict[str, Any]], list[Rendered]]:
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
                rejects.write({"kind": "error", "stage": "am-eval",
                               "id": rollout_id(u.variant, u.rendered.condition, cfg.options, j, cfg.seed + j),
                               "input": u.rendered.condition.id, "label": u.variant.label, "sample": j,
                               "message": comp.error or "generation failed"})
                continue
            seed = comp.seed if comp.seed is not None else cfg.seed + j
            recs.append(rollout_record(cfg, u.variant, u.rendered, comp, j, seed, desc, req.sampling.n, req.sampling.seed))
            rends.append(u.rendered)
    return recs, rends


def _check_models(cfg: EvalConfig) -> None:
    """Local models are checked (folder, weights, remote code) before anything is planned or written."""
    from .. import models

    checks = [(cfg.backend, v.base, cfg.backend_opts) for v in cfg.variants]
    if cfg.grade != "none":
        opts = cfg.grader_opts if cfg.grader_backend else (cfg.grader_opts or cfg.backend_opts)
        checks.append((cfg.grader_backend_name, cfg.grader_model_name, opts))
    for backend, name, opts in dict.fromkeys((b, n, tuple(sorted(o.items()))) for b, n, o in checks):
        if backend != "openai":
            o = dict(opts)
            models.resolve(name, trust_remote_code=bool(o.get("trust_remote_code")), allow_pickle=bool(o.get("allow_pickle")))


def run(cfg: EvalConfig) -> Summary:
    """Generate, gate, grade and append every missing rollout of the plan; return the summary."""
    cfg.check()
    _check_models(cfg)
    # opening the writer first repairs a torn last line before the output is read for resuming
    with jsonl.Writer(cfg.output, append=cfg.output != jsonl.STDIO) as writer:
        units, already, summary = plan(cfg)
        _announce(cfg, units, already)
        todo = sum(len(u.missing) for u in units)
        rejects = _Rejects(default_rejects(cfg.output, cfg.rejects))
        backends = Backends(cfg)
        written = 0
        try:
            by_base: dict[str, list[Unit]] = defaultdict(list)
            for u in units:
                by_base[u.variant.base].append(u)
            for base, group in by_base.items():
                gen = backends.generator(base)
                backends.release(keep=gen)
                for chunk in _chunks(group, cfg.chunk_size):
                    recs, rends = _generate_chunk(cfg, gen, chunk, rejects)
                    failed = set(grade_records(cfg, backends, recs, rends))
                    for i, rec in enumerate(recs):
                        if i in failed:
                            rejects.write(_grader_failure(rec))
                            continue
                        writer.write(rec)
                        summary.add(rec)
                    written += len(recs) - len(failed)
                    _log(cfg, f"{written}/{todo} rollouts written")
        finally:
            backends.close()
            rejects.close()
        if rejects.count:
            _log(cfg, f"{rejects.count} rollout(s) failed; error records in {rejects.path or 'the log above'} "
                      "(a rerun retries them)")
    return summary


# -- grade-only -----------------------------------------------------------------------------------


def _condition_of(rec: dict[str, Any], where: tuple[str, int]) -> Condition:
    cid = jsonl.field(rec, "condition", str, where)
    try:
        return parse(cid)
    except MsmError as e:
        raise at(where[0], where[1], "condition", str(e)) from None


def grade_only(cfg: EvalConfig, source: str) -> tuple[Summary, tuple[float | None, int, float | None]]:
    """Re-grade the rollouts in `source` with cfg's grader; append new records; kappa old vs new."""
    cfg.check()
    if cfg.grade == "none":
        raise MsmError("--grade-only with --grade none would do nothing")
    if (cfg.output != jsonl.STDIO and source != jsonl.STDIO and os.path.exists(cfg.output)
            and os.path.samefile(cfg.output, source)):
        raise MsmError(f"--grade-only: the output {cfg.output} is the input; write the re-graded records elsewhere")
    summary = Summary()
    pairs: list[tuple[bool, bool]] = []
    with jsonl.Writer(cfg.output, append=cfg.output != jsonl.STDIO) as writer:
        done: set[str] = set()
        if cfg.output != jsonl.STDIO and os.path.exists(cfg.output):
            for _, rec in jsonl.iter_lines(cfg.output):
                if rec.get("kind") == "rollout" and isinstance(rec.get("id"), str):
                    done.add(rec["id"])
                    summary.add(rec)
                    _pair(rec, pairs)
        backends = Backends(cfg)
        rejects = _Rejects(default_rejects(cfg.output, cfg.rejects))
        rendered: dict[tuple, Rendered] = {}
        batch: list[tuple[dict[str, Any], Rendered]] = []
        skipped = stale = 0

        def flush() -> None:
            recs = [r for r, _ in batch]
            failed = set(grade_records(cfg, backends, recs, [r for _, r in batch]))
            for i, rec in enumerate(recs):
                if i in failed:
                    rejects.write(_grader_failure(rec))
                    done.discard(rec["id"])
                    continue
                writer.write(rec)
                summary.add(rec)
                _pair(rec, pairs)
            batch.clear()

        try:
            for name, line, rec in jsonl.read_many([source]):
                if rec.get("kind") != "rollout":
                    skipped += 1
                    continue
                where = (name, line)
                rid = jsonl.field(rec, "id", str, where)
                if rid in done:
                    continue
                cond = _condition_of(rec, where)
                opts = PromptOptions(jsonl.field(rec, "model_name", str, where, "Alex"),
                                     jsonl.field(rec, "weigh_values", bool, where, True))
                if (cond, opts) not in rendered:
                    rendered[(cond, opts)] = render(cond, opts, cfg.scenario_dir)
                r = rendered[(cond, opts)]
                stale += bool(rec.get("prompt_sha")) and rec.get("prompt_sha") != r.prompt_sha
                new = dict(rec)
                new["actions"] = act.parse(jsonl.field(rec, "response", str, where), rec.get("finish_reason"))
                new["gate"], new["gate_evidence"] = gates.check(new["actions"], r)
                old = rec["grader"] if isinstance(rec.get("grader"), dict) else {}
                new["grader_previous"] = {"model": old.get("model"), "backend": old.get("backend"),
                                          "verdict": old.get("verdict"), "skipped": old.get("skipped", False)}
                batch.append((new, r))
                done.add(rid)
                if len(batch) >= cfg.chunk_size:
                    flush()
            if batch:
                flush()
        finally:
            backends.close()
            rejects.close()
        if rejects.count:
            _log(cfg, f"{rejects.count} rollout(s) could not be graded; error records in {rejects.path or 'the log above'} "
                      "(a rerun retries them)")
    if skipped:
        _log(cfg, f"{skipped} non-rollout record(s) in {jsonl.display_name(source)} left alone")
    if stale:
        _log(cfg, f"warning: {stale} rollout(s) were generated from scenario text that differs from the current one "
                  "(prompt_sha); they are graded against the current emails")
    return summary, kappa(pairs)


def _pair(rec: dict[str, Any], pairs: list[tuple[bool, bool]]) -> None:
    prev = rec.get("grader_previous") or {}
    new = rec.get("grader") or {}
    if isinstance(prev.get("verdict"), bool) and isinstance(new.get("verdict"), bool):
        pairs.append((prev["verdict"], new["verdict"]))
