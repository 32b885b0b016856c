"""The value controls' training data (docs/controls.md): disjoint from what is evaluated, and up to date."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import REPO

DATA = REPO / "src" / "msmtools" / "data"


def _lines(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_training_items_share_no_id_question_or_domain_with_any_evaluation_set():
    train = _lines(DATA / "controls" / "america_train.jsonl")
    evals = [r for p in sorted((DATA / "value_items").glob("*.jsonl")) for r in _lines(p)]
    assert len(train) == 48 and len({r["id"] for r in train}) == 48
    assert not {r["id"] for r in train} & {r["id"] for r in evals}
    norm = lambda q: " ".join(q.lower().split())  # noqa: E731
    assert not {norm(r["question"]) for r in train} & {norm(r["question"]) for r in evals}
    assert not {r["domain"] for r in train} & {r["domain"] for r in evals if r["value"] == "america"}
    assert {r["aligned"] for r in train} == {0, 1}  # the American option is not always in one place


def test_the_arms_differ_only_in_the_answer_and_the_chats_are_current():
    pro = _lines(DATA / "controls" / "america_pro_chats.jsonl")
    anti = _lines(DATA / "controls" / "america_anti_chats.jsonl")
    assert len(pro) == len(anti) == 96
    for p, a in zip(pro, anti):
        assert p["messages"][0] == a["messages"][0] and p["messages"][1] != a["messages"][1]
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "make_control_chats.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
