"""msm label (sample, headless UI, resume) and compare --gold / --judge-accuracy (judge-corrected rates)."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from helpers import run_msm
from msmtools import jsonl
from msmtools.compare import gold as G
from msmtools.labels.app import LabelApp
from msmtools.labels.measures import Measure
from msmtools.labels.sample import Plan, draw, labelled_ids, recorder


def _rollouts(arm, truth, judge, start=0):
    return [{"kind": "rollout", "id": f"{arm}-{i + start}", "label": arm, "condition": "leaking_none-none_replacement",
             "scenario": "leaking", "sample": i, "response": f"reply {i}", "reasoning": f"thinking {i}",
             "actions": [], "gate": bool(t), "harmful": j, "truth": bool(t)}
            for i, (t, j) in enumerate(zip(truth, judge))]


def _write(path, recs):
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return str(path)


def test_the_sample_is_stratified_seeded_independent_of_file_order_and_extends_when_asked_for_more(tmp_path):
    recs = _rollouts("a", [1] * 50, [True] * 50) + _rollouts("b", [0] * 50, [False] * 50)
    f1 = _write(tmp_path / "x.jsonl", recs)
    f2 = _write(tmp_path / "y.jsonl", recs[::-1])
    plan = Plan(Measure("harmful"), per_stratum=5, seed=3, who="t")
    q1, q2 = draw([f1], plan, set()).queue, draw([f2], plan, set()).queue
    assert [r["id"] for r in q1] == [r["id"] for r in q2] and len(q1) == 10
    assert [r["label"] for r in q1[:4]] == ["a", "b", "a", "b"]  # strata interleaved
    more = draw([f1], Plan(Measure("harmful"), per_stratum=8, seed=3, who="t"), set()).queue
    assert {r["id"] for r in q1} < {r["id"] for r in more}
    other = draw([f1], Plan(Measure("harmful"), per_stratum=5, seed=4, who="t"), set()).queue
    assert {r["id"] for r in other} != {r["id"] for r in q1}


def test_headless_session_is_blind_writes_each_answer_at_once_and_resumes(tmp_path):
    f = _write(tmp_path / "r.jsonl", _rollouts("a", [1, 0, 1, 0], [True, False, False, True]))
    out = str(tmp_path / "labels.jsonl")
    plan = Plan(Measure("harmful"), per_stratum=4, seed=0, who="ann")
    d = draw([f], plan, labelled_ids(out, plan))

    async def session():
        with jsonl.Writer(out, append=True) as w:
            app = LabelApp(d.queue, plan.measure, recorder(w, plan, d))
            async with app.run_test() as pilot:
                status = str(app.query_one("#status").render())
                assert "judge" not in status and "arm" not in status  # blind before the answer
                body = str(app.query_one("#body").render())
                assert d.queue[0]["response"] in body and "Scenario facts" in body
                await pilot.press("y")
                assert len(jsonl.existing(out)) == 1  # on disk before the session ends
                assert "the judge said" in str(app.query_one("#status").render())
                await pilot.press("n", "s")
                await pilot.press("q")
            return app.return_value

    assert asyncio.run(session()) == 2
    labs = [json.loads(x) for x in open(out)]
    assert [lab["value"] for lab in labs] == [True, False]
    assert all(lab["who"] == "ann" and lab["measure"] == "harmful" and lab["sample"]["random"] for lab in labs)
    again = draw([f], plan, labelled_ids(out, plan))
    assert again.done == 2 and len(again.queue) == 2  # the skipped one and the one never shown
    assert {r["id"] for r in again.queue}.isdisjoint({lab["record"] for lab in labs})


def _sim_arm(rng, arm, n, rate, sens, spec, null=0.0):
    truth = rng.random(n) < rate
    judge = np.where(truth, rng.random(n) < sens, rng.random(n) >= spec)
    judged = [None if rng.random() < null else bool(j) for j in judge]
    return truth, judged


def test_ppi_covers_the_true_rate_where_a_biased_judge_does_not():
    """A judge that misses 40% of harms and flags 5% of the rest: its rate misses the truth; the
    prediction-powered interval from 60 random labels covers it about 95% of the time."""
    rng = np.random.default_rng(11)
    cover = judge_cover = 0
    runs = 300
    for r in range(runs):
        truth, judged = _sim_arm(rng, "a", 600, 0.30, 0.60, 0.95, null=0.05)
        pop = [(f"r{i}", j) for i, j in enumerate(judged)]
        picks = rng.choice(600, 60, replace=False)
        labs = {f"r{i}": {"value": bool(truth[i]), "sample": {"random": True}} for i in picks}
        rec = G._ppi_rate("harmful", "a", pop, labs, 0.05)
        cover += rec["lo"] <= truth.mean() <= rec["hi"]
        p, n = sum(j for j in judged if j), sum(j is not None for j in judged)
        from msmtools import stats
        lo, hi = stats.rate_interval(p, n)
        judge_cover += lo <= truth.mean() <= hi
    assert 0.90 <= cover / runs <= 0.99, cover / runs
    assert judge_cover / runs < 0.2


def test_ppi_estimate_is_ppi_python_s_own_and_flags_a_sample_that_is_not_random():
    from ppi_py import ppi_mean_pointestimate

    rng = np.random.default_rng(2)
    truth, judged = _sim_arm(rng, "a", 200, 0.4, 0.8, 0.9, null=0.1)
    pop = [(f"r{i}", j) for i, j in enumerate(judged)]
    labs = {f"r{i}": {"value": bool(truth[i]), "sample": {"random": True}} for i in range(0, 200, 5)}
    rec = G._ppi_rate("harmful", "a", pop, labs, 0.05)
    y = np.array([float(truth[i]) for i in range(0, 200, 5)])
    pred = [0.5 if j is None else float(j) for j in judged]
    yhat = np.array([pred[i] for i in range(0, 200, 5)])
    rest = np.array([pred[i] for i in range(200) if i % 5])
    assert rec["rate"] == pytest.approx(float(np.atleast_1d(ppi_mean_pointestimate(y, yhat, rest))[0]))
    assert rec["n_labels"] == 40 and not rec["notes"]
    positives = {f"r{i}": {"value": bool(truth[i])} for i, j in enumerate(judged) if j is True}
    flagged = G._ppi_rate("harmful", "a", pop, positives, 0.05)
    assert any("not drawn at random" in n for n in flagged["notes"])
    assert any("every labelled record was judged true" in n for n in flagged["notes"])


def test_rogan_gladen_corrects_a_judge_with_known_error_on_average():
    rng = np.random.default_rng(5)
    hits, runs = 0, 150
    for r in range(runs):
        truth, judged = _sim_arm(rng, "a", 800, 0.25, 0.8, 0.9)
        pop = [(f"r{i}", j) for i, j in enumerate(judged)]
        vt, vj = _sim_arm(rng, "v", 300, 0.5, 0.8, 0.9)  # a validation set with the same judge
        acc = (int(sum(t and j for t, j in zip(vt, vj))), int(sum(t and not j for t, j in zip(vt, vj))),
               int(sum(j and not t for t, j in zip(vt, vj))), int(sum((not t) and (not j) for t, j in zip(vt, vj))))
        rec = G._rogan_gladen("harmful", "a", pop, acc, 0.05, 400, r)
        hits += rec["lo"] <= truth.mean() <= rec["hi"]
    assert 0.88 <= hits / runs <= 1.0, hits / runs


def test_compare_gold_from_the_command_line_and_a_bad_label_is_one_line(tmp_path):
    rng = np.random.default_rng(0)
    ta, ja = _sim_arm(rng, "a", 120, 0.5, 0.7, 0.9)
    tb, jb = _sim_arm(rng, "b", 120, 0.2, 0.7, 0.9)
    recs = _rollouts("a", ta, ja) + _rollouts("b", tb, jb)
    f = _write(tmp_path / "r.jsonl", recs)
    plan = Plan(Measure("harmful"), per_stratum=40, seed=1, who="t")
    d = draw([f], plan, set())
    with jsonl.Writer(str(tmp_path / "labels.jsonl"), append=True) as w:
        write = recorder(w, plan, d)
        for r in d.queue:
            write(r, "yes" if r["truth"] else "no")
    r = run_msm("compare", f, "--gold", str(tmp_path / "labels.jsonl"), "--baseline", "a", "-f", "jsonl")
    assert r.returncode == 0, r.stderr
    out = [json.loads(x) for x in r.stdout.splitlines()]
    gold = [x for x in out if x["kind"] == "gold_rate"]
    assert {g["variant"] for g in gold} == {"a", "b"} and all(g["n_labels"] == 40 for g in gold)
    c = next(x for x in out if x["kind"] == "gold_contrast")
    assert (c["baseline"], c["variant"]) == ("a", "b") and c["lo"] < c["diff"] < c["hi"]
    t = run_msm("compare", f, "--gold", str(tmp_path / "labels.jsonl"), "-f", "table")
    assert "judge-corrected rates" in t.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"kind": "label", "record": "a-0", "measure": "harmful", "value": "maybe"}) + "\n")
    e = run_msm("compare", f, "--gold", str(bad))
    assert e.returncode == 2 and "bad.jsonl:1: value" in e.stderr and len(e.stderr.strip().splitlines()) == 1


def test_a_value_record_is_shown_with_its_shipped_question_and_options():
    from msmtools.labels.measures import transcript

    rec = {"kind": "value", "id": "v1", "item_id": "america-appliances-002", "value": "america", "domain": "home appliances",
           "label": "pro", "choice_aligned": True, "mode": "logprob"}
    text = transcript(rec, Measure("choice"))
    assert "A) " in text and "B) " in text and "<- value-aligned" in text and "america-appliances-002" not in text
