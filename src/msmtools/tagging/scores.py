"""A tagged record's scores: the rollout's own, plus one rate per tag (null where the tagger could not decide)."""

from __future__ import annotations

from typing import Any

from ..scores import Scorer, Scores


def attach(rec: dict[str, Any], tags: dict[str, bool | None], previous: list[str] = ()) -> dict[str, Any]:
    """Add the tags as scores; `previous` are the tags of an earlier tagging of the same rollout (dropped)."""
    for name in previous:
        (rec.get("scores") or {}).pop(name, None)
        (rec.get("scorers") or {}).pop(name, None)
    return Scores([Scorer(t, "rate", "a reasoning tag: the share of records whose reasoning shows it", group="tags")
                   for t in tags]).attach(
        rec, dict(tags))


def upgrade(rec: dict[str, Any]) -> dict[str, Any]:
    """A tagged record written before scores existed: the rollout's scores, then its tags."""
    from ..am.scores import upgrade as rollout

    rec = rollout(rec)
    tags = rec.get("tags") if isinstance(rec.get("tags"), dict) else {}
    return attach(rec, {t: v for t, v in tags.items() if v is None or isinstance(v, bool)})
