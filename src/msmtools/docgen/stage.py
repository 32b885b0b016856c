"""One pipeline stage: send a prompt per item, parse each reply, retry failures a bounded number of times.

Every item is isolated: a reply that is cut off, unparseable or a backend error affects that item
only. Attempt k of an item uses a seed derived from (base seed, stage, item key, k), so a retry samples
something new, a rerun asks exactly the same questions (and the cache answers them), and results do
not depend on batching or sharding. After `retries` extra attempts an item becomes an error record.
A reply cut off by `max_tokens` is retried with 1.5x the budget (up to 2.25x); it is never accepted,
except where the user asked for `--keep-truncated`, and then its record says `truncated: true`.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import redact
from ..ids import stable_id
from ..llm import Completion, Request, Sampling
from . import parse
from .parse import ParseError

RAW_KEEP = 4000  # characters of a failed reply kept on its error record, for debugging


def derive_seed(base: int, stage: str, key: str, attempt: int) -> int:
    return int(stable_id(base, stage, key, attempt, length=8), 16) % (2**31 - 1)


@dataclass
class Task:
    key: str  # stable id of the input item
    messages: list[dict[str, str]]
    parse: Callable[[Completion], Any]  # raises ParseError when the reply has the wrong shape
    max_tokens: int
    keep_truncated: bool = False  # accept a reply cut off by max_tokens (its record says truncated: true)


def list_task(key: str, messages: list[dict[str, str]], fields: tuple[str, ...], limit: int, max_tokens: int,
              *, max_len: int = 300, min_len: int = 1) -> Task:
    """A task whose reply is a list (JSON, or a plain numbered list) of items with `fields`, the first
    required; the value is at most `limit` clean items, and a reply with none is a ParseError."""
    prompt = "\n".join(m["content"] for m in messages)

    def parse_list(c: Completion) -> list[dict[str, Any]]:
        got = parse.unique(parse.items(c.text, fields), fields[0], limit, max_len=max_len, prompt=prompt)
        got = [g for g in got if len(g[fields[0]]) >= min_len]
        if not got:
            raise ParseError(f"no usable {fields[0]} items (empty, over-long, duplicated or copied from the example)")
        return got

    return Task(key, messages, parse_list, max_tokens)


@dataclass
class Done:
    value: Any
    completion: Completion
    sampling: Sampling
    attempt: int
    prompt_sha: str

    def generator(self, backend: str, model: str) -> dict[str, Any]:
        s = self.sampling
        return {"backend": backend, "model": model,
                "sampling": {"temperature": s.temperature, "top_p": s.top_p, "max_tokens": s.max_tokens},
                "seed": s.seed, "prompt_sha": self.prompt_sha, "attempt": self.attempt}


@dataclass
class StageCount:
    items: int = 0
    ok: int = 0
    failed: int = 0
    retried: int = 0
    truncated: int = 0  # replies cut off by max_tokens (each attempt counts)
    fallback: int = 0


@dataclass
class Runner:
    llm: Any  # a Backend (normally a CachedBackend)
    label: str  # model label for provenance
    seed: int = 0
    temperature: float = 1.0
    top_p: float = 1.0
    retries: int = 2
    counts: dict[str, StageCount] = field(default_factory=dict)

    def run(self, stage: str, tasks: list[Task]) -> tuple[dict[str, Done], list[dict[str, Any]]]:
        """({key: Done} for items that parsed, error records for the rest); never raises on a bad reply."""
        count = self.counts.setdefault(stage, StageCount())
        pending: dict[str, Task] = {}
        for t in tasks:
            pending.setdefault(t.key, t)
        count.items += len(pending)
        budget = {k: t.max_tokens for k, t in pending.items()}
        done: dict[str, Done] = {}
        last: dict[str, tuple[str, Completion, Sampling, int]] = {}
        for attempt in range(self.retries + 1):
            if not pending:
                break
            if attempt:
                count.retried += len(pending)
            keys = list(pending)
            samplings = [Sampling(temperature=self.temperature, top_p=self.top_p, max_tokens=budget[k],
                                  seed=derive_seed(self.seed, stage, k, attempt)) for k in keys]
            requests = [Request(pending[k].messages, s, key=f"{stage}:{k}") for k, s in zip(keys, samplings)]
            desc = stage if attempt == 0 else f"{stage} (retry {attempt})"
            outs = self.llm.generate(requests, desc=desc)
            for k, s, out in zip(keys, samplings, outs):
                c = out[0]
                task = pending[k]
                try:
                    if c.error or c.finish_reason == "error":
                        raise ParseError(f"backend error: {c.error or 'no reply'}")
                    if c.truncated:
                        count.truncated += 1
                    if c.truncated and not task.keep_truncated:
                        budget[k] = min(int(s.max_tokens * 1.5), int(task.max_tokens * 2.25))
                        raise ParseError(f"reply cut off at max_tokens={s.max_tokens}")
                    value = task.parse(c)
                except ParseError as e:
                    last[k] = (str(e), c, s, attempt)
                    continue
                done[k] = Done(value, c, s, attempt, stable_id(task.messages))
                del pending[k]
        count.ok += len(done)
        count.failed += len(pending)
        errors = []
        for k, task in pending.items():
            msg, c, s, attempt = last[k]
            errors.append({
                "kind": "error", "id": stable_id("error", stage, k), "stage": stage, "input_id": k,
                "message": redact.scrub(f"{msg} (after {attempt + 1} attempts)"), "attempts": attempt + 1,
                "truncated": bool(c.truncated), "finish_reason": c.finish_reason,
                "raw": redact.clip(c.raw if c.raw is not None else c.text or "", RAW_KEEP),
                "generator": Done(None, c, s, attempt, stable_id(task.messages)).generator(self.llm.name, self.label),
            })
        return done, errors


class Pipeline:
    """What the document and chat pipelines share: the runner, error records and fallback counts."""

    def __init__(self, runner: Runner, prompts: Any, opts: Any, *, count_tokens: Callable[[str], int],
                 owns: Callable[[str], bool] = lambda key: True,
                 plan_lock: Callable[[], Any] = contextlib.nullcontext, log: Callable[[str], None] | None = None):
        self.r = runner
        self.p = prompts
        self.o = opts
        self.count_tokens = count_tokens
        self.owns = owns  # does this shard own the work unit with this key?
        self.plan_lock = plan_lock
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.errors: list[dict[str, Any]] = []
        self.fallbacks: dict[str, int] = {}
        self.planned = 0  # items this shard is responsible for at the last stage (its inputs)

    def _err(self, errs: list[dict[str, Any]], spec: Any, context: dict[str, dict[str, Any]] | None = None) -> None:
        """Add error records, with the spec and each item's context (domain, idea, query, ...)."""
        for e in errs:
            e.update({"spec_id": spec.spec_id, "spec_sha": spec.sha, **(context or {}).get(e["input_id"], {})})
        self.errors.extend(errs)

    def _fell_back(self, stage: str, k: int = 1) -> None:
        self.fallbacks[stage] = self.fallbacks.get(stage, 0) + k
        self.r.counts.setdefault(stage, StageCount()).fallback += k
