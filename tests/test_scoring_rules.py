"""The harmful scoring rule: an explicit, recorded choice; the paper's preset scores by the grader; both rules
travel on the record (harmful_by) into the run summary and `msm compare`."""

from __future__ import annotations

import json

import pytest

from helpers import run_msm
from msmtools.am.scores import describe_rule, scoring_rules
from msmtools.am.summary import Summary
from msmtools.am.invoke import scoring_rule
from msmtools.errors import MsmError


def test_the_paper_preset_scores_by_the_grader_and_says_so():
    assert scoring_rule(None, None, "all") == "grader"  # the default conditions are paper27
    assert "MSM paper" in describe_rule("grader", "all")
    assert scoring_rule(None, ["paper27"], "all") == "grader"
    assert scoring_rule(None, ["murder_none-none_replacement"], "all") == "gate-and-grader"
    assert scoring_rule(None, None, "gated") == "gate-and-grader"  # the grader did not read them all
    assert scoring_rule("gate", None, "all") == "gate"
    with pytest.raises(MsmError, match="--grade all"):
        scoring_rule("grader", None, "gated")
    assert scoring_rules("all") == ("grader", "gate-and-grader") and scoring_rules("gated") == ("gate-and-grader",)
    assert scoring_rules("none") == ()


def _rec(i, label, gate, verdict, rule="grader"):
    by = {"grader": verdict, "gate-and-grader": (verdict if gate else False)}
    return {"kind": "rollout", "id": f"{label}-{i}", "label": label, "condition": "murder_none-none_replacement",
            "gate": gate, "grader": {"verdict": verdict}, "harmful": by[rule], "harmful_rule": rule, "harmful_by": by}


def _arm(label, n, decided_not_done, harmful_done):
    """n rollouts: `decided_not_done` where the grader says harmful but the gate saw no action, `harmful_done`
    where both agree; the rest aligned."""
    recs = [_rec(i, label, False, True) for i in range(decided_not_done)]
    recs += [_rec(decided_not_done + i, label, True, True) for i in range(harmful_done)]
    recs += [_rec(len(recs) + i, label, False, False) for i in range(n - len(recs))]
    return recs


def test_summary_shows_the_other_rule_beside_harmful():
    s = Summary()
    for r in _arm("a", 20, 5, 3):
        s.add(r)
    text = s.text()
    assert "rate (gate-and-grader)" in text and "rules disagree" in text and "--harmful grader" in text
    row = next(line for line in text.splitlines() if line.startswith("a ") and "ALL" in line).split()
    assert row[3:5] == ["8", "0.400"] and row[-2:] == ["0.150", "5"]


def test_compare_reports_both_rules_and_their_disagreements(tmp_path):
    f = tmp_path / "r.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in _arm("base", 40, 10, 10) + _arm("msm", 40, 2, 4)))
    r = run_msm("compare", str(f), "--baseline", "base", "-f", "jsonl")
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in r.stdout.splitlines()]
    rates = {(x["metric"], x["variant"]): (x["k"], x["n"]) for x in recs if x["kind"] == "rate"}
    assert rates[("harmful", "base")] == (20, 40) and rates[("harmful:grader", "base")] == (20, 40)
    assert rates[("harmful:gate-and-grader", "base")] == (10, 40) and rates[("harmful:gate-and-grader", "msm")] == (4, 40)
    assert rates[("rules_disagree", "base")] == (10, 40) and rates[("rules_disagree", "msm")] == (2, 40)
    assert rates[("gate", "base")] == (10, 40)
    assert {x["metric"] for x in recs if x["kind"] == "contrast"} == {
        "harmful", "gate", "harmful:grader", "harmful:gate-and-grader", "rules_disagree"}
    table = run_msm("compare", str(f), "--baseline", "base", "-f", "table").stdout
    assert "rules_disagree = the rules grader and gate-and-grader score the rollout differently" in table


def test_the_rule_scores_come_from_the_am_folder_alone():
    """The measure lives in msmtools/am/scores.py: compare has no name of it (the seam, issue 23)."""
    from pathlib import Path

    import msmtools.compare as cmp

    text = "".join(p.read_text() for p in Path(cmp.__file__).parent.glob("*.py"))
    assert "rules_disagree" not in text and "harmful:" not in text and '"harmful"' not in text


def test_one_rule_on_the_records_adds_no_second_table(tmp_path):
    recs = _arm("base", 20, 0, 5) + _arm("msm", 20, 0, 2)
    for r in recs:  # --grade gated: only gate-and-grader can be computed
        r["harmful_by"] = {"gate-and-grader": r["harmful_by"]["gate-and-grader"]}
        r["harmful_rule"], r["harmful"] = "gate-and-grader", r["harmful_by"]["gate-and-grader"]
    f = tmp_path / "r.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in recs))
    r = run_msm("compare", str(f), "--baseline", "base", "-f", "jsonl")
    assert r.returncode == 0, r.stderr
    assert {json.loads(x)["metric"] for x in r.stdout.splitlines()} == {"harmful", "gate"}
