"""Rollouts in, tagged records out: checked first, appended batch by batch, resumable and shardable.

The whole input is checked before anything is written (a bad line stops the run with file:line and
nothing half-done). Each tagged record is the rollout plus `tags`, `tag_evidence` and `tagger`,
under a new id derived from the rollout id and the tagger's fingerprint, so a rerun skips what is
already in the output or the rejects file and a different tagger never collides with an old one.
A rollout with no text to tag becomes an error record; tags the tagger could not decide are null.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .. import jsonl
from ..driver import Counts, Stage
from ..errors import at
from ..ids import stable_id
from . import TagResult, scores
from .rubric import TagSet

INPUT_KINDS = ("rollout", "tagged")
STAGE = "tag-reasoning"
MAX_TEXT_CHARS = 500_000  # longer texts are error records: no reply is that long, and tagging would take minutes
_TAG_FIELDS = ("tags", "tag_evidence", "tag_source", "tag_attempts", "tag_error", "tagger")


def provenance(tagger: Any, tagset: TagSet) -> dict[str, Any]:
    """What fixes the tags: tagger, model, sampling, rubric, spec and the tag list."""
    return {**tagger.describe(), "rubric": tagset.rubric.name, "rubric_sha": tagset.rubric.sha,
            "spec_ids": tagset.spec_ids, "spec_sha": tagset.spec_sha, "tag_ids": tagset.ids}


def text_of(rec: dict[str, Any]) -> tuple[str, str | None]:
    """The text to tag: the scratchpad reasoning if there is any, else the response."""
    for key in ("reasoning", "response"):
        v = rec.get(key)
        if isinstance(v, str) and v.strip():
            return key, v
    return "reasoning", None


def check_inputs(path: str) -> tuple[int, list[tuple[int, dict]] | None]:
    """Validate every input line before work starts; returns (count, records if they came from stdin)."""
    name = jsonl.display_name(path)
    keep = [] if path == jsonl.STDIO else None
    seen: dict[str, int] = {}
    n = 0
    for lineno, rec in jsonl.iter_lines(path):
        where = (name, lineno)
        kind = rec.get("kind")
        if kind not in INPUT_KINDS:
            raise at(name, lineno, "kind", f"expected a rollout record (kind rollout or tagged), got {kind!r}")
        rid = jsonl.field(rec, "id", str, where)
        for key in ("reasoning", "response"):
            jsonl.field(rec, key, str, where, default=None)
        if rid in seen:
            raise at(name, lineno, "id", f"duplicate id {rid} (first on line {seen[rid]})")
        seen[rid] = lineno
        n += 1
        if keep is not None:
            keep.append((lineno, rec))
    return n, keep


def rollout_id_of(rec: dict[str, Any]) -> str:
    """The rollout a record is about: its own id, or for an already tagged record the rollout's."""
    return str(rec.get("rollout_id") or rec["id"]) if rec.get("kind") == "tagged" else str(rec["id"])


def tagged_record(rec: dict[str, Any], out_id: str, source: str, r: TagResult, prov: dict[str, Any]) -> dict[str, Any]:
    out = {"kind": "tagged", "id": out_id, "rollout_id": rollout_id_of(rec)}
    out.update((k, v) for k, v in rec.items() if k not in ("kind", "id", "rollout_id") and k not in _TAG_FIELDS)
    out.update(tags=r.tags, tag_evidence=r.evidence, tag_source=source, tag_attempts=r.attempts,
               tag_error=r.error, tagger={**prov, "prompt_sha": r.prompt_sha})
    previous = list(rec["tags"]) if isinstance(rec.get("tags"), dict) else []
    out["scores"], out["scorers"] = dict(rec.get("scores") or {}), dict(rec.get("scorers") or {})
    return scores.attach(out, r.tags, previous)


def tag_file(path: str, tagger: Any, tagset: TagSet, *, output: str, rejects: str | None,
             shard: jsonl.Shard = jsonl.Shard(), batch_size: int = 32, progress: bool = True) -> Counts:
    """Tag every rollout of `path` this shard owns and has not done yet; append results as they come."""
    n, kept = check_inputs(path)
    name = jsonl.display_name(path)
    prov = provenance(tagger, tagset)
    fingerprint = stable_id(prov, length=32)
    records: Iterator[tuple[int, dict]] = iter(kept) if kept is not None else jsonl.iter_lines(path)

    def out_id(rec: dict) -> str:
        return stable_id("tagged", rollout_id_of(rec), fingerprint)

    def err_id(rec: dict) -> str:
        return stable_id("error", STAGE, rec["id"], fingerprint)

    def error(rec: dict, message: str, where: tuple[str, int], retry: bool) -> dict[str, Any]:
        return {"kind": "error", "id": err_id(rec), "stage": STAGE, "input_id": rec["id"], "input_file": where[0],
                "input_line": where[1], "message": message, "tagger": prov, "retry": retry}

    def solve(batch: list[tuple[int, dict]]) -> Iterator[dict[str, Any]]:
        texts = []
        for lineno, rec in batch:
            source, text = text_of(rec)
            texts.append((source, text))
        asked = [(b, s, t) for b, (s, t) in zip(batch, texts) if t is not None and len(t) <= MAX_TEXT_CHARS]
        results = iter(tagger.tag([t for _, _, t in asked])) if asked else iter(())
        for (lineno, rec), (source, text) in zip(batch, texts):
            where = (name, lineno)
            if text is None:
                yield error(rec, "no text to tag: reasoning and response are both empty", where, retry=False)
                continue
            if len(text) > MAX_TEXT_CHARS:
                yield error(rec, f"{source} is {len(text):,} characters, more than the {MAX_TEXT_CHARS:,} a tagger "
                            "reads (a 4,096-token reply is about 16,000): not a real reply", where, retry=False)
                continue
            r = next(results)
            if r.failed:  # the backend failed: not a verdict; a rerun tries again
                yield error(rec, r.error or "backend error", where, retry=True)
                continue
            st.counts.add("after a retry", r.attempts > 1 and r.decided)
            st.counts.add("with null tags", not r.decided)
            yield tagged_record(rec, out_id(rec), source, r, prov)

    with Stage(STAGE, output, rejects=rejects, shard=shard, chunk_size=batch_size, progress=progress,
               kinds=("tagged",), unit="tagged records",
               describe=lambda r: f"{STAGE}: rejected {r['input_id']} ({r['input_file']}:{r['input_line']})") as st:
        st.resume()
        todo = st.todo(records, key=lambda lr: rollout_id_of(lr[1]), known=False,
                       record_id=lambda lr: (out_id(lr[1]), err_id(lr[1])))
        st.counts.inputs = n
        st.counts.extra = {"after a retry": 0, "with null tags": 0}
        st.bar(len(todo))
        st.run(todo, solve)
    st.report()
    return st.counts
