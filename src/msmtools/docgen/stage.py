"""Docgen's stages on the shared runner (`msmtools.llm.runner`): list-shaped tasks and the pipeline base.

The runner isolates items, derives each attempt's seed from (base seed, stage, item key, attempt) and
turns an item that still fails after its retries into an error record; see its module docstring.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any

from ..llm import Completion
from ..llm.runner import RAW_KEEP, Done, Runner, StageCount, Task, derive_seed  # noqa: F401  (re-exported)
from . import parse
from .parse import ParseError


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


class Pipeline:
    """What the document and chat pipelines share: the runner, error records and fallback counts."""

    def __init__(self, runner: Runner, prompts: Any, opts: Any, *, count_tokens: Callable[[str], int],
                 select: Callable[[list[str]], set[str]] = set,
                 plan_lock: Callable[[], Any] = contextlib.nullcontext, log: Callable[[str], None] | None = None):
        self.r = runner
        self.p = prompts
        self.o = opts
        self.count_tokens = count_tokens
        self.select = select  # the work units (by key) this shard owns among all of them
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
