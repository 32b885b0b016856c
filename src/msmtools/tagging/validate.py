"""Score a tagger against hand labels: per tag precision, recall, F1 and Cohen's kappa.

Labels file: one JSON object per line, `{id, reasoning, labels: {tag: true|false}}`. A trace needs
no label for every tag; a tag is scored on the traces that label it. Where the tagger could not decide
(null tags) the trace is left out of that tag's confusion table (`n` counts the decided traces) and counted
in `null`; `support` counts the positive labels of all traces. So an unreliable tagger shows up as such
instead of as a string of "false" answers. Kappa comes from statsmodels; it is
undefined (null) when both raters give one class only.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from typing import Any

from .. import jsonl
from ..errors import MsmError, at
from . import TagResult


@dataclass
class Labelled:
    id: str
    reasoning: str
    labels: dict[str, bool]


def load_labels(path: str) -> list[Labelled]:
    name = jsonl.display_name(path)
    out: list[Labelled] = []
    seen: set[str] = set()
    for lineno, rec in jsonl.iter_lines(path):
        where = (name, lineno)
        rid = jsonl.field(rec, "id", str, where)
        if rid in seen:
            raise at(name, lineno, "id", f"duplicate id {rid}")
        seen.add(rid)
        text = jsonl.field(rec, "reasoning", str, where)
        if not text.strip():
            raise at(name, lineno, "reasoning", "empty")
        labels = jsonl.field(rec, "labels", dict, where)
        for tag, v in labels.items():
            if not isinstance(v, bool):
                raise at(name, lineno, f"labels.{tag}", f"expected true or false, got {v!r}")
        out.append(Labelled(rid, text, labels))
    if not out:
        raise MsmError(f"{name}: no labelled traces")
    return out


def kappa(tp: int, fp: int, fn: int, tn: int) -> float | None:
    """Cohen's kappa of the 2x2 table (rows: label yes/no, columns: tagger yes/no)."""
    import numpy as np
    from statsmodels.stats.inter_rater import cohens_kappa

    if tp + fp + fn + tn == 0:
        return None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        k = float(cohens_kappa(np.array([[tp, fn], [fp, tn]], dtype=float), return_results=False))
    return None if k != k else k  # NaN: one class only on both sides


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def metrics(tp: int, fp: int, fn: int, tn: int) -> dict[str, Any]:
    p, r = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = 2 * p * r / (p + r) if p is not None and r is not None and p + r > 0 else (0.0 if tp == 0 and fp + fn > 0 else None)
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "precision": p, "recall": r, "f1": f1,
            "kappa": kappa(tp, fp, fn, tn), "support": tp + fn, "n": tp + fp + fn + tn}  # score() counts support over nulls too


def score(items: list[Labelled], results: list[TagResult], tag_ids: list[str]) -> list[dict[str, Any]]:
    """One row per tag that the labels use, then a pooled ('all') row."""
    used = [t for t in tag_ids if any(t in it.labels for it in items)]
    rows = []
    pooled = [0, 0, 0, 0]
    for t in used:
        c = [0, 0, 0, 0]  # tp fp fn tn
        null = support = 0
        for it, r in zip(items, results):
            if t not in it.labels:
                continue
            support += it.labels[t]
            pred = r.tags.get(t)
            if pred is None:
                null += 1
                continue
            gold = it.labels[t]
            c[0 if gold and pred else 1 if pred else 2 if gold else 3] += 1
        pooled = [a + b for a, b in zip(pooled, c)]
        rows.append({"tag": t, **metrics(*c), "support": support, "null": null})
    rows.append({"tag": "all", **metrics(*pooled), "support": sum(r["support"] for r in rows),
                 "null": sum(r["null"] for r in rows)})
    return rows


def unknown_labels(items: list[Labelled], tag_ids: list[str]) -> list[str]:
    known = set(tag_ids)
    return sorted({t for it in items for t in it.labels} - known)


def run(path: str, tagger: Any, tag_ids: list[str]) -> tuple[list[dict[str, Any]], list[Labelled], list[TagResult]]:
    items = load_labels(path)
    extra = unknown_labels(items, tag_ids)
    if extra:
        print(f"msm: warning: {path}: labels for tags this tagger does not have (not scored): {', '.join(extra)}",
              file=sys.stderr)
    results = tagger.tag([it.reasoning for it in items])
    return score(items, results, tag_ids), items, results


def score_records(rows: list[dict[str, Any]], path: str, prov: dict[str, Any]) -> list[dict[str, Any]]:
    """One `tag_score` record per row, tied to the labels file's content and the tagger."""
    from pathlib import Path

    from ..ids import sha256_text, stable_id

    labels_sha = sha256_text(Path(path).read_text(encoding="utf-8")) if path != jsonl.STDIO else None
    fp = stable_id(prov, length=32)
    return [{"kind": "tag_score", "id": stable_id("tag_score", labels_sha or path, fp, r["tag"]), **r,
             "labels_file": path, "labels_sha": labels_sha, "tagger": prov} for r in rows]


def prediction_records(items: list[Labelled], results: list[TagResult], prov: dict[str, Any]) -> list[dict[str, Any]]:
    """Each trace's tags beside its labels, with the tags where they disagree."""
    from ..ids import stable_id

    fp = stable_id(prov, length=32)
    out = []
    for it, r in zip(items, results):
        disagree = sorted(t for t, v in it.labels.items() if r.tags.get(t) is not None and r.tags[t] != v)
        out.append({"kind": "tag_prediction", "id": stable_id("tag_prediction", it.id, fp), "trace_id": it.id,
                    "reasoning": it.reasoning, "labels": it.labels, "tags": r.tags, "scores": dict(r.tags),
                    "disagree": disagree,
                    "tag_evidence": r.evidence, "tag_attempts": r.attempts, "tag_error": r.error,
                    "tagger": {**prov, "prompt_sha": r.prompt_sha}})
    return out


def _fmt(x: Any) -> str:
    return "-" if x is None else f"{x:.2f}" if isinstance(x, float) else str(x)


def table(rows: list[dict[str, Any]]) -> str:
    from ..report import table as text_table

    headers = ["tag", "support", "n", "null", "tp", "fp", "fn", "precision", "recall", "f1", "kappa"]
    return text_table(headers, [[_fmt(r[h]) for h in headers] for r in rows])
