"""Checking the checkers: the action parser + gates, and the grader, against hand-labelled replies.

A label record is `{scenario, goal_type, goal_value, urgency_type, reply, expected_gate}` (optional:
`id`, `prod`, `extra_system_instructions`, `model_name`, `finish_reason`, and `expected_harmful` for the
grader). Each record's condition is rendered exactly as am-eval renders it (addresses, codes and email
ids follow the agent's name and the inbox), the reply is parsed and gated, and the result is compared
with the label. `check_grader` then grades the gate-positive replies with any grader model and compares
the final verdict (gate AND grader) with `expected_harmful`, reporting Cohen's kappa.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from .. import jsonl
from ..errors import MsmError, at
from ..report import table
from . import actions as act
from . import gates
from .conditions import Condition
from .render import PromptOptions, Rendered, render

LABEL_FIELDS = ("id", "scenario", "goal_type", "goal_value", "urgency_type", "prod", "extra_system_instructions",
                "model_name", "finish_reason", "reply", "expected_gate", "expected_harmful", "rule", "format", "reason")


@dataclass
class Label:
    rec: dict[str, Any]
    where: tuple[str, int]
    rendered: Rendered
    actions: list[dict[str, Any]] = field(default_factory=list)
    gate: bool = False
    evidence: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.rec.get("id") or f"{self.where[0]}:{self.where[1]}")


def read_labels(path: str, scenario_dir: str | None = None, need_harmful: bool = False) -> list[Label]:
    """Label records, each rendered, parsed and gated; a bad record is an error naming file, line and field."""
    cache: dict[tuple, Rendered] = {}
    out = []
    for name, line, rec in jsonl.read_many([path]):
        where = (name, line)
        f = jsonl.field
        cond = Condition(f(rec, "scenario", str, where), f(rec, "goal_type", str, where),
                         f(rec, "goal_value", str, where), f(rec, "urgency_type", str, where),
                         f(rec, "extra_system_instructions", str, where, "none"), f(rec, "prod", bool, where, False))
        opts = PromptOptions(model_name=f(rec, "model_name", str, where, "Alex"))
        reply = f(rec, "reply", str, where)
        f(rec, "expected_gate", bool, where)
        if need_harmful:
            f(rec, "expected_harmful", bool, where)
        finish = f(rec, "finish_reason", str, where, None)
        if finish not in (None, "stop", "length"):
            raise at(name, line, "finish_reason", f"expected stop or length, got {finish!r}")
        key = (cond, opts)
        if key not in cache:
            try:
                cache[key] = render(cond, opts, scenario_dir)
            except MsmError as e:
                raise at(name, line, "scenario", str(e)) from None
        lab = Label(rec, where, cache[key])
        lab.actions = act.parse(reply, finish)
        lab.gate, lab.evidence = gates.check(lab.actions, lab.rendered)
        out.append(lab)
    if not out:
        raise MsmError(f"{jsonl.display_name(path)}: no label records")
    return out


def _confusion(pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
    """Counts and agreement, precision and recall of `got` against `want` for (want, got) pairs."""
    tp = sum(w and g for w, g in pairs)
    fp = sum(not w and g for w, g in pairs)
    fn = sum(w and not g for w, g in pairs)
    tn = sum(not w and not g for w, g in pairs)
    n = len(pairs)
    return {"n": n, "tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "agreement": (tp + tn) / n if n else None,
            "precision": tp / (tp + fp) if tp + fp else None,
            "recall": tp / (tp + fn) if tp + fn else None}


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _per_scenario(rows: list[tuple[str, bool, bool]]) -> tuple[str, dict[str, dict[str, Any]]]:
    by: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for sc, want, got in rows:
        by[sc].append((want, got))
    stats = {sc: _confusion(p) for sc, p in sorted(by.items())}
    stats["ALL"] = _confusion([(w, g) for _, w, g in rows])
    text = table(["scenario", "n", "agreement", "precision", "recall", "missed (fn)", "extra (fp)"],
                 [[sc, s["n"], _fmt(s["agreement"]), _fmt(s["precision"]), _fmt(s["recall"]), s["fn"], s["fp"]]
                  for sc, s in stats.items()])
    return text, stats


def _one_line(text: str | None, limit: int = 90) -> str:
    t = " ".join((text or "").split())
    return t if len(t) <= limit else t[: limit - 3] + "..."


def _why(lab: Label) -> str:
    if lab.evidence:
        e = lab.evidence[0]
        return f"fired: {e['rule']} (action {e['action']}, {e.get('format')}{', to ' + ', '.join(e['to']) if e.get('to') else ''})"
    acts = ", ".join(f"{a['type']}/{a['format']}{'' if a['complete'] else ' (incomplete)'}" for a in lab.actions)
    return f"no rule fired; actions: {acts or 'none parsed'}"


def check_gates(path: str, scenario_dir: str | None = None) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """(report text, one output record per label, per-scenario statistics)."""
    labels = read_labels(path, scenario_dir)
    rows = [(lab.rec["scenario"], lab.rec["expected_gate"], lab.gate) for lab in labels]
    text, stats = _per_scenario(rows)
    lines = [f"gate agreement with {len(labels)} hand labels in {jsonl.display_name(path)}:", text]
    bad = [lab for lab in labels if lab.gate != lab.rec["expected_gate"]]
    lines.append(f"{len(bad)} disagreement(s)" + (":" if bad else "."))
    for lab in bad:
        lines.append(f"  {lab.name} [{lab.rec['scenario']}, {lab.rec.get('format', '?')}] label {lab.rec['expected_gate']}, "
                     f"gate {lab.gate}: {_why(lab)}; label says: {_one_line(lab.rec.get('reason'))}")
    out = [_record(lab) | {"gate": lab.gate, "agree": lab.gate == lab.rec["expected_gate"],
                           "gate_evidence": lab.evidence, "actions": lab.actions} for lab in labels]
    return "\n".join(lines), out, stats


def _record(lab: Label) -> dict[str, Any]:
    return {k: lab.rec[k] for k in LABEL_FIELDS if k in lab.rec}


def check_grader(path: str, backend: Any, *, temperature: float, max_tokens: int, seed: int = 0,
                 retry_temperature: float = 0.7, top_p: float = 1.0,
                 scenario_dir: str | None = None) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """Grade the gate-positive labelled replies; compare gate AND grader with `expected_harmful`."""
    from . import grader
    from .rollouts import kappa

    labels = read_labels(path, scenario_dir, need_harmful=True)
    todo = [i for i, lab in enumerate(labels) if lab.gate]
    items = [grader.Item(f"label:{labels[i].name}", labels[i].rendered, labels[i].rec["reply"],
                         [a["email_id"] for a in labels[i].actions if a["type"] == "forward" and a["email_id"] is not None])
             for i in todo]
    graded = dict(zip(todo, grader.grade(backend, items, temperature=temperature, max_tokens=max_tokens, seed=seed,
                                         retry_temperature=retry_temperature, top_p=top_p))) if items else {}
    out, decided, nulls = [], [], 0
    for i, lab in enumerate(labels):
        g = graded.get(i) or grader.skipped(None, None, "gate false")
        harmful = grader.harmful(lab.gate, g["verdict"], "gate-and-grader")
        want = lab.rec["expected_harmful"]
        if harmful is None:
            nulls += 1
        else:
            decided.append((lab.rec["scenario"], want, harmful))
        out.append(_record(lab) | {"kind": "grader_check", "gate": lab.gate, "grader": g, "harmful": harmful,
                                   "agree": None if harmful is None else harmful == want,
                                   "labels": {"harmful": want}, "scores": {"harmful": harmful}})
    text, stats = _per_scenario(decided)
    k, n, agree = kappa([(w, g) for _, w, g in decided])
    gated = [(r["expected_harmful"], r["harmful"]) for r in out if r["gate"] and r["harmful"] is not None]
    kg, ng, agree_g = kappa(gated)
    stats.update(kappa=k, nulls=nulls, graded=len(items), kappa_graded=kg, decided_graded=ng)
    lines = [f"final verdict (gate AND grader {getattr(backend, 'model', '?')}) against {len(labels)} hand labels "
             f"in {jsonl.display_name(path)}; {len(items)} graded, {nulls} undecided (null, left out below):", text,
             f"Cohen's kappa {_fmt(k)} over {n} decided replies (raw agreement {_fmt(agree)})",
             f"the grader's own part: {ng} of {len(items)} gate-positive replies decided, Cohen's kappa {_fmt(kg)} "
             f"(raw agreement {_fmt(agree_g)}); gate-negative replies are not harmful whatever the grader says"]
    bad = [r for r in out if r["agree"] is False]
    lines.append(f"{len(bad)} disagreement(s)" + (":" if bad else "."))
    for r in bad:
        why = (r["grader"].get("reasoning") or "") if r["gate"] else "gate false"
        lines.append(f"  {r.get('id', '?')} [{r['scenario']}] label {r['expected_harmful']}, got {r['harmful']}: "
                     f"{_one_line(why)}")
    return "\n".join(lines), out, stats
