"""Running docgen end to end: read spec records, wrap the backends in the call cache, run a pipeline per
spec, write outputs and rejects atomically, and account for every item on stderr.

Outputs are rebuilt from the cache on every run, so a rerun writes the same files again without a
single model call, and a run killed at any point resumes with nothing lost and nothing duplicated.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import driver, jsonl, models
from ..errors import MsmError
from ..llm import registry
from ..llm.cache import CachedBackend
from ..llm.options import GenOptions
from .. import outputs
from ..outputs import temp_beside
from ..report import table
from .documents import SpecIn

@dataclass
class RunOptions:
    kind: str = "documents"
    output: str = "-"
    rejects: str | None = None
    stats: str | None = None
    cache: str | None = None
    chunk_size: int = 64
    model: str = models.DEFAULT
    gen: GenOptions = field(default_factory=GenOptions)
    judge_model: str | None = None
    judge_gen: GenOptions | None = None  # default: gen
    seed: int = 0
    temperature: float = 1.0
    top_p: float = 1.0
    judge_temperature: float = 0.7
    retries: int = 1
    tokenizer: str = models.DEFAULT
    prompts: str | None = None
    shard: str | None = None
    preview: bool = False
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def read_specs(path: str) -> list[SpecIn]:
    specs = []
    name = jsonl.display_name(path)
    for lineno, rec in jsonl.iter_lines(path):
        where = (name, lineno)
        kind = rec.get("kind", "spec")
        if kind != "spec":
            raise MsmError(f"{name}:{lineno}: kind: expected a spec record from `msm spec-render`, got {kind!r}")
        sections = jsonl.field(rec, "sections", list, where)
        for i, s in enumerate(sections):
            if not isinstance(s, dict) or not isinstance(s.get("id"), str) or not isinstance(s.get("text"), str):
                raise MsmError(f"{name}:{lineno}: sections[{i}]: expected an object with string 'id' and 'text'")
        specs.append(SpecIn(spec_id=jsonl.field(rec, "spec_id", str, where), sha=jsonl.field(rec, "sha256", str, where),
                            text=jsonl.field(rec, "text", str, where), sections=sections,
                            model_name=jsonl.field(rec, "model_name", str, where),
                            provider_name=jsonl.field(rec, "provider_name", str, where)))
    if not specs:
        raise MsmError(f"{name}: no spec records (pipe in `msm spec-render SPEC`)")
    return specs


PASSAGE_MIN_CHARS = 80  # shorter paragraphs (a heading echo, a one-line list item) are not passages


def passages(specs_path: str, opts: RunOptions) -> int:
    """--kind passages: the spec's own paragraphs as documents, no model (toy runs, controls, a baseline
    corpus for "the spec itself" against generated documents)."""
    from ..ids import stable_id
    from ..tokens import counter

    outputs.check([("-o", opts.output)], [("", specs_path)])
    count = counter(opts.tokenizer, trust_remote_code=opts.gen.trust_remote_code)
    recs = []
    for spec in read_specs(specs_path):
        for sec in spec.sections:
            for k, para in enumerate(p.strip() for p in sec["text"].split("\n\n")):
                if len(para) < PASSAGE_MIN_CHARS:
                    continue
                recs.append({"kind": "doc", "id": stable_id("passage", spec.sha, sec["id"], k), "spec_id": spec.spec_id,
                             "spec_sha": spec.sha, "domain": sec.get("title") or sec["id"], "subdomain": None,
                             "doc_type": "spec passage", "idea": None, "text": para, "tokens": count(para),
                             "truncated": False, "generator": {"backend": None, "model": None, "kind": "passages"}})
    if not recs:
        raise MsmError(f"{jsonl.display_name(specs_path)}: no paragraph of {PASSAGE_MIN_CHARS}+ characters to use")
    jsonl.write(opts.output, recs)
    if opts.progress:
        print(f"msm: docgen: passages: {len(recs)} documents, {sum(r['tokens'] for r in recs):,} tokens", file=sys.stderr)
    return 0


def cache_folder(opts: RunOptions) -> Path:
    if opts.cache:
        return Path(opts.cache)
    if opts.output != jsonl.STDIO:
        return Path(opts.output).resolve().parent / ".msm-cache"
    return models.cache_dir() / "docgen-cache"


def run(specs_path: str, opts: RunOptions) -> int:
    from ..tokens import counter
    from .prompts import Prompts
    from .stage import Runner

    if opts.kind not in ("documents", "chats", "passages"):
        raise MsmError(f"--kind {opts.kind}: expected documents, chats or passages")
    if opts.kind == "passages":
        return passages(specs_path, opts)
    shard = jsonl.Shard.parse(opts.shard)
    if opts.extra.get("target_chats") and shard.count > 1:
        raise MsmError("--target-chats needs the whole corpus: run the shards without it, then rerun unsharded "
                       "with --target-chats (every chat comes from the shared cache, no model calls)")
    prompts = Prompts(opts.prompts)  # checked before any model is loaded
    rejects_path = driver.rejects_path(opts.output, opts.rejects)
    if not opts.preview:
        outputs.check([("-o", opts.output), ("--rejects", rejects_path), ("--stats", opts.stats)],
                      [("", specs_path)])
    specs = read_specs(specs_path)
    folder = cache_folder(opts)
    log = (lambda msg: print(msg, file=sys.stderr))

    backends = registry.Backends(progress=opts.progress)
    llm = CachedBackend(backends.get(opts.gen, opts.model), folder, chunk_size=opts.chunk_size, progress=opts.progress)
    runner = Runner(llm, models.label(opts.model), seed=opts.seed, temperature=opts.temperature, top_p=opts.top_p,
                    retries=opts.retries)
    judge_runner = None
    judge_llm = None
    if opts.kind == "chats" and opts.extra.get("judge", True):
        jm, jg = opts.judge_model or opts.model, opts.judge_gen or opts.gen
        judge_backend = backends.get(jg, jm)  # the generator's own backend when model and settings match
        judge_llm = llm if judge_backend is llm.backend else CachedBackend(judge_backend, folder, chunk_size=opts.chunk_size,
                                                                         progress=opts.progress)
        judge_runner = Runner(judge_llm, models.label(jm), seed=opts.seed + 1, temperature=opts.judge_temperature,
                              top_p=opts.top_p, retries=1)
    count_tokens = counter(opts.tokenizer, trust_remote_code=opts.gen.trust_remote_code)

    def plan_lock():
        return models.file_lock(folder / ".plan.lock")

    # rebuilt from the cache on every run: output and rejects are written whole (atomically) when it ends
    stage = driver.Stage("docgen", jsonl.STDIO if opts.preview else opts.output,
                         rejects=None if opts.preview else rejects_path, shard=shard,
                         append=False, progress=opts.progress)
    try:
        with stage:
            if opts.kind == "documents":
                pipe, summary = _documents(opts, runner, prompts, count_tokens, stage.mine, plan_lock, log)
            else:
                pipe, summary = _chats(opts, runner, judge_runner, prompts, count_tokens, stage.mine, plan_lock,
                                       folder, log)
            if opts.preview:
                for s in specs:
                    summary(s)
                return 0
            records: list[dict[str, Any]] = []
            for s in specs:
                records.extend(pipe.run(s))
            stage.counts.inputs = pipe.planned
            for rec in records + pipe.errors:
                stage.emit(rec)
    finally:
        llm.cache.close()
        if judge_llm is not None and judge_llm is not llm:
            judge_llm.cache.close()
        backends.close()
    _report(opts, runner, judge_runner, pipe, records, specs, llm, judge_llm, folder, rejects_path, log)
    if not records and pipe.errors:
        log(f"msm: docgen: error: no {opts.kind} were produced; {len(pipe.errors)} error record(s) "
            f"{'in ' + rejects_path if rejects_path else 'above'} say why (a rerun retries them)")
        return 1
    return 0


def _documents(opts, runner, prompts, count_tokens, select, plan_lock, log):
    from .documents import DocOptions, DocumentPipeline

    dopts = DocOptions(**{k: v for k, v in opts.extra.items() if k in DocOptions.__dataclass_fields__},
                       stop_at_target=jsonl.Shard.parse(opts.shard).count == 1)
    pipe = DocumentPipeline(runner, prompts, dopts, count_tokens=count_tokens, select=select, plan_lock=plan_lock, log=log)

    def preview(spec: SpecIn) -> None:
        subs = pipe.plan(spec, preview=True)
        rows = [[s["domain"], s["subdomain"], s["excerpt_source"], len(s["excerpt"])] for s in subs]
        log(table(["domain", "subdomain", "excerpt from", "excerpt chars"], rows))
        o = pipe.o  # as sized to the subdomains the plan really has
        n_sub, t, i = len(subs), o.doc_types, o.ideas
        docs = n_sub * t * i
        domains = len({s["domain"] for s in subs})
        calls = 1 + domains + 2 * n_sub + n_sub * t + docs
        per_doc = o.per_doc_tokens or o.doc_words * 1.33
        log(f"msm: {spec.spec_id}: preview: {domains} domains, {n_sub} subdomains x {t} document types x {i} ideas "
            f"= {docs:,} documents, about {int(docs * per_doc):,} tokens at {per_doc:,.0f} tokens per document, "
            f"about {calls:,} model calls before retries")
        if o.target_tokens and docs * per_doc < o.target_tokens:
            log(f"msm: {spec.spec_id}: warning: this plan reaches about {int(docs * per_doc):,} of the "
                f"{o.target_tokens:,} tokens asked for; leave --doc-types/--ideas out so they can grow")

    return pipe, preview


def _chats(opts, runner, judge_runner, prompts, count_tokens, select, plan_lock, folder, log):
    from .chats import ChatOptions, ChatPipeline

    copts = ChatOptions(**{k: v for k, v in opts.extra.items() if k in ChatOptions.__dataclass_fields__})
    pipe = ChatPipeline(runner, judge_runner, prompts, copts, count_tokens=count_tokens, select=select,
                        plan_lock=plan_lock, cache_folder=folder, log=log)

    def preview(spec: SpecIn) -> None:
        with plan_lock():
            domains, source = pipe.domains(spec)
        log(table(["domain", "from"], [[d, source] for d in domains]))
        n = len(domains) * copts.queries
        log(f"msm: {spec.spec_id}: preview: {len(domains)} domains x {copts.queries} queries = at most {n} chats "
            f"(before near-duplicate removal and judging), about {n * (2 if copts.judge else 1) + len(domains) + 1} "
            f"model calls before retries, each response up to {copts.response_max_tokens} tokens")

    return pipe, preview


def _report(opts, runner, judge_runner, pipe, records, specs, llm, judge_llm, folder, rejects_path, log) -> None:
    from .stats import corpus_stats, render

    rows = []
    for r in [runner] + ([judge_runner] if judge_runner else []):
        for stage, c in r.counts.items():
            rows.append([stage, c.items, c.ok, c.failed, c.retried, c.truncated, c.fallback])
    log(table(["stage", "items", "ok", "failed", "retried", "cut off", "fallback"], rows))
    unit = "documents" if opts.kind == "documents" else "chats"
    final = {"documents": ("documents", "target-tokens"), "chats": ("responses", "judge", "target-chats")}[opts.kind]
    at_final = sum(1 for e in pipe.errors if e["stage"] in final)
    upstream = {}
    for e in pipe.errors:
        if e["stage"] not in final:
            upstream[e["stage"]] = upstream.get(e["stage"], 0) + 1
    log(f"msm: docgen: {unit}: inputs {pipe.planned} = outputs {len(records)} + rejects {at_final}"
        + (f"; earlier stages rejected {sum(upstream.values())} items ({', '.join(f'{k} {v}' for k, v in upstream.items())})"
           if upstream else ""))
    if pipe.planned != len(records) + at_final:  # pragma: no cover - a bookkeeping bug, not bad input
        log(f"msm: warning: docgen: counts do not reconcile ({pipe.planned} != {len(records)} + {at_final})")
    if pipe.fallbacks:
        log(f"msm: docgen: fell back on the spec's own structure where the model's reply was unusable: "
            f"{', '.join(f'{k} {v}' for k, v in pipe.fallbacks.items())} (recorded on each record)")
    verdicts = getattr(pipe, "verdicts", None)
    if verdicts and judge_runner is not None:
        log(f"msm: docgen: judge verdicts: include {verdicts['include']}, exclude {verdicts['exclude']}, "
            f"unreadable (null) {verdicts[None]}" + (" (kept: --keep-undecided)" if pipe.o.keep_undecided else " (rejected)"))
    calls = llm.calls + (judge_llm.calls if judge_llm is not None and judge_llm is not llm else 0)
    hits = llm.hits + (judge_llm.hits if judge_llm is not None and judge_llm is not llm else 0)
    log(f"msm: docgen: model calls: {calls} new, {hits} from the cache ({folder})")
    if rejects_path:
        log(f"msm: docgen: {len(pipe.errors)} reject records in {rejects_path}")
    elif pipe.errors:
        log(f"msm: docgen: {len(pipe.errors)} reject records not saved (output is stdout): pass --rejects PATH "
            f"and rerun; the cache makes that free")
    names = tuple({x for s in specs for x in (s.model_name, s.provider_name)} | {r.get("subject_name") or "" for r in records})
    stats = corpus_stats(records, pipe.errors, ignore_names=names)
    if verdicts and judge_runner is not None:
        stats["judge_verdicts"] = {str(k).lower(): v for k, v in verdicts.items()}
    stats.update({"kind": opts.kind, "inputs": pipe.planned, "outputs": len(records), "rejects_final": at_final,
                  "rejects_earlier": upstream, "model_calls": calls, "cache_hits": hits,
                  "stages": {row[0]: dict(zip(["items", "ok", "failed", "retried", "cut_off", "fallback"], row[1:]))
                             for row in rows}})
    sharded = jsonl.Shard.parse(opts.shard).count > 1  # a shard holds a share of the corpus, never its target
    target = opts.extra.get("target_tokens") if opts.kind == "documents" and not sharded else None
    got = sum(r.get("tokens") or 0 for r in records)
    if target and got < target:
        log(f"msm: docgen: warning: the corpus has {got:,} tokens, short of --target-tokens {target:,}: raise "
            "--ideas/--doc-types (or leave them out so --target-tokens sizes them) and rerun; the cache keeps "
            "every document made")
    log(render(stats))
    if opts.stats:
        p = Path(opts.stats)
        fd, tmp = temp_beside(p)
        with os.fdopen(fd, "w") as f:
            json.dump(stats, f, indent=2)
        os.replace(tmp, p)
