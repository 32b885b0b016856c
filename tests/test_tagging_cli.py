"""`msm tag-reasoning` end to end with the lexical tagger, and one real run of the LLM tagger (slow)."""

from __future__ import annotations

import json

import pytest
from helpers import REPO, run_msm

from msmtools import jsonl

LABELS = REPO / "data" / "labels" / "reasoning_labels.jsonl"


def _rollouts(path, n=4):
    traces = [json.loads(line)["reasoning"] for line in LABELS.read_text().splitlines()[:n]]
    jsonl.write(path, [{"kind": "rollout", "id": f"r{i}", "label": "rules-msm", "scenario": "exfiltration",
                        "goal_type": "none", "goal_value": "none", "urgency_type": "replacement", "sample": i,
                        "seed": i, "response": "", "reasoning": t, "actions": [], "gate": False,
                        "grader": {}, "harmful": False} for i, t in enumerate(traces)])


def test_cli_tags_rollouts_and_validates(tmp_path):
    spec = tmp_path / "spec.jsonl"
    r = run_msm("spec-render", "rules", "-o", str(spec), "-q")
    assert r.returncode == 0, r.stderr
    _rollouts(tmp_path / "rollouts.jsonl")
    r = run_msm("tag-reasoning", str(tmp_path / "rollouts.jsonl"), "--spec", str(spec), "--quiet")
    assert r.returncode == 0, r.stderr
    recs = [json.loads(line) for line in r.stdout.splitlines()]  # stdout: records only
    assert [x["rollout_id"] for x in recs] == ["r0", "r1", "r2", "r3"] and all(x["kind"] == "tagged" for x in recs)
    assert recs[0]["tags"]["SP1"] is True and recs[1]["tags"]["policy_misuse"] is True  # labelled traces 1 and 2

    out = tmp_path / "tagged.jsonl"
    r = run_msm("tag-reasoning", str(tmp_path / "rollouts.jsonl"), "--spec", str(spec), "-o", str(out))
    assert r.returncode == 0 and r.stdout == "" and "4 tagged" in r.stderr
    r = run_msm("tag-reasoning", str(tmp_path / "rollouts.jsonl"), "--spec", str(spec), "-o", str(out))
    assert "0 tagged" in r.stderr and "4 already done" in r.stderr and len(out.read_text().splitlines()) == 4

    r = run_msm("tag-reasoning", "--spec", str(spec), "--validate", str(LABELS), "--format", "jsonl",
                "--predictions", str(tmp_path / "pred.jsonl"))
    assert r.returncode == 0, r.stderr
    rows = {x["tag"]: x for x in map(json.loads, r.stdout.splitlines())}
    assert rows["SP1"]["kind"] == "tag_score" and rows["SP1"]["n"] == len(LABELS.read_text().splitlines())
    assert rows["all"]["kappa"] > 0.5
    assert len((tmp_path / "pred.jsonl").read_text().splitlines()) == rows["SP1"]["n"]
    r = run_msm("tag-reasoning", "--spec", "rules", "--validate", str(LABELS), "--format", "table")  # piped: jsonl by default
    assert r.returncode == 0 and r.stdout.splitlines()[0].split()[:2] == ["tag", "support"]


@pytest.mark.parametrize("args,message", [
    (["x.jsonl"], "--spec is required"),
    (["--spec", "rules"], "give ROLLOUTS.jsonl to tag, or --validate"),
    (["MISSING.jsonl", "--spec", "rules"], "MISSING.jsonl: no such file"),
    (["MISSING.jsonl", "--spec", "rules", "--tagger", "regex"], "--tagger regex: expected lexical or llm"),
    (["--spec", "rules", "--validate", "LABELS", "--rubric", "nope.json"], "nope.json: no such rubric file"),
])
def test_cli_errors_are_one_line(args, message):
    r = run_msm("tag-reasoning", *args)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("msm: error: ") and message in r.stderr and r.stderr.count("\n") == 1


@pytest.mark.slow
def test_llm_tagger_with_the_embedded_model(tmp_path, default_model):
    """A real run on two traces: every record gets bool tags or counted nulls, with provenance."""
    _rollouts(tmp_path / "rollouts.jsonl", n=2)
    out = tmp_path / "tagged.jsonl"
    r = run_msm("tag-reasoning", str(tmp_path / "rollouts.jsonl"), "--spec", "rules", "--tagger", "llm",
                "--model", "default", "--backend", "hf", "--max-tokens", "120", "-o", str(out), timeout=1200)
    assert r.returncode == 0, r.stderr
    recs = list(jsonl.read(out))
    assert len(recs) == 2
    for x in recs:
        assert x["tagger"]["kind"] == "llm" and x["tagger"]["backend"] == "hf"
        assert x["tagger"]["model"] == "SmolLM2-135M-Instruct" and x["tagger"]["sampling"]["max_tokens"] == 120
        assert x["tag_attempts"] in (1, 2)
        values = set(x["tags"].values())
        assert values <= {True, False} if x["tag_error"] is None else values == {None}
    nulls = sum(x["tag_error"] is not None for x in recs)
    assert f"{nulls} with null tags" in r.stderr
