"""The LLM tagger: one prompt per text, strict JSON back, checked against the tag set.

The reply must be one JSON object `{"tags": {<every tag>: true|false}, "evidence": {<tag>: quote}}`
(a Markdown code fence or prose around the object is tolerated; nothing is ever repaired). A reply
that is truncated, not JSON, misses a tag, adds one, or gives a non-boolean is retried once with a new
seed (and a temperature above zero, so the retry can differ); if that fails too, every tag is null
and the reason is kept. Evidence quotes that do not occur in the text are dropped, not trusted.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import orjson

from ..ids import canonical, sha256_text, stable_id
from ..llm import Backend, Completion, Sampling
from ..llm.runner import ParseError, Runner, Task
from . import TagResult
from .rubric import TagSet, fill

_FENCE = re.compile(r"^```[A-Za-z]*\s*(.*?)\s*```$", re.S)
MAX_EVIDENCE = 300


class InvalidReply(ParseError):
    pass


def _norm(s: str) -> str:
    return " ".join(s.lower().split())


def parse_reply(c: Completion, tag_ids: list[str], text: str) -> tuple[dict[str, bool], dict[str, str]]:
    """Tags and verified evidence from one completion, or InvalidReply saying what was wrong."""
    if c.error:
        raise InvalidReply(f"backend error: {c.error}")
    if c.truncated:
        raise InvalidReply("reply truncated (hit max_tokens)")
    answer = c.text.strip()
    m = _FENCE.match(answer)
    if m:
        answer = m.group(1)
    try:
        obj = orjson.loads(answer)
    except orjson.JSONDecodeError:
        i, j = answer.find("{"), answer.rfind("}")
        try:
            obj = orjson.loads(answer[i:j + 1]) if 0 <= i < j else None
        except orjson.JSONDecodeError:
            obj = None
        if obj is None:
            raise InvalidReply(f"no JSON object in reply: {answer[:80]!r}") from None
    if not isinstance(obj, dict):
        raise InvalidReply(f"expected a JSON object, got {type(obj).__name__}")
    extra = sorted(set(obj) - {"tags", "evidence"})
    if extra:
        raise InvalidReply(f"unexpected key {extra[0]!r} (expected tags, evidence)")
    tags = obj.get("tags")
    if not isinstance(tags, dict):
        raise InvalidReply("missing 'tags' object")
    missing = [t for t in tag_ids if t not in tags]
    if missing:
        raise InvalidReply(f"tags missing: {', '.join(missing)}")
    unknown = sorted(set(tags) - set(tag_ids))
    if unknown:
        raise InvalidReply(f"unknown tags: {', '.join(unknown)}")
    bad = [t for t in tag_ids if not isinstance(tags[t], bool)]
    if bad:
        raise InvalidReply(f"tag {bad[0]} is {tags[bad[0]]!r}, expected true or false")
    ev_obj = obj.get("evidence") or {}
    if not isinstance(ev_obj, dict):
        raise InvalidReply("'evidence' is not an object")
    hay = _norm(text)
    evidence = {}
    for t, q in ev_obj.items():
        if tags.get(t) is True and isinstance(q, str) and q.strip() and _norm(q) in hay:
            evidence[t] = q.strip()[:MAX_EVIDENCE]
    return {t: tags[t] for t in tag_ids}, evidence


class LLMTagger:
    kind = "llm"

    def __init__(self, tagset: TagSet, backend: Backend, sampling: Sampling, *, retry_temperature: float = 0.7):
        self.tagset = tagset
        self.backend = backend
        self.sampling = replace(sampling, n=1)
        self.retry_sampling = replace(self.sampling, temperature=max(self.sampling.temperature, retry_temperature))
        ids = tagset.ids
        self._values = {
            "tags": "\n".join(f"- {t.id}: {' '.join(t.description.split())}" for t in tagset.tags),
            "tag_ids": ", ".join(ids),
            "rule_guidance": tagset.rubric.rule_guidance if any(t.kind == "rule" for t in tagset.tags) else "",
            "json_example": '{"tags": {' + ", ".join(f'"{t}": <true or false>' for t in ids)
                            + '}, "evidence": {"<a true tag>": "<short exact quote>"}}',
        }
        where = f"{tagset.rubric.path}: prompt"
        self._system = fill(tagset.rubric.system, self._values, f"{where}.system")
        self._user_template = tagset.rubric.user

    def messages(self, text: str) -> list[dict[str, str]]:
        user = fill(self._user_template, {**self._values, "reasoning": text.strip()}, f"{self.tagset.rubric.path}: prompt.user")
        return [{"role": "system", "content": self._system}, {"role": "user", "content": user}]

    def tag(self, texts: list[str]) -> list[TagResult]:
        """Tags per text, on the shared runner: one retry with a derived seed, then null tags and the reason."""
        ids = self.tagset.ids
        msgs = [self.messages(t) for t in texts]
        keys = [stable_id(self.tagset.spec_sha, t) for t in texts]  # seeds follow the text, not its batch
        runner = Runner(self.backend, str(self.backend.describe().get("model")), seed=self.sampling.seed,
                        temperature=self.sampling.temperature, top_p=self.sampling.top_p, retries=1,
                        retry_temperature=self.retry_sampling.temperature)
        tasks = [Task(k, m, (lambda c, text=t: parse_reply(c, ids, text)), self.sampling.max_tokens)
                 for k, m, t in zip(keys, msgs, texts)]
        done, errors = runner.run("tag-reasoning", tasks)
        failed = {e["input_id"]: e for e in errors}
        results = []
        for k, m in zip(keys, msgs):
            r = TagResult({t: None for t in ids}, prompt_sha=sha256_text(canonical(m).decode()))
            if k in done:
                r.tags, r.evidence = done[k].value
                r.attempts = done[k].attempt + 1
            else:
                e = failed[k]
                r.attempts, r.error, r.failed = e["attempts"], e["message"], e["failure"] == "backend"
            results.append(r)
        return results

    def describe(self) -> dict[str, Any]:
        d = self.backend.describe()
        return {"kind": self.kind, "model": d.get("model"), "backend": d.get("backend"),
                "sampling": self.sampling.to_dict(), "retry_sampling": self.retry_sampling.to_dict(),
                "seeds": "derive_seed(sampling.seed, 'tag-reasoning', sha of spec and text, attempt)"}

    def close(self) -> None:
        self.backend.close()
