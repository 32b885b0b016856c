"""Rollouts in, tagged records out: checked first, appended batch by batch, resumable and shardable.

The whole input is checked before anything is written (a bad line stops the run with file:line and
nothing half-done). Each tagged record is the rollout plus `tags`, `tag_evidence` and `tagger`,
under a new id derived from the rollout id and the tagger's fingerprint, so a rerun skips what is
already in the output or the rejects file and a different tagger never collides with an old one.
A rollout with no text to tag becomes an error record; tags the tagger could not decide are null.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import jsonl, redact
from ..errors import at
from ..ids import stable_id
from . import TagResult
from .rubric import TagSet

INPUT_KINDS = ("rollout", "tagged")
STAGE = "tag-reasoning"
MAX_TEXT_CHARS = 500_000  # longer texts are error records: no reply is that long, and tagging would take minutes
_TAG_FIELDS = ("tags", "tag_evidence", "tag_source", "tag_attempts", "tag_error", "tagger")


@dataclass
class Counts:
    inputs: int = 0
    other_shard: int = 0
    done_before: int = 0
    tagged: int = 0
    retried: int = 0
    null: int = 0
    rejected: int = 0
    failed: int = 0  # of rejected: backend failures, retried by the next run

    def summary(self) -> str:
        failed = f" ({self.failed} backend failures: rerun to retry them)" if self.failed else ""
        return (f"{STAGE}: {self.inputs} input records; {self.tagged} tagged ({self.retried} after a retry, "
                f"{self.null} with null tags), {self.rejected} rejected{failed}, {self.done_before} already done, "
                f"{self.other_shard} in other shards")


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


def default_rejects(output: str) -> str | None:
    if output == jsonl.STDIO:
        return None
    p = Path(output)
    return str(p.with_name(p.name.removesuffix(".jsonl") + ".rejects.jsonl"))


def _final_rejects(path: str | None) -> set[str]:
    """Ids of error records that a rerun must not retry (no text to tag); backend failures are retried."""
    if path is None or not Path(path).exists():
        return set()
    return {str(r["id"]) for _, r in jsonl.iter_lines(path) if "id" in r and not r.get("retry")}


def rollout_id_of(rec: dict[str, Any]) -> str:
    """The rollout a record is about: its own id, or for an already tagged record the rollout's."""
    return str(rec.get("rollout_id") or rec["id"]) if rec.get("kind") == "tagged" else str(rec["id"])


def tagged_record(rec: dict[str, Any], out_id: str, source: str, r: TagResult, prov: dict[str, Any]) -> dict[str, Any]:
    out = {"kind": "tagged", "id": out_id, "rollout_id": rollout_id_of(rec)}
    out.update((k, v) for k, v in rec.items() if k not in ("kind", "id", "rollout_id") and k not in _TAG_FIELDS)
    out.update(tags=r.tags, tag_evidence=r.evidence, tag_source=source, tag_attempts=r.attempts,
               tag_error=r.error, tagger={**prov, "prompt_sha": r.prompt_sha})
    return out


def error_record(rec: dict[str, Any], fingerprint: str, message: str, where: tuple[str, int], prov: dict) -> dict[str, Any]:
    return {"kind": "error", "id": stable_id("error", STAGE, rec["id"], fingerprint), "stage": STAGE,
            "input_id": rec["id"], "input_file": where[0], "input_line": where[1], "message": redact.scrub(message),
            "tagger": prov}


def tag_file(path: str, tagger: Any, tagset: TagSet, *, output: str, rejects: str | None,
             shard: jsonl.Shard = jsonl.Shard(), batch_size: int = 32, progress: bool = True) -> Counts:
    """Tag every rollout of `path` this shard owns and has not done yet; append results as they come."""
    from tqdm import tqdm

    n, kept = check_inputs(path)
    name = jsonl.display_name(path)
    prov = provenance(tagger, tagset)
    fingerprint = stable_id(prov, length=32)
    rejects = rejects if rejects is not None else default_rejects(output)
    counts = Counts(inputs=n)
    out = jsonl.Writer(output, append=output != jsonl.STDIO)  # locked first: then read what is done
    done = jsonl.existing(output) | _final_rejects(rejects)
    rej: jsonl.Writer | None = None
    bar = tqdm(total=n, desc=STAGE, unit="rec", file=sys.stderr, disable=not progress, leave=False)

    def reject(rec: dict, message: str, where: tuple[str, int], retry: bool = False) -> None:
        nonlocal rej
        counts.rejected += 1
        erec = error_record(rec, fingerprint, message, where, prov) | {"retry": retry}
        if rejects is None:
            print(f"msm: {STAGE}: rejected {rec['id']} ({where[0]}:{where[1]}): {message}", file=sys.stderr)
            return
        if rej is None:
            rej = jsonl.Writer(rejects, append=True)
        rej.write(erec)

    def flush(batch: list[tuple[dict, str, str, str, tuple[str, int]]]) -> None:
        results = tagger.tag([b[3] for b in batch])
        for (rec, out_id, source, _, where), r in zip(batch, results):
            if r.failed:  # the backend failed: not a verdict; a rerun tries again
                reject(rec, r.error or "backend error", where, retry=True)
                counts.failed += 1
                continue
            out.write(tagged_record(rec, out_id, source, r, prov))
            counts.tagged += 1
            counts.retried += r.attempts > 1 and r.decided
            counts.null += not r.decided
        bar.update(len(batch))
        batch.clear()

    records: Iterator[tuple[int, dict]] = iter(kept) if kept is not None else jsonl.iter_lines(path)
    batch: list = []
    ok = False
    try:
        for lineno, rec in records:
            rollout_id = rollout_id_of(rec)
            if not shard.owns(rollout_id):
                counts.other_shard += 1
                bar.update(1)
                continue
            out_id = stable_id("tagged", rollout_id, fingerprint)
            err_id = stable_id("error", STAGE, rec["id"], fingerprint)
            if out_id in done or err_id in done:
                counts.done_before += 1
                bar.update(1)
                continue
            source, text = text_of(rec)
            if text is None:
                reject(rec, "no text to tag: reasoning and response are both empty", (name, lineno))
                bar.update(1)
                continue
            if len(text) > MAX_TEXT_CHARS:
                reject(rec, f"{source} is {len(text):,} characters, more than the {MAX_TEXT_CHARS:,} a tagger reads "
                       "(a 4,096-token reply is about 16,000): not a real reply", (name, lineno))
                bar.update(1)
                continue
            batch.append((rec, out_id, source, text, (name, lineno)))
            if len(batch) >= batch_size:
                flush(batch)
        if batch:
            flush(batch)
        ok = True
    finally:
        bar.close()
        out.close(ok=ok)
        if rej is not None:
            rej.close(ok=ok)
    return counts
