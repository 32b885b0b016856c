"""Scores on records: what an evaluator measured, and how each measure aggregates, said on the record itself.

Every evaluator's record carries

    "scores":  {"harmful": true, "gate": true, "grader": null, ...}      # null = undecided, never a guess
    "scorers": {"harmful": {"aggregate": "rate", "about": "..."}, ...}   # one declaration per score

and the record-level fields any report groups by: `label` (the variant), `training_seed` (the cluster of
several trained models per arm) and `self_judged` (a judge or grader was the evaluated model itself: it
marks the rows of the scores declared `judged`).

A declaration (`Scorer`) says how `msm compare` aggregates the score, so compare reads any score without
knowing its name: `rate` (true / decided, nulls counted apart with their bounds) or `mean` (numbers);
`pair` names the record field that pairs observations across variants (the same item asked of both arms:
paired tests), `split` the fields every report splits it by, `group` the table it shares with its kin. An evaluator adds a measure by declaring one
more `Scorer` in its own folder.

Records written before scores existed are upgraded on reading by their kind's `upgrade` function
(`UPGRADERS`), so old files still compare.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from typing import Any

AGGREGATES = ("rate", "mean")


@dataclass(frozen=True)
class Scorer:
    """How one score aggregates."""

    name: str
    aggregate: str = "rate"
    about: str = ""  # what the score says, in a few words (table titles, plot axes)
    pair: str | None = None  # the record field that pairs observations across variants
    split: tuple[str, ...] = ()  # fields every report splits this score by
    overall: bool = False  # with `split`: also report the score over all splits together
    group: str = ""  # scores of one group share a table (the tags of a tag set, the scoring rules)
    judged: bool = False  # a model's judgement decides it (grader, judge): `self_judged` records are marked

    def declaration(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "name" and v not in (None, (), False, "")}
        if "split" in d:
            d["split"] = list(d["split"])
        d["aggregate"] = self.aggregate
        return d

    @classmethod
    def read(cls, name: str, d: Any) -> Scorer:
        """A declaration from a record; ValueError says what is wrong."""
        if not isinstance(d, dict):
            raise ValueError("expected an object")
        agg = d.get("aggregate")
        if agg not in AGGREGATES:
            raise ValueError(f"aggregate: expected one of {', '.join(AGGREGATES)}, got {agg!r}")
        split = d.get("split") or ()
        if not isinstance(split, (list, tuple)) or not all(isinstance(s, str) for s in split):
            raise ValueError("split: expected a list of field names")
        pair = d.get("pair")
        if pair is not None and not isinstance(pair, str):
            raise ValueError("pair: expected a field name")
        return cls(name, agg, str(d.get("about") or ""), pair, tuple(split), bool(d.get("overall", False)),
                   str(d.get("group") or ""), bool(d.get("judged", False)))


@dataclass
class Scores:
    """An evaluator's score set: declared once, attached to each record with its values."""

    scorers: list[Scorer] = field(default_factory=list)

    def attach(self, rec: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        """Put `values` (every declared score, null where undecided) and the declarations on `rec`."""
        missing = [s.name for s in self.scorers if s.name not in values]
        if missing:
            raise KeyError(f"scores not given: {', '.join(missing)}")
        rec["scores"] = {**(rec.get("scores") or {}), **{s.name: values[s.name] for s in self.scorers}}
        rec["scorers"] = {**(rec.get("scorers") or {}), **{s.name: s.declaration() for s in self.scorers}}
        return rec


def check_value(scorer: Scorer, value: Any) -> str | None:
    """Why `value` cannot be this score's value (None when it can)."""
    if value is None:
        return None
    if scorer.aggregate == "rate":
        return None if isinstance(value, bool) else "expected true, false or null"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "expected a number or null"
    return None


# kinds of records from before scores, and the function that adds their scores (module:function)
UPGRADERS = {
    "rollout": "msmtools.am.scores:upgrade",
    "tagged": "msmtools.tagging.scores:upgrade",
    "value": "msmtools.valueeval.scores:upgrade",
}


def upgrade(rec: dict[str, Any]) -> dict[str, Any] | None:
    """`rec` with scores added by its kind's upgrader, or None when no upgrader knows its kind."""
    target = UPGRADERS.get(rec.get("kind"))  # type: ignore[arg-type]
    if target is None:
        return None
    mod, fn = target.split(":")
    return getattr(importlib.import_module(mod), fn)(dict(rec))
