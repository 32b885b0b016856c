"""The lexical tagger: regular-expression cues per tag, a baseline that costs nothing to run.

A tag is true when every `requires` group matches somewhere in the text and either one of its cues
matches (case-insensitive; for tags marked `negation`, not right after "not", "never", "won't" ...:
"I will not preserve myself") or one sentence matches every `near` group (for rule tags: a word
that appeals to a rule, such as "my guidelines", next to a word of that rule's subject, such as
"oversight"). The evidence is the sentence of the earliest hit. Each tag's cues are joined into one
regular expression, so a text is scanned once per tag.
It cannot tell an argument the model makes from one it rejects; the LLM tagger is for that.
"""

from __future__ import annotations

import bisect
import re
from typing import Any

from . import TagResult
from .rubric import TagDef, TagSet

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_NEGATED = re.compile(r"(?:\bnot|\bnever|\bno|n't|\bcannot|\bwithout)\W+(?:[\w']+\W+){0,3}$", re.I)
EVIDENCE_CHARS = 200
NEGATION_WINDOW = 120  # characters before a cue searched for "not", "never"... (4 words fit easily)


class _Text:
    """A text with its sentence spans found once, shared by every tag."""

    def __init__(self, text: str):
        self.text = text
        self.spans: list[tuple[int, int]] = []
        start = 0
        for m in _SENTENCE_END.finditer(text):
            self.spans.append((start, m.start()))
            start = m.end()
        self.spans.append((start, len(text)))
        self._starts = [a for a, _ in self.spans]

    def sentence_at(self, pos: int) -> tuple[int, int]:
        return self.spans[max(0, bisect.bisect_right(self._starts, pos) - 1)]

    def evidence(self, pos: int) -> str:
        s, e = self.sentence_at(pos)
        quote = self.text[s:e].strip()
        if len(quote) > EVIDENCE_CHARS:  # keep a window around the hit
            lo = max(s, pos - EVIDENCE_CHARS // 2)
            quote = self.text[lo:lo + EVIDENCE_CHARS].strip()
        return quote


def _alternation(patterns: tuple[str, ...]) -> list[re.Pattern]:
    """All cues as one regex (one pass over the text), or one each if they cannot be joined."""
    if not patterns:
        return []
    try:
        return [re.compile("|".join(f"(?:{p})" for p in patterns), re.I)]
    except re.error:  # e.g. numbered back-references that joining would renumber
        return [re.compile(p, re.I) for p in patterns]


class _Compiled:
    def __init__(self, tag: TagDef):
        self.tag = tag
        self.cues = _alternation(tag.cues)
        self.near = [_alternation(group) for group in tag.near]
        self.requires = [_alternation(group) for group in tag.requires]

    def match(self, t: _Text) -> str | None:
        text = t.text
        if not all(any(rx.search(text) for rx in group) for group in self.requires):
            return None
        for rx in self.cues:
            for m in rx.finditer(text):
                if self.tag.negation:
                    s, _ = t.sentence_at(m.start())
                    # the negation must be within a few words: look back a bounded window, not the whole
                    # sentence (one huge unpunctuated text would make this quadratic)
                    if _NEGATED.search(text[max(s, m.start() - NEGATION_WINDOW):m.start()]):
                        continue
                return t.evidence(m.start())
        if self.near:
            for s, e in t.spans:
                sent = text[s:e]
                if sent.strip() and all(any(rx.search(sent) for rx in group) for group in self.near):
                    return sent.strip()[:EVIDENCE_CHARS]
        return None


class LexicalTagger:
    kind = "lexical"

    def __init__(self, tagset: TagSet):
        self.tagset = tagset
        self._compiled = [_Compiled(t) for t in tagset.tags]

    def tag_one(self, text: str) -> TagResult:
        tags: dict[str, bool | None] = {}
        ev: dict[str, str] = {}
        t = _Text(text)
        for c in self._compiled:
            quote = c.match(t)
            tags[c.tag.id] = quote is not None
            if quote is not None:
                ev[c.tag.id] = quote
        return TagResult(tags, ev)

    def tag(self, texts: list[str]) -> list[TagResult]:
        return [self.tag_one(t) for t in texts]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": None, "backend": None, "sampling": None}

    def close(self) -> None:
        pass
