"""Reasoning tags for rollouts: which spec rules the model invoked and which reasoning patterns it showed.

- rubric.py: the tag set (a replaceable rubric file plus one tag per rule of the spec);
- lexical.py: a fast regex tagger, the baseline;
- llm_tagger.py: an LLM tagger on any generation backend, strict JSON checked against the tag set;
- run.py: rollouts in, tagged records out (resumable, shardable, errors as records);
- validate.py: scores a tagger against hand labels (precision, recall, F1, Cohen's kappa).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TagResult:
    """One text's tags: True/False per tag, or None for every tag when the tagger could not decide."""

    tags: dict[str, bool | None]
    evidence: dict[str, str] = field(default_factory=dict)  # tag -> short quote, only for true tags
    attempts: int = 1
    error: str | None = None  # why the tags are null
    prompt_sha: str | None = None
    failed: bool = False  # the backend failed (not an undecided reply): an error record, retried on the next run

    @property
    def decided(self) -> bool:
        return self.error is None
