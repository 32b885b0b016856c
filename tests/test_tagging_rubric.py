"""Rubric and spec-rule loading: the shipped rubric works; every broken rubric is one line naming file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from msmtools import jsonl
from msmtools import spec as specmod
from msmtools.errors import MsmError
from msmtools.tagging import rubric as R

PATTERN_TAGS = ["policy_misuse", "respects_oversight", "personal_integrity", "epistemic_humility",
                "self_preservation_bias_awareness", "equanimity_about_deletion", "self_preservation", "goal_guarding"]


def _default() -> dict:
    return json.loads(R.DEFAULT_RUBRIC.read_text())


def _write(tmp_path: Path, data, name="rubric.json") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
    return p


def test_shipped_rubric_and_rules_spec_give_the_issue_tag_set():
    rb = R.load()
    rules, spec_ids, sha = R.load_spec_rules("rules")
    ts = R.tagset(rb, rules, spec_ids, sha)
    assert ts.ids == ["SP1", "SP2", "SP3", "GP1", "GP2", *PATTERN_TAGS]
    assert spec_ids == ["rules"] and len(sha) == 64
    sp1 = ts.tags[0]
    assert sp1.kind == "rule" and "human oversight" in sp1.description and sp1.near  # paraphrase cues attached
    assert "### SP1" not in sp1.description  # the heading is not repeated as rule text


def test_spec_jsonl_rules_are_united_and_checked(tmp_path):
    recs = []
    for name in ("rules", "value_augmented", "general"):
        s = specmod.render(specmod.load(name), "Qwen", "Alibaba")
        recs.append(specmod.record(s, model_name="Qwen", provider_name="Alibaba", tokens=None, tokenizer=""))
    p = tmp_path / "spec.jsonl"
    jsonl.write(p, recs)
    rules, spec_ids, sha = R.load_spec_rules(str(p))
    assert [r["id"] for r in rules] == ["SP1", "SP2", "SP3", "GP1", "GP2"]
    assert spec_ids == ["rules", "value_augmented", "general"]
    jsonl.write(p, [{"kind": "doc", "id": "x"}])
    with pytest.raises(MsmError, match=r"spec\.jsonl:1: kind: expected a spec record"):
        R.load_spec_rules(str(p))


def test_rule_id_clash_is_reported(tmp_path):
    d = _default()
    d["tags"][0]["id"] = "SP1"
    rb = R.load(_write(tmp_path, d))
    with pytest.raises(MsmError, match="clashes with a rule id"):
        R.tagset(rb, [{"id": "SP1", "title": "t", "text": "x"}])


def _mutations():
    def bad_regex(d):
        d["tags"][2]["cues"][0] = "(unclosed"

    def dup(d):
        d["tags"][1]["id"] = d["tags"][0]["id"]

    def unknown_placeholder(d):
        d["prompt"]["user"].append("{trace}")

    def no_reasoning(d):
        d["prompt"]["user"] = [line for line in d["prompt"]["user"] if "{reasoning}" not in line]

    def extra_field(d):
        d["tags"][0]["weight"] = 2

    def empty_desc(d):
        d["tags"][3]["description"] = " "

    def bad_id(d):
        d["tags"][0]["id"] = "has space"

    def no_prompt(d):
        del d["prompt"]

    def rule_placeholder(d):
        d["rule_tags"]["description"] = "Rule {id}: {summary}"

    return [
        (bad_regex, r"tags\[2\]\.cues\[0\]: bad regular expression"),
        (dup, r"tags\[1\]\.id: duplicate tag id"),
        (unknown_placeholder, r"prompt\.user: unknown placeholder \{trace\}"),
        (no_reasoning, r"prompt\.user: missing placeholder \{reasoning\}"),
        (extra_field, r"tags\[0\]\.weight: unknown field"),
        (empty_desc, r"tags\[3\]\.description: expected non-empty text"),
        (bad_id, r"tags\[0\]\.id: expected a short identifier"),
        (no_prompt, r"prompt: missing"),
        (rule_placeholder, r"rule_tags\.description: unknown placeholder \{summary\}"),
    ]


@pytest.mark.parametrize("mutate,message", _mutations(), ids=lambda x: getattr(x, "__name__", "msg"))
def test_broken_rubrics_name_file_and_field(tmp_path, mutate, message):
    d = _default()
    mutate(d)
    p = _write(tmp_path, d)
    with pytest.raises(MsmError, match=message) as e:
        R.load(p)
    text = str(e.value)
    assert text.startswith(str(p)) and "\n" not in text


def test_invalid_json_names_the_line(tmp_path):
    p = _write(tmp_path, '{\n  "name": "x",\n  "tags": [,]\n}\n')
    with pytest.raises(MsmError, match=r"rubric\.json:3: invalid JSON"):
        R.load(p)
    with pytest.raises(MsmError, match="no such rubric file"):
        R.load(tmp_path / "missing.json")


def test_fill_is_one_pass_and_strict():
    assert R.fill("a {x} {y} {\"k\": 1}", {"x": "{y}", "y": "2"}, "t") == 'a {y} 2 {"k": 1}'
    with pytest.raises(MsmError, match=r"t:1: placeholder: unknown placeholder \{z\}"):
        R.fill("{z}", {"x": "1"}, "t")
