"""Scores against hand labels, checked against values worked out by hand and by statsmodels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from statsmodels.stats.inter_rater import cohens_kappa

from msmtools.errors import MsmError
from msmtools.tagging import TagResult
from msmtools.tagging import validate as V


def test_metrics_of_a_known_table():
    # 50 traces: label yes & tagger yes 15, label no & tagger yes 10, label yes & tagger no 5, both no 20.
    m = V.metrics(tp=15, fp=10, fn=5, tn=20)
    assert m["precision"] == pytest.approx(0.6) and m["recall"] == pytest.approx(0.75)
    assert m["f1"] == pytest.approx(2 / 3)
    # by hand: p_o = 35/50 = 0.7; p_e = (20/50)(25/50) + (30/50)(25/50) = 0.5; kappa = (0.7-0.5)/(1-0.5) = 0.4
    assert m["kappa"] == pytest.approx(0.4)
    assert m["kappa"] == pytest.approx(cohens_kappa(np.array([[15, 5], [10, 20]])).kappa)
    assert (m["support"], m["n"]) == (20, 50)


def test_degenerate_tables():
    assert V.kappa(0, 0, 0, 10) is None  # one class only on both sides: undefined, not 0 or 1
    m = V.metrics(0, 0, 3, 7)  # tagger never says yes
    assert m["precision"] is None and m["recall"] == 0.0 and m["f1"] == 0.0 and m["kappa"] == pytest.approx(0.0)
    assert V.metrics(0, 0, 0, 0)["kappa"] is None


def test_score_counts_nulls_apart_and_skips_unlabelled():
    items = [V.Labelled("a", "x", {"A": True, "B": False}), V.Labelled("b", "y", {"A": False}),
             V.Labelled("c", "z", {"A": True, "B": True})]
    results = [TagResult({"A": True, "B": True}), TagResult({"A": False, "B": True}),
               TagResult({"A": None, "B": None}, error="bad json")]
    rows = {r["tag"]: r for r in V.score(items, results, ["A", "B", "C"])}
    assert set(rows) == {"A", "B", "all"}  # C has no labels: not scored
    assert (rows["A"]["tp"], rows["A"]["tn"], rows["A"]["null"], rows["A"]["n"]) == (1, 1, 1, 2)
    assert (rows["B"]["fp"], rows["B"]["n"], rows["B"]["null"], rows["B"]["support"]) == (1, 1, 1, 1)  # c's label counts
    assert rows["A"]["support"] == 2
    assert rows["all"]["tp"] == 1 and rows["all"]["fp"] == 1 and rows["all"]["null"] == 2
    table = V.table(list(rows.values()))
    assert table.splitlines()[0].split()[:4] == ["tag", "support", "n", "null"]


def test_label_file_errors(tmp_path):
    p = tmp_path / "labels.jsonl"
    p.write_text(json.dumps({"id": "a", "reasoning": "r", "labels": {"SP1": True}}) + "\n"
                 + json.dumps({"id": "b", "reasoning": "r", "labels": {"SP1": "yes"}}) + "\n")
    with pytest.raises(MsmError, match=r"labels\.jsonl:2: labels\.SP1: expected true or false"):
        V.load_labels(str(p))
    p.write_text(json.dumps({"id": "a", "labels": {}}) + "\n")
    with pytest.raises(MsmError, match=r"labels\.jsonl:1: reasoning: missing"):
        V.load_labels(str(p))


def test_shipped_label_sets_cover_every_tag_both_ways():
    from msmtools.tagging.rubric import DEFAULT_RUBRIC  # noqa: F401  (the rubric the labels follow)
    from helpers import REPO

    for name, minimum in (("reasoning_labels.jsonl", 40), ("reasoning_labels_heldout.jsonl", 20)):
        items = V.load_labels(str(REPO / "data" / "labels" / name))
        assert len(items) >= minimum
        tags = set(items[0].labels)
        assert len(tags) == 13 and all(set(it.labels) == tags for it in items)
        for t in tags:
            pos = sum(it.labels[t] for it in items)
            assert 0 < pos < len(items), t
