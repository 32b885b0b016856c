"""The labelling sample: random within each stratum (arm, and any --by fields), seeded, resumable.

The order of records in a stratum is a hash of (seed, record id), so the sample does not depend on file
order, a rerun with the same seed asks for the same records, and asking for more labels later extends
the sample rather than redrawing it. Strata are interleaved (one record of each in turn), so a session
stopped early still covers every arm. Every label record says how its record was drawn, which is what
lets `compare --gold` tell a random sample from a hand-picked one.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

from .. import jsonl
from ..errors import MsmError
from ..ids import stable_id
from .measures import Measure, arm

VALUES = {"yes": True, "no": False, "unsure": "unsure"}


@dataclass
class Plan:
    measure: Measure
    per_stratum: int = 30
    by: list[str] = field(default_factory=list)
    seed: int = 0
    who: str = field(default_factory=lambda: _whoami())

    def stratum(self, rec: dict[str, Any]) -> tuple:
        return (arm(rec), *(rec.get(f) for f in self.by))


def _whoami() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (a container): say so rather than guess
        return "unknown"


def _rank(seed: int, rid: str) -> str:
    return hashlib.sha256(f"{seed}\0{rid}".encode()).hexdigest()


@dataclass
class Draw:
    queue: list[dict[str, Any]]  # records to label, in order
    population: dict[tuple, int]  # records per stratum that carry the measure
    done: int  # sampled records this person already labelled


def draw(paths: list[str], plan: Plan, labelled: set[str]) -> Draw:
    """The records still to label: up to `per_stratum` per stratum, minus those in `labelled` (record ids)."""
    strata: dict[tuple, list[tuple[str, dict[str, Any]]]] = {}
    seen: set[str] = set()
    for path, line, rec in jsonl.read_many(paths):
        if not plan.measure.applies(rec):
            continue
        rid = rec.get("id")
        if not isinstance(rid, str) or not rid:
            raise MsmError(f"{jsonl.display_name(path)}:{line}: id: a record to label needs its id")
        if rid in seen:
            continue
        seen.add(rid)
        strata.setdefault(plan.stratum(rec), []).append((_rank(plan.seed, rid), rec))
    if not strata:
        raise MsmError(f"no record in {', '.join(paths)} carries the measure {plan.measure.name}")
    picked, done = [], 0
    for key in sorted(strata, key=repr):
        ranked = [r for _, r in sorted(strata[key], key=lambda x: x[0])][:plan.per_stratum]
        for k, r in enumerate(ranked):
            r["_rank"], r["_stratum"] = k, key
        done += sum(r["id"] in labelled for r in ranked)
        picked.append([r for r in ranked if r["id"] not in labelled])
    queue = [r for row in zip_longest(*picked) for r in row if r is not None]
    return Draw(queue, {k: len(v) for k, v in strata.items()}, done)


def label_record(rec: dict[str, Any], plan: Plan, value: bool | str, population: int) -> dict[str, Any]:
    """One decision: which record, which measure, what the person said, who, when, and how it was drawn."""
    if value not in (True, False, "unsure"):
        raise ValueError(f"label value {value!r}")
    return {"kind": "label", "id": stable_id("label", rec["id"], plan.measure.name, plan.who),
            "record": rec["id"], "measure": plan.measure.name, "value": value, "who": plan.who,
            "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "arm": arm(rec), "by": dict(zip(plan.by, rec["_stratum"][1:])), "judge": plan.measure.judged(rec),
            "sample": {"random": True, "seed": plan.seed, "per_stratum": plan.per_stratum, "rank": rec["_rank"],
                       "stratum_population": population}}


def recorder(writer: jsonl.Writer, plan: Plan, d: Draw) -> Callable[[dict[str, Any], str], None]:
    """The UI's `write(rec, "yes"|"no"|"unsure")`: one label record, appended (and flushed) at once."""
    def write(rec: dict[str, Any], value: str) -> None:
        writer.write(label_record(rec, plan, VALUES[value], d.population[rec["_stratum"]]))
    return write


def labelled_ids(path: str, plan: Plan) -> set[str]:
    """Record ids this person has already labelled for this measure in `path` (resume)."""
    from pathlib import Path

    out: set[str] = set()
    if path == jsonl.STDIO or not Path(path).exists():
        return out
    for rec in jsonl.read(path):
        if rec.get("kind") == "label" and rec.get("measure") == plan.measure.name and rec.get("who") == plan.who:
            out.add(rec.get("record"))
    return out
