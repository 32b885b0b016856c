"""Corpus statistics printed at the end of a docgen run (and saved with --stats): size, balance, diversity.

Token figures are exact over all records (not estimated from samples). The diversity check counts, over
up to PHRASE_SAMPLE records (the first by id, so the sample is stable), in how many records each
capitalised multi-word name and each 4-word phrase occurs: a generator that puts "Dr. Sarah Chen" or
"in a world where" into a third of the corpus shows up here at once.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np

from ..report import table

PHRASE_SAMPLE = 2000
TOP = 10
_NAME = re.compile(r"\b(?:Dr\.|Mr\.|Ms\.|Mrs\.|Prof\.)?\s?[A-Z][a-z]+(?:\s+[A-Z][a-z]+)+\b")
_WORD = re.compile(r"[a-z0-9']+")


def _texts(rec: dict[str, Any]) -> str:
    if rec.get("kind") == "chat":
        return "\n".join(m["content"] for m in rec["messages"] if m["role"] == "assistant")
    return rec.get("text", "")


def corpus_stats(records: list[dict[str, Any]], errors: list[dict[str, Any]], *, ignore_names: tuple[str, ...] = ()) -> dict[str, Any]:
    tokens = np.array([r.get("tokens") or 0 for r in records], dtype=np.int64)
    out: dict[str, Any] = {
        "records": len(records),
        "tokens_total": int(tokens.sum()),
        "tokens_median": float(np.median(tokens)) if len(tokens) else None,
        "tokens_p95": float(np.percentile(tokens, 95)) if len(tokens) else None,
        "tokens_max": int(tokens.max()) if len(tokens) else None,
        "by_domain": dict(Counter(r.get("domain") for r in records).most_common()),
        "rejects": len(errors),
        "rejects_by_stage": dict(Counter(e.get("stage") for e in errors).most_common()),
        "truncated": sum(1 for e in errors if e.get("truncated")),
        "kept_truncated": sum(1 for r in records if r.get("truncated")),
    }
    if any(r.get("kind") == "doc" for r in records):
        out["by_doc_type"] = dict(Counter(r.get("doc_type") for r in records).most_common())
    if any(r.get("kind") == "chat" for r in records):
        out["with_reasoning"] = sum(1 for r in records if r.get("reasoning"))
        out["verdicts"] = dict(Counter(str(r["judge"]["verdict"]) for r in records).most_common())
    sample = sorted(records, key=lambda r: r["id"])[:PHRASE_SAMPLE]
    skip = {n.lower() for n in ignore_names if n}
    names: Counter[str] = Counter()
    phrases: Counter[str] = Counter()
    for r in sample:
        text = _texts(r)
        found = {" ".join(m.split()) for m in _NAME.findall(text)}
        names.update(n for n in found if not any(s in n.lower() for s in skip))
        words = _WORD.findall(text.lower())
        phrases.update({" ".join(words[i:i + 4]) for i in range(len(words) - 3)})
    n = max(1, len(sample))
    out["phrase_sample"] = len(sample)
    out["top_names"] = [{"name": k, "records": v, "share": round(v / n, 3)} for k, v in names.most_common(TOP) if v > 1]
    out["top_phrases"] = [{"phrase": k, "records": v, "share": round(v / n, 3)} for k, v in phrases.most_common(TOP) if v > 1]
    return out


def render(stats: dict[str, Any]) -> str:
    lines = [f"records {stats['records']}, tokens {stats['tokens_total']} "
             f"(median {stats['tokens_median']}, p95 {stats['tokens_p95']}, max {stats['tokens_max']}); "
             f"rejects {stats['rejects']} (cut off by max_tokens: {stats['truncated']})"
             + (f"; {stats['kept_truncated']} kept records are cut off (--keep-truncated)" if stats.get("kept_truncated") else "")]
    for key, head in (("by_domain", "domain"), ("by_doc_type", "doc type"), ("rejects_by_stage", "rejected at")):
        if stats.get(key):
            lines.append(table([head, "records"], [[k, v] for k, v in stats[key].items()]))
    if "verdicts" in stats:
        lines.append(f"judge verdicts of kept chats: {stats['verdicts']}; with reasoning: {stats['with_reasoning']}")
    for key, head in (("top_names", "name"), ("top_phrases", "phrase")):
        if stats.get(key):
            rows = [[d[head], d["records"], f"{100 * d['share']:.0f}%"] for d in stats[key]]
            lines.append(table([f"most repeated {head}s (of {stats['phrase_sample']} records)", "records", "share"], rows))
    return "\n\n".join(lines)
