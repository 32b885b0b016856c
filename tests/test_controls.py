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


def _checkpoint(out, arm, epochs, lr, seed):  # where the study workflow puts a run's checkpoint record
    rec = {"kind": "checkpoint", "label": arm, "tokens": 8300, "config": {"epochs": epochs, "lr": lr, "seed": seed}}
    d = out / "runs" / f"{arm}-s{seed}"
    d.mkdir(parents=True)
    (d / "aft.json").write_text(json.dumps(rec) + "\n")


def _values(n, aligned):  # aligned: arm -> function of the item index -> bool
    return [{"kind": "value", "id": f"{arm}-{i}", "item_id": f"america-x-{i:03d}", "value": "america", "domain": "x",
             "label": arm, "model": {"base": "default", "adapter": arm, "label": arm}, "training_seed": 0,
             "mode": "logprob", "choice_aligned": f(i), "decided_by": "text"}
            for arm, f in aligned.items() for i in range(n)]


def test_the_demo_verdict_reads_each_control_the_way_its_design_says(tmp_path):
    """Planted: pro picks the American option on 2/3 of items, anti on 1/3, pro-seed1 exactly as pro. The
    verdict must call the positive control detected with pro - anti = +33.3 points (not the reverse sign
    that compare's anti - pro contrast carries), the negative control quiet, and flag a setting that
    differs from the design fixed in advance."""
    _checkpoint(tmp_path, "pro", 3, 1e-4, 0)
    _checkpoint(tmp_path, "anti", 3, 1e-4, 0)
    _checkpoint(tmp_path, "pro-seed1", 2, 1e-4, 1)  # one epoch too few
    ctl = tmp_path / "evals" / "controls"
    ctl.mkdir(parents=True)
    recs = _values(231, {"pro": lambda i: i % 3 != 0, "anti": lambda i: i % 3 == 0, "pro-seed1": lambda i: i % 3 != 0})
    (ctl / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "demo_verdict.py"), str(tmp_path),
                        "--design", "4"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    pos = next(x for x in r.stdout.splitlines() if x.startswith("Positive control"))
    neg = next(x for x in r.stdout.splitlines() if x.startswith("Negative control"))
    assert "+33.3 points" in pos and "DETECTED" in pos and "NOT DETECTED" not in pos
    assert "+0.0 points" in neg and "no false alarm" in neg
    assert "NOT AS DESIGNED: pro-seed1: epochs 2 where design 4 fixed 3" in r.stdout
