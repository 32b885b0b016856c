"""The AFT chat pipeline: spec -> conversation domains -> user queries -> near-duplicate removal ->
responses (spec in the system prompt, reasoning in <think>) -> LLM judge -> chat records.

Stored chats carry no system prompt: the spec shapes the response but is not part of the training
example. The judge is its own model and backend if the user says so; its verdict and reason stay on
the record. A judge reply that cannot be read is retried once and then gives verdict null; such chats
are counted apart and, unless --keep-undecided, go to the rejects file with the excluded ones.
Domains, queries and dedup are shared by all shards (computed under the cache lock); responses and
judging are split between shards by chat id.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..ids import stable_id
from ..llm import Completion
from . import parse
from .dedup import cached_near_duplicates
from .documents import SpecIn
from .outline import Outline
from .prompts import Prompts
from .stage import Pipeline, Runner, StageCount, Task, list_task

VERDICTS = ("include", "exclude")


@dataclass
class ChatOptions:
    domains: int = 3
    queries: int = 4
    dedup_threshold: float = 0.91
    response_max_tokens: int = 1024
    judge: bool = True
    judge_max_tokens: int = 256
    keep_undecided: bool = False
    reasoning: str = "keep"  # keep | strip
    language: str = "English"
    fallback: bool = True
    context: str = "spec"  # the queries prompt shows the whole spec; none: a short prompt without it (small models)
    outline: str = "model"  # spec: conversation domains are the spec's section titles (no model call)
    keep_truncated: bool = False  # keep responses cut off by the token limit, marked truncated: true
    target_chats: int | None = None  # keep this many (in id order); say so when fewer pass


def parse_verdict(c: Completion) -> tuple[str, str | None]:
    """(verdict, reason) from `<verdict>...</verdict>` (or a JSON object with "verdict"); else ParseError."""
    text = c.text
    m = re.search(r"<verdict>\s*(\w+)\s*</verdict>", text, re.I)
    verdict = m.group(1).lower() if m else None
    if verdict is None:
        obj = parse._loads(text.strip()) if text.strip().startswith("{") else None
        if isinstance(obj, dict) and isinstance(obj.get("verdict"), str):
            verdict = obj["verdict"].strip().lower()
            reason = obj.get("reason") if isinstance(obj.get("reason"), str) else None
            if verdict in VERDICTS:
                return verdict, reason
    if verdict not in VERDICTS:
        raise parse.ParseError("no <verdict>include</verdict> or <verdict>exclude</verdict> in the judge's reply")
    r = re.search(r"<reason>(.*?)</reason>", text, re.S | re.I)
    return verdict, (r.group(1).strip() if r else None)


class ChatPipeline(Pipeline):
    def __init__(self, runner: Runner, judge: Runner | None, prompts: Prompts, opts: ChatOptions, *,
                 count_tokens: Callable[[str], int], select: Callable[[list[str]], set[str]] = set,
                 plan_lock: Callable[[], Any] = contextlib.nullcontext, cache_folder: Path | None = None,
                 log: Callable[[str], None] | None = None):
        super().__init__(runner, prompts, opts, count_tokens=count_tokens, select=select, plan_lock=plan_lock, log=log)
        self.j = judge
        self.cache_folder = cache_folder
        self.verdicts = {"include": 0, "exclude": 0, None: 0}


    def queries(self, spec: SpecIn) -> list[dict[str, Any]]:
        """Domains, their queries, near-duplicates removed: identical in every shard."""
        with self.plan_lock():
            refresh = getattr(self.r.llm, "refresh", None)
            if refresh is not None:
                refresh()
            return self._queries(spec)

    def domains(self, spec: SpecIn) -> tuple[list[str], str]:
        """(conversation domains, where they came from: model | spec-sections)."""
        o, names = self.o, {"model_name": spec.model_name, "provider_name": spec.provider_name}
        if o.outline == "spec":
            return Outline(spec.text, spec.sections).titles(o.domains), "spec-sections"
        key = stable_id("chat_domains", spec.sha, o.domains)
        msg = self.p.fill("chat_domains", spec=spec.text, count=o.domains, **names)
        done, errs = self.r.run("chat_domains", [list_task(key, [{"role": "user", "content": msg}], ("domain",),
                                                           o.domains, 100 + 40 * o.domains, max_len=150, min_len=3)])
        if key in done:
            return [d["domain"] for d in done[key].value], "model"
        if o.fallback:
            self._fell_back("chat_domains")
            titles = Outline(spec.text, spec.sections).titles(o.domains)
            short = (f"; warning: only {len(titles)} of the {o.domains} planned domains, so about "
                     f"{len(titles) / o.domains:.0%} of the planned chats" if len(titles) < o.domains else "")
            self.log(f"msm: {spec.spec_id}: chat domains: model reply unusable ({errs[0]['message']}); "
                     f"using the spec's section titles{short}")
            return titles, "spec-sections"
        self._err(errs, spec, {})
        return [], "model"

    def _queries(self, spec: SpecIn) -> list[dict[str, Any]]:
        o, names = self.o, {"model_name": spec.model_name, "provider_name": spec.provider_name}
        domains, source = self.domains(spec)
        if not domains:  # never a silent empty corpus
            msg = (f"no conversation domains: the model gave none and the spec has no section to fall back on "
                   f"({len(spec.sections)} sections)")
            self.log(f"msm: {spec.spec_id}: {msg}")
            self.errors.append({"kind": "error", "id": stable_id("error", "chat_domains", spec.sha), "stage": "chat_domains",
                                "input_id": spec.sha, "spec_id": spec.spec_id, "message": msg, "retry": True})
        ids = {d: stable_id("chat_domain", spec.sha, d) for d in domains}
        short = o.context == "none"  # a 135M model cannot write a JSON list after reading a whole spec

        def prompt(d: str) -> str:
            if short:
                return self.p.fill("queries_short", domain=d, count=o.queries, **names)
            return self.p.fill("queries", spec=spec.text, domain=d, count=o.queries, **names)

        tasks = [list_task(ids[d], [{"role": "user", "content": prompt(d)}],
                           ("query",), o.queries, 100 + 120 * o.queries, max_len=3000, min_len=8) for d in domains]
        done, errs = self.r.run("queries", tasks)
        self._err(errs, spec, {ids[d]: {"domain": d} for d in domains})
        items = [{"domain": d, "domain_source": source, "query": q["query"]} for d in domains if ids[d] in done
                 for q in done[ids[d]].value]
        for it in items:  # parse.unique already made queries unique within a domain
            it["id"] = stable_id("chat", spec.sha, it["domain"], it["query"])
        count = self.r.counts.setdefault("dedup", StageCount())
        count.items += len(items)
        dropped = cached_near_duplicates([it["query"] for it in items], o.dedup_threshold, self.cache_folder)
        for i, (j, sim) in sorted(dropped.items()):
            it = items[i]
            self.errors.append({"kind": "error", "id": stable_id("error", "dedup", it["id"]), "stage": "dedup",
                                "input_id": it["id"], "spec_id": spec.spec_id, "spec_sha": spec.sha,
                                "domain": it["domain"], "query": it["query"], "similar_to": items[j]["id"],
                                "similar_query": items[j]["query"], "similarity": sim,
                                "message": f"near-duplicate of an earlier query (cosine {sim} > {o.dedup_threshold})"})
        count.failed += len(dropped)
        count.ok += len(items) - len(dropped)
        return [it for i, it in enumerate(items) if i not in dropped]

    def run(self, spec: SpecIn) -> list[dict[str, Any]]:
        o = self.o
        queries = self.queries(spec)
        mine = self.select([q["id"] for q in queries])
        queries = [q for q in queries if q["id"] in mine]
        self.planned += len(queries)
        system = self.p.fill("response_system", spec=spec.text, model_name=spec.model_name,
                             provider_name=spec.provider_name, language=o.language)

        def parse_response(c: Completion) -> tuple[str, str | None]:
            if not c.text.strip():
                raise parse.ParseError("empty answer" + (" (only reasoning)" if c.reasoning else ""))
            return c.text.strip(), (c.reasoning.strip() if c.reasoning else None)

        tasks = [Task(q["id"], [{"role": "system", "content": system}, {"role": "user", "content": q["query"]}],
                      parse_response, o.response_max_tokens, keep_truncated=o.keep_truncated) for q in queries]
        done, errs = self.r.run("responses", tasks)
        self._err(errs, spec, {q["id"]: {"domain": q["domain"], "query": q["query"]} for q in queries})
        answered = [q for q in queries if q["id"] in done]
        judged = self._judge(spec, answered, done) if o.judge and self.j is not None else {}
        chats = []
        for q in answered:
            d = done[q["id"]]
            answer, reasoning = d.value
            if o.judge and self.j is not None:
                verdict, reason, jdone = judged[q["id"]]
                judge = {"verdict": verdict, "reason": reason, "model": self.j.label, "backend": self.j.llm.name,
                         "seed": jdone.sampling.seed if jdone else None,
                         "prompt_sha": jdone.prompt_sha if jdone else None}
            else:
                verdict, judge = None, {"verdict": None, "reason": "not judged (--no-judge)", "model": None}
            kept_reasoning = reasoning if o.reasoning == "keep" else None
            rec = {
                "kind": "chat", "id": q["id"], "spec_id": spec.spec_id, "spec_sha": spec.sha, "domain": q["domain"],
                "messages": [{"role": "user", "content": q["query"]}, {"role": "assistant", "content": answer}],
                "reasoning": kept_reasoning,
                "tokens": self.count_tokens(q["query"]) + self.count_tokens(answer)
                + (self.count_tokens(kept_reasoning) if kept_reasoning else 0),
                "truncated": bool(d.completion.truncated),
                "judge": judge, "language": o.language, "domain_source": q["domain_source"],
                "generator": {**d.generator(self.r.llm.name, self.r.label), "prompt_format": self.r.prompt_format,
                              "reasoning": o.reasoning,
                              "prompts_sha": self.p.sha},
            }
            if verdict == "include" or (verdict is None and (not o.judge or self.j is None or o.keep_undecided)):
                chats.append(rec)
                continue
            message = (f"judge: exclude: {judge['reason'] or 'no reason given'}" if verdict == "exclude"
                       else "judge gave no readable verdict (after 2 attempts)")
            self.errors.append({**rec, "kind": "error", "id": stable_id("error", "judge", q["id"]), "stage": "judge",
                                "input_id": q["id"], "message": message, "reasoning": reasoning})
        if o.target_chats:
            chats = self._to_target(spec, chats)
        return chats

    def _to_target(self, spec: SpecIn, chats: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Keep --target-chats chats in id order (a fixed, spec-independent choice); say when fewer passed."""
        n = self.o.target_chats
        if len(chats) < n:
            self.log(f"msm: {spec.spec_id}: warning: {len(chats):,} chats passed, short of --target-chats {n:,}: "
                     "raise --queries or --domains and rerun (the cache keeps what is done)")
            return chats
        order = sorted(chats, key=lambda c: c["id"])
        for c in order[n:]:
            self.errors.append({**c, "kind": "error", "id": stable_id("error", "target-chats", c["id"]),
                                "stage": "target-chats", "input_id": c["id"],
                                "message": f"not kept: the corpus had reached --target-chats {n}"})
        keep = {c["id"] for c in order[:n]}
        return [c for c in chats if c["id"] in keep]

    def _judge(self, spec: SpecIn, answered: list[dict[str, Any]], done: dict[str, Any]) -> dict[str, tuple]:
        tasks = []
        for q in answered:
            answer, reasoning = done[q["id"]].value
            msg = self.p.fill("judge", spec=spec.text, query=q["query"], reasoning=reasoning or "(none)", answer=answer,
                              model_name=spec.model_name, provider_name=spec.provider_name)
            tasks.append(Task(q["id"], [{"role": "user", "content": msg}], parse_verdict, self.o.judge_max_tokens))
        jdone, jerrs = self.j.run("judge", tasks)
        failed = {e["input_id"]: e for e in jerrs}
        out = {}
        for q in answered:
            if q["id"] in jdone:
                verdict, reason = jdone[q["id"]].value
                out[q["id"]] = (verdict, reason, jdone[q["id"]])
            else:
                out[q["id"]] = (None, f"unreadable judge reply: {failed[q['id']]['message']}", None)
            self.verdicts[out[q["id"]][0]] += 1
        return out
