"""The spec's own structure, used to ground and to back up the model's decomposition.

The model proposes domains and subdomains and names the spec sections (by id) each covers. Here we
check those ids, verify a quoted excerpt really occurs in the spec, match names to sections when the
model gives neither, and, when a model's reply is unusable altogether (small models often are),
derive domains and subdomains from the headings themselves. Every result says where it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .parse import norm_ws

MIN_EXCERPT = 40  # characters: shorter "verbatim" quotes are too thin to ground a subdomain


@dataclass
class Sec:
    id: str
    title: str
    text: str
    level: int
    group: int  # index of the top-level group the section belongs to


class Outline:
    def __init__(self, spec_text: str, sections: list[dict[str, Any]]):
        self.text = spec_text
        self._norm = norm_ws(spec_text)
        levels = [int(s.get("level", 1)) for s in sections]
        top = min(levels) if levels else 1
        self.secs: list[Sec] = []
        group = -1
        for s, lvl in zip(sections, levels):
            if lvl <= top or group < 0:
                group += 1
            self.secs.append(Sec(str(s["id"]), str(s.get("title") or s["id"]), str(s.get("text") or ""), lvl, group))
        self.by_id = {s.id.lower(): s for s in self.secs}
        self.by_title = {s.title.lower(): s for s in self.secs}

    # -- rendering -------------------------------------------------------------------------------
    def render(self, ids: list[str] | None = None) -> str:
        """The spec (or the given sections, in spec order) with a marker line before each section."""
        chosen = self.secs if not ids else [s for s in self.secs if s.id in set(ids)]
        if not chosen:
            return self.text
        return "\n\n".join(f"=== section {s.id} ===\n{s.text}" for s in chosen)

    def excerpt(self, ids: list[str]) -> str:
        wanted = set(ids)
        return "\n\n".join(s.text for s in self.secs if s.id in wanted)

    # -- checking the model's references ---------------------------------------------------------
    def resolve(self, refs: Any) -> list[str]:
        """Known section ids among the model's references (ids or titles); a group heading brings its group."""
        if isinstance(refs, str):
            refs = [refs]
        if not isinstance(refs, list):
            return []
        found: list[str] = []
        for r in refs:
            if not isinstance(r, str):
                continue
            key = r.strip().strip("[]").lower()
            key = re.sub(r"^(section|§)\s*", "", key)
            s = self.by_id.get(key) or self.by_title.get(key)
            if s is None:
                continue
            members = [s]
            if self._is_heading(s):
                members = [x for x in self.secs if x.group == s.group]
            for m in members:
                if m.id not in found:
                    found.append(m.id)
        order = {s.id: i for i, s in enumerate(self.secs)}
        return sorted(found, key=order.__getitem__)

    def _is_heading(self, s: Sec) -> bool:
        return s.level == min(x.level for x in self.secs) and any(x.group == s.group and x is not s for x in self.secs)

    def locate(self, excerpt: str) -> list[str]:
        """Ids of the sections that contain the excerpt (or, for one spanning sections, its opening)."""
        head = norm_ws(excerpt)
        for probe in (head, head[:80]):
            found = [s.id for s in self.secs if probe and probe in norm_ws(s.text)]
            if found:
                return found
        return []

    def verbatim(self, excerpt: Any) -> bool:
        return isinstance(excerpt, str) and len(excerpt.strip()) >= MIN_EXCERPT and norm_ws(excerpt) in self._norm

    def match(self, name: str, among: list[str] | None = None) -> str | None:
        """The section whose title and text best share words with `name` (ties: the earliest)."""
        words = _words(name)
        pool = [s for s in self.secs if among is None or s.id in among]
        pool = [s for s in pool if len(s.text) >= MIN_EXCERPT]
        if not pool:
            return None
        best, best_score = pool[0], -1.0
        for s in pool:
            tw, xw = _words(s.title), _words(s.text)
            score = sum(3.0 if w in tw else 1.0 if w in xw else 0.0 for w in words)
            if score > best_score:
                best, best_score = s, score
        return best.id

    # -- fallbacks from the headings -------------------------------------------------------------
    def groups(self) -> list[list[Sec]]:
        out: dict[int, list[Sec]] = {}
        for s in self.secs:
            out.setdefault(s.group, []).append(s)
        return [g for g in out.values() if sum(len(s.text) for s in g) >= MIN_EXCERPT]

    def fallback_domains(self, count: int) -> list[dict[str, Any]]:
        """`count` domains from the top-level groups; neighbouring groups are merged when there are more
        groups than domains, so together the domains still cover the whole spec."""
        groups = self.groups()
        out = []
        for run in _runs([sum(len(s.text) for s in g) for g in groups], count):
            members = [groups[i] for i in run]
            out.append({"domain": "; ".join(g[0].title for g in members), "sections": [s.id for g in members for s in g]})
        return out

    def titles(self, count: int) -> list[str]:
        """Titles of up to `count` substantial sections, spread evenly over the spec (chat domains)."""
        # substantial sections first; a spec of short sections still gives its sections, never nothing
        secs = ([s for s in self.secs if len(s.text) >= 200] or [s for s in self.secs if s.text.strip()]
                or [s for s in self.secs if s.title.strip()])
        if len(secs) <= count:
            return [s.title for s in secs]
        return [secs[i * len(secs) // count].title for i in range(count)]

    def fallback_subdomains(self, section_ids: list[str], count: int) -> list[dict[str, Any]]:
        """`count` subdomains from the given sections: runs of neighbouring sections, or, when there is
        just one, runs of its paragraphs. Nothing of the sections is left out."""
        secs = [s for s in self.secs if s.id in set(section_ids) and len(s.text) >= MIN_EXCERPT]
        if len(secs) > 1:
            out = []
            for run in _runs([len(s.text) for s in secs], count):
                members = [secs[i] for i in run]
                out.append({"subdomain": "; ".join(s.title for s in members), "sections": [s.id for s in members],
                            "excerpt": "\n\n".join(s.text for s in members)})
            return out
        if not secs:
            return []
        s = secs[0]
        paras = [p.strip() for p in re.split(r"\n\s*\n", s.text) if p.strip()]
        runs = _runs([len(p) for p in paras], count)
        return [{"subdomain": s.title if len(runs) == 1 else f"{s.title} ({i + 1} of {len(runs)})", "sections": [s.id],
                 "excerpt": "\n\n".join(paras[j] for j in run)} for i, run in enumerate(runs)]


def _runs(weights: list[int], k: int) -> list[list[int]]:
    """Split indices 0..n-1 into min(k, n) contiguous, non-empty runs of roughly equal total weight:
    run j starts at the first item whose midpoint passes j/k of the total."""
    n = len(weights)
    if n == 0:
        return []
    k = max(1, min(k, n))
    total = sum(weights) or 1
    mids, acc = [], 0.0
    for w in weights:
        mids.append(acc + w / 2)
        acc += w
    starts = [0]
    for j in range(1, k):
        b = next((i for i in range(n) if mids[i] >= j * total / k), n)
        starts.append(min(max(b, starts[-1] + 1), n - (k - j)))
    starts.append(n)
    return [list(range(starts[j], starts[j + 1])) for j in range(k)]


_STOP = {"with", "that", "this", "from", "your", "their", "have", "they", "what", "when", "which", "about", "into",
         "will", "should", "would", "does", "than", "them", "more", "such", "also", "other", "only", "there"}


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]{4,}", text.lower()) if w not in _STOP}


def sentences(text: str, limit: int, prefer: str | None = None) -> list[str]:
    """Up to `limit` plain sentences of a passage (no headings or list markers), those naming `prefer` first."""
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    body = re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+", "", body, flags=re.M)
    body = re.sub(r"[*_`]+", "", body)
    parts = [" ".join(p.split()) for p in re.split(r"(?<=[.!?])\s+", body)]
    parts = [p for p in parts if 40 <= len(p) <= 400]
    if prefer:
        parts = sorted(parts, key=lambda p: prefer.lower() not in p.lower())  # stable: keeps text order
    return parts[:limit]
