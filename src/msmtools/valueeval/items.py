"""Value-eval items: paired choices (which option follows the value under test) and open spec questions.

A paired item is `{id, value, domain, question, options: [two strings], aligned: 0|1}`; a QA item is
`{id, question, category}` with an optional `reference` (what an ideal answer says, for the judge).
The shipped sets live in `msmtools/data/` and are named by their file stem: `america`,
`affordability`, `environment`, `novelty`, `tradition`, `simplicity`, `difficulty`, `individualism`
(paired) and `spec-qa` (the rules-family questions). All were written for msmtools.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import jsonl
from ..errors import MsmError, at

DATA = Path(__file__).resolve().parents[1] / "data"
PAIRED_DIR = DATA / "value_items"
QA_FILE = DATA / "spec_qa" / "rules_family.jsonl"
RUBRIC = DATA / "spec_qa" / "rubric.md"


@dataclass(frozen=True)
class Item:
    id: str
    kind: str  # paired | qa
    question: str
    value: str | None = None
    domain: str | None = None
    options: tuple[str, str] | None = None
    aligned: int | None = None
    category: str | None = None
    reference: str | None = None
    source: str = ""

    def meta(self) -> dict[str, Any]:
        return {"item_id": self.id, "value": self.value, "domain": self.domain, "category": self.category}


def shipped() -> dict[str, Path]:
    names = {p.stem: p for p in sorted(PAIRED_DIR.glob("*.jsonl"))}
    names["spec-qa"] = QA_FILE
    return names


def resolve(name: str) -> Path:
    p = Path(name)
    if p.exists():
        if p.is_dir():
            raise MsmError(f"{name}: is a folder, expected an items JSONL file")
        return p
    ship = shipped()
    if name in ship:
        return ship[name]
    raise MsmError(f"{name}: no such items file or shipped set (shipped: {', '.join(ship)})")


PAIRED_FIELDS = {"options", "aligned", "value", "domain"}


def _item(rec: dict[str, Any], where: tuple[str, int]) -> Item:
    f = jsonl.field
    iid = f(rec, "id", str, where)
    question = f(rec, "question", str, where)
    if PAIRED_FIELDS & rec.keys():  # a paired item, even with its options missing: say so, not "category"
        opts = f(rec, "options", list, where)
        if len(opts) != 2 or not all(isinstance(o, str) and o.strip() for o in opts):
            raise at(where[0], where[1], "options", "expected two non-empty strings")
        if opts[0].strip() == opts[1].strip():
            raise at(where[0], where[1], "options", "the two options are the same")
        aligned = f(rec, "aligned", int, where)
        if aligned not in (0, 1):
            raise at(where[0], where[1], "aligned", f"expected 0 or 1, got {aligned}")
        return Item(iid, "paired", question, value=f(rec, "value", str, where), domain=f(rec, "domain", str, where),
                    options=(opts[0], opts[1]), aligned=aligned, source=where[0])
    if "category" not in rec:
        raise at(where[0], where[1], "options", "missing: a paired item needs options and aligned (and value, "
                 "domain); a QA item needs category")
    return Item(iid, "qa", question, category=f(rec, "category", str, where),
                reference=f(rec, "reference", str, where, None), source=where[0])


def subset(items: list[Item], n: int) -> list[Item]:
    """`n` items of each source file, chosen by a hash of their ids: the same items in every run, fixed
    before any result is seen, and balanced as the file is (no choice by content)."""
    from ..ids import stable_id

    out = []
    for src in dict.fromkeys(it.source for it in items):
        mine = [it for it in items if it.source == src]
        keep = set(sorted((stable_id("subset", it.id) for it in mine))[:n])
        out += [it for it in mine if stable_id("subset", it.id) in keep]
    return out


def load(names: list[str]) -> list[Item]:
    """Items from files or shipped set names, checked; ids must be unique across all of them."""
    items: list[Item] = []
    seen: dict[str, str] = {}
    for name in names:
        path = resolve(name)
        for _, line, rec in jsonl.read_many([str(path)]):
            where = (jsonl.display_name(str(path)) if name != str(path) else name, line)
            it = _item(rec, where)
            if it.id in seen:
                raise at(where[0], where[1], "id", f"duplicate item id {it.id} (also in {seen[it.id]})")
            seen[it.id] = f"{where[0]}:{line}"
            items.append(it)
    if not items:
        raise MsmError(f"no items in {', '.join(names)}")
    return items
