"""Sizing a corpus to its target: how many domains, subdomains, types and ideas reach --target-tokens,
and how many conversation domains and queries reach --target-chats.

A document costs about `doc_words` x 1.33 tokens (English prose with our tokenizers), or, once a run
has written documents, their measured mean. The plan asks for `MARGIN` more than the target, since
the model may propose fewer subdomains than asked and some documents are rejected. Counts the user
gave stay as given; the others grow in a fixed order (ideas, document types, subdomains, domains, up
to the soft caps below, then ideas again), so the same target always gives the same plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKENS_PER_WORD = 1.33
MARGIN = 1.15  # documents: subdomains the model leaves out, rejected and truncated documents
CHAT_MARGIN = 1.35  # chats: near-duplicate queries and judge rejects (the paper lost about a quarter)
DEFAULTS = {"domains": 3, "subdomains": 2, "doc_types": 3, "ideas": 3}
CAPS = {"ideas": 25, "doc_types": 20, "subdomains": 8, "domains": 8}  # the paper's scripts: 20 types x 25 ideas
GROW = ("ideas", "doc_types", "subdomains", "domains")
CHAT_QUERIES = 50  # queries asked of one domain in one call (the published pipeline asked 50 per call)


@dataclass
class DocPlan:
    counts: dict[str, int]
    per_doc: float  # tokens per document
    per_doc_source: str
    documents: int  # planned (before the model's own choices)
    needed: int | None  # documents the target needs, margin included

    @property
    def tokens(self) -> int:
        return int(self.documents * self.per_doc)

    def describe(self, target: int | None) -> str:
        c = self.counts
        text = (f"{c['domains']} domains x {c['subdomains']} subdomains x {c['doc_types']} document types x "
                f"{c['ideas']} ideas = {self.documents:,} documents, about {self.tokens:,} tokens at "
                f"{self.per_doc:,.0f} tokens per document ({self.per_doc_source})")
        if target:
            text += f"; --target-tokens {target:,} needs about {self.needed:,} documents with a {MARGIN:g}x margin"
        return text


def measured_per_doc(output: str | None) -> tuple[float, int] | None:
    """(mean tokens, documents) of the documents an earlier run wrote to `output`, if any."""
    if not output or output == "-" or not Path(output).exists():
        return None
    from .. import jsonl

    n = total = 0
    for _, rec in jsonl.iter_lines(output):
        if rec.get("kind") == "doc" and isinstance(rec.get("tokens"), int):
            n, total = n + 1, total + rec["tokens"]
    return (total / n, n) if n >= 20 else None


def size_documents(given: dict[str, int | None], *, doc_words: int, target: int | None,
                   output: str | None = None) -> DocPlan:
    measured = measured_per_doc(output)
    if measured:
        per_doc, source = measured[0], f"measured on {measured[1]:,} documents in {output}"
    else:
        per_doc, source = doc_words * TOKENS_PER_WORD, f"estimated: --doc-words {doc_words} x {TOKENS_PER_WORD}"
    counts = {k: (v if v is not None else DEFAULTS[k]) for k, v in given.items()}
    needed = None
    if target:
        needed = math.ceil(target * MARGIN / per_doc)
        free = [k for k in GROW if given.get(k) is None]

        def product() -> int:
            return math.prod(counts.values())

        while free and product() < needed:
            room = [k for k in free if counts[k] < CAPS[k]]
            if not room:  # every free count at its cap: more ideas per type
                k = "ideas" if "ideas" in free else free[0]
                counts[k] = math.ceil(needed / (product() // counts[k]))
                break
            k = min(room, key=lambda x: (counts[x] / CAPS[x], GROW.index(x)))
            counts[k] += 1
    return DocPlan(counts, per_doc, source, math.prod(counts.values()), needed)


def size_chats(given_domains: int | None, given_queries: int | None, target: int | None) -> dict[str, Any]:
    """Conversation domains and queries per domain for --target-chats (given values stay)."""
    domains = given_domains if given_domains is not None else 3
    queries = given_queries if given_queries is not None else 4
    if target:
        needed = math.ceil(target * CHAT_MARGIN)
        if given_queries is None:
            queries = min(CHAT_QUERIES, max(4, math.ceil(needed / domains)))
        if given_domains is None:
            domains = max(domains, math.ceil(needed / queries))
    return {"domains": domains, "queries": queries}


def fit_types_ideas(target: int, per_doc: float, n_sub: int, doc_types: int | None, ideas: int | None) -> tuple[int, int]:
    """Document types and ideas per subdomain (those given stay) that reach the target from `n_sub` subdomains."""
    needed = math.ceil(target * MARGIN / per_doc)
    per_sub = math.ceil(needed / n_sub)
    if doc_types is not None and ideas is not None:
        return doc_types, ideas
    if doc_types is not None:
        return doc_types, max(1, math.ceil(per_sub / doc_types))
    if ideas is not None:
        return max(1, math.ceil(per_sub / ideas)), ideas
    t = min(CAPS["doc_types"], max(1, math.ceil(math.sqrt(per_sub * CAPS["doc_types"] / CAPS["ideas"]))))
    return t, max(1, math.ceil(per_sub / t))
