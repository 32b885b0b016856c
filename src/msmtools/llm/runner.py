"""Ask, parse, retry with a derived seed, then an error record: the one loop every model-calling stage uses.

Docgen's stages, the AM grader, the LLM tagger and value-eval's judge all hand a `Runner` tasks (a
key, the messages, a parser that raises `ParseError` on a reply of the wrong shape, a token budget)
and get back `Done` results and error records. Every item is isolated: a reply that is cut off,
unparseable or a backend error affects that item only.

One seed scheme: attempt k of the item `key` in `stage` is sampled with
`derive_seed(base, stage, key, k)`, so a retry samples something new, a rerun asks exactly the same
questions (and a cache answers them), and results do not depend on batching, sharding or order. A
retry runs at least at `retry_temperature` when one is set (a greedy grader would repeat itself). A
reply cut off by `max_tokens` is retried with 1.5x the budget (up to 2.25x) unless the task keeps
truncated replies. After `retries` extra attempts an item becomes an error record whose `failure`
says why: `backend` (the backend gave no reply: a rerun should try again), `truncated` or `parse`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import redact
from ..ids import stable_id
from .base import Completion, Request, Sampling

RAW_KEEP = 4000  # characters of a failed reply kept on its error record, for debugging


class ParseError(ValueError):
    """The reply does not have the shape the stage asked for."""


def derive_seed(base: int, stage: str, key: str, attempt: int) -> int:
    return int(stable_id(base, stage, key, attempt, length=8), 16) % (2**31 - 1)


@dataclass
class Task:
    key: str  # stable id of the input item
    messages: list[dict[str, str]]
    parse: Callable[[Completion], Any]  # raises ParseError when the reply has the wrong shape
    max_tokens: int
    keep_truncated: bool = False  # accept (parse) a reply cut off by max_tokens; its record says truncated: true
    adapter: str | None = None


@dataclass
class Done:
    value: Any
    completion: Completion
    sampling: Sampling
    attempt: int
    prompt_sha: str
    seeds: list[int] = field(default_factory=list)  # every attempt's seed, this one last

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
    llm: Any  # a Backend (often a CachedBackend)
    label: str  # model label for provenance
    seed: int = 0
    temperature: float = 1.0
    top_p: float = 1.0
    retries: int = 2
    retry_temperature: float | None = None
    counts: dict[str, StageCount] = field(default_factory=dict)

    @property
    def prompt_format(self) -> str | None:
        """How the backend turns messages into a prompt (llm.base.prompt_format); None where a server does."""
        describe = getattr(self.llm, "describe", None)
        return describe().get("prompt_format") if describe else None

    def sampling(self, stage: str, key: str, attempt: int, max_tokens: int) -> Sampling:
        t = self.temperature if attempt == 0 or self.retry_temperature is None else max(self.temperature,
                                                                                          self.retry_temperature)
        return Sampling(temperature=t, top_p=self.top_p, max_tokens=max_tokens,
                        seed=derive_seed(self.seed, stage, key, attempt))

    def run(self, stage: str, tasks: list[Task]) -> tuple[dict[str, Done], list[dict[str, Any]]]:
        """({key: Done} for items that parsed, error records for the rest); never raises on a bad reply."""
        count = self.counts.setdefault(stage, StageCount())
        pending: dict[str, Task] = {}
        for t in tasks:
            pending.setdefault(t.key, t)
        count.items += len(pending)
        budget = {k: t.max_tokens for k, t in pending.items()}
        seeds: dict[str, list[int]] = {k: [] for k in pending}
        done: dict[str, Done] = {}
        last: dict[str, tuple[str, str, Completion, Sampling, int]] = {}
        for attempt in range(self.retries + 1):
            if not pending:
                break
            if attempt:
                count.retried += len(pending)
            keys = list(pending)
            samplings = [self.sampling(stage, k, attempt, budget[k]) for k in keys]
            requests = [Request(pending[k].messages, s, adapter=pending[k].adapter, key=f"{stage}:{k}")
                        for k, s in zip(keys, samplings)]
            desc = stage if attempt == 0 else f"{stage} (retry {attempt})"
            outs = self.llm.generate(requests, desc=desc)
            for k, s, out in zip(keys, samplings, outs):
                c = out[0] if out else Completion(text="", finish_reason="error", error="no completion")
                task = pending[k]
                seeds[k].append(s.seed)
                failure = "parse"
                try:
                    if c.error or c.finish_reason == "error":
                        failure = "backend"
                        raise ParseError(f"backend error: {c.error or 'no reply'}")
                    if c.truncated:
                        count.truncated += 1
                    if c.truncated and not task.keep_truncated:
                        failure = "truncated"
                        raise ParseError(f"reply cut off at max_tokens={s.max_tokens}")
                    value = task.parse(c)
                except ParseError as e:
                    if c.truncated:  # cut off before it said what was asked: more room next time
                        budget[k] = min(int(s.max_tokens * 1.5), int(task.max_tokens * 2.25))
                    last[k] = (str(e), failure, c, s, attempt)
                    continue
                done[k] = Done(value, c, s, attempt, stable_id(task.messages), list(seeds[k]))
                del pending[k]
        count.ok += len(done)
        count.failed += len(pending)
        errors = []
        for k, task in pending.items():
            msg, failure, c, s, attempt = last[k]
            errors.append({
                "kind": "error", "id": stable_id("error", stage, k), "stage": stage, "input_id": k,
                "message": redact.scrub(f"{msg} (after {attempt + 1} attempts)"), "attempts": attempt + 1,
                "failure": failure, "seeds": seeds[k],
                "truncated": bool(c.truncated), "finish_reason": c.finish_reason,
                "raw": redact.clip(c.raw if c.raw is not None else c.text or "", RAW_KEEP),
                "generator": Done(None, c, s, attempt, stable_id(task.messages)).generator(
                    getattr(self.llm, "name", "?"), self.label),
            })
        return done, errors
