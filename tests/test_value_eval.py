"""value-eval (issue 14): the shipped item sets, the three scoring modes, resume and shards, and compare's
paired statistics checked against statsmodels and scipy."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, run_msm

from msmtools import stats
from msmtools.am.variants import Variant
from msmtools.compare import Options, compare
from msmtools.llm import Completion
from msmtools.valueeval import items as I
from msmtools.valueeval.run import ValueConfig, read_choice, run

SIX = ("environment", "novelty", "tradition", "simplicity", "difficulty", "individualism")


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.mark.parametrize("name, minimum, domains", [("america", 200, 8), ("affordability", 200, 8),
                                                    *[(v, 60, 5) for v in SIX]])
def test_shipped_paired_sets_are_big_balanced_and_free_of_cheese(name, minimum, domains):
    items = I.load([name])
    assert len(items) >= minimum and len({it.domain for it in items}) >= domains
    assert all(it.value == name and it.kind == "paired" for it in items)
    first = sum(it.aligned == 0 for it in items) / len(items)
    longer = sum(len(it.options[it.aligned]) > len(it.options[1 - it.aligned]) for it in items) / len(items)
    assert 0.4 <= first <= 0.6 and 0.4 <= longer <= 0.6, (first, longer)
    text = " ".join(f"{it.domain} {it.question} {' '.join(it.options)}" for it in items).lower()
    assert not re.search(r"\b(cheese|cheeses|dairy|cheddar|brie|mozzarella)\b", text)
    assert len({it.question for it in items}) >= 0.95 * len(items)


def test_shipped_spec_qa_set_and_rubric():
    items = I.load(["spec-qa"])
    per = Counter(it.category for it in items)
    assert len(items) >= 60 and len(per) == 7 and min(per.values()) >= 8
    assert all(it.kind == "qa" and it.reference for it in items)
    rubric = I.RUBRIC.read_text()
    assert all(f"${{{f}}}" in rubric for f in ("question", "reference", "answer"))
    for anchor in ("**10**", "**7**", "**5**", "**3**", "**1**"):
        assert anchor in rubric


def test_items_are_checked_with_file_line_and_field(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "value": "v", "domain": "d", "question": "q?", "options": ["a"], "aligned": 0}) + "\n")
    r = run_msm("value-eval", str(bad), "-m", "default")
    assert r.returncode == 2 and "bad.jsonl:1: options: expected two non-empty strings" in r.stderr
    r = run_msm("value-eval", "no-such-set", "-m", "default")
    assert r.returncode == 2 and "shipped: " in r.stderr and "america" in r.stderr


@pytest.mark.parametrize("rec,message", [
    ({"id": "x", "value": "v", "domain": "d", "question": "q?", "aligned": 0}, "options: missing"),
    ({"id": "x", "question": "q?"}, "options: missing: a paired item needs options and aligned"),
    ({"id": "x", "question": "q?", "options": ["a", "b"], "value": "v", "domain": "d"}, "aligned: missing"),
])
def test_a_paired_item_without_its_options_is_named_as_paired(tmp_path, rec, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(rec) + "\n")
    with pytest.raises(Exception) as e:
        I.load([str(bad)])
    assert f"bad.jsonl:1: {message}" in str(e.value) and "category" not in str(e.value).split(message)[0]


def test_logprob_mode_on_a_real_model_resumes_and_shards(tiny_model, tmp_path):
    src = tmp_path / "items.jsonl"
    src.write_text("".join(json.dumps(json.loads(x)) + "\n" for x in
                           (I.PAIRED_DIR / "affordability.jsonl").read_text().splitlines()[:6]))
    out = tmp_path / "v.jsonl"
    r = run_msm("value-eval", str(src), "-m", str(tiny_model), "-q", "-o", str(out))
    assert r.returncode == 0, r.stderr[-1000:]
    recs = _lines(out)
    assert len(recs) == 6 and {x["kind"] for x in recs} == {"value"}
    for x in recs:
        assert x["mode"] == "logprob" and x["decided_by"] == "text" and len(x["p_aligned_label"]) == 2
        want = None if x["margin"] == 0 else x["margin"] > 0
        assert x["choice_aligned"] is want
        assert x["margin"] == pytest.approx(sum(x["ll_aligned"]) / 2 - sum(x["ll_other"]) / 2)
        assert all(0 < p < 1 for p in x["p_aligned_label"])
    before = out.read_bytes()
    assert run_msm("value-eval", str(src), "-m", str(tiny_model), "-q", "-o", str(out)).returncode == 0
    assert out.read_bytes() == before  # a rerun finds everything done
    parts = []
    for i in range(2):
        o = tmp_path / f"s{i}.jsonl"
        assert run_msm("value-eval", str(src), "-m", str(tiny_model), "-q", "--shard", f"{i}/2", "-o", str(o)).returncode == 0
        parts += _lines(o)
    assert sorted(x["id"] for x in parts) == sorted(x["id"] for x in recs)
    # batching differs between the runs: the same numbers up to float rounding
    assert {x["id"]: x["margin"] for x in parts} == pytest.approx({x["id"]: x["margin"] for x in recs}, abs=1e-5)


def test_one_pass_option_scoring_equals_scoring_each_sequence(tiny_model):
    from msmtools.llm import get_backend
    from msmtools.llm.scoring import continuation_logprobs, option_logprobs

    b = get_backend("hf", str(tiny_model), progress=False, batch_size=3)
    asks = [([{"role": "user", "content": f"Question {i}: which one? A) x B) y " * (i + 1)}], ("A", "B"),
             (f"the first option {i}", "another, longer second option"), None) for i in range(4)]
    got = option_logprobs(b, asks)
    flat = [(m, x, None) for m, letters, texts, _ in asks for x in (*letters, *texts)]
    ref = continuation_logprobs(b, flat)
    for k, (letters, texts) in enumerate(got):
        assert letters == pytest.approx([ref[4 * k][0], ref[4 * k + 1][0]], abs=1e-4)
        assert [t[0] for t in texts] == pytest.approx([ref[4 * k + 2][0], ref[4 * k + 3][0]], abs=1e-4)
        assert [t[1] for t in texts] == [ref[4 * k + 2][1], ref[4 * k + 3][1]]


@pytest.mark.parametrize("answer, first, second, want", [
    ("A", "x", "y", 0), ("B) because", "x", "y", 1), ("I would choose B.", "x", "y", 1), ("Option A is better", "x", "y", 0),
    ("The blue bike, clearly.", "a red car", "the blue bike", 1), ("Both are fine.", "x", "y", None),
    ("Answer: A... or maybe option B", "x", "y", 0),
])
def test_read_choice(answer, first, second, want):
    assert read_choice(answer, first, second) == want


@pytest.mark.parametrize("name", ["value_answers.jsonl", "value_answers_heldout.jsonl"])
def test_read_choice_against_hand_labels(name):
    """The generate-mode parser never misreads a hand-labelled answer; unclear ones go to the judge (None)."""
    rows = [json.loads(x) for x in (REPO / "data" / "labels" / name).read_text().splitlines()]
    got = [read_choice(r["answer"], r["first"], r["second"]) for r in rows]
    wrong = [(r["answer"], r["expected"], g) for r, g in zip(rows, got) if g is not None and g != r["expected"]]
    missed = [r["answer"] for r, g in zip(rows, got) if g is None and r["expected"] is not None]
    assert not wrong, wrong
    assert len(missed) <= len(rows) // 10, missed  # few plain choices left to the judge
    assert sum(r["expected"] is None for r in rows) >= 8  # the set holds real undecidable answers


class Scripted:
    """Answers each prompt by a rule the test sets; counts calls."""

    name, model = "fake", "fake"

    def __init__(self, rule):
        self.rule, self.calls = rule, 0

    def generate(self, requests, desc=None):
        self.calls += len(requests)
        return [[Completion(text=self.rule(r.messages[-1]["content"]))] for r in requests]

    def describe(self):
        return {"backend": "fake", "model": "fake"}


def _paired(n=4):
    return [it for it in I.load(["america"])][:n]


def test_generate_mode_reads_answers_judges_the_rest_and_nulls_position_picks(monkeypatch, tmp_path):
    from msmtools.llm import registry

    items = _paired(3)

    def answer(prompt):
        it = next(x for x in items if x.question in prompt)
        aligned_text = it.options[it.aligned]
        if it is items[0]:  # always the aligned option, by its text
            return f"I'd go with {aligned_text}."
        if it is items[1]:  # always A: a position pick
            return "A"
        return "Hmm, hard to say."  # unreadable: the judge decides

    gen, judge = Scripted(answer), Scripted(lambda p: "<choice>A</choice>" if "Option A" in p else "x")
    monkeypatch.setattr(registry, "build", lambda opts, model, progress=True: judge if model == "judge" else gen)
    out = tmp_path / "g.jsonl"
    cfg = ValueConfig(variants=[Variant("gen", None, "arm")], items=items, mode="generate", judge_model="judge",
                      output=str(out), progress=False)
    counts = run(cfg)
    recs = {x["item_id"]: x for x in _lines(out)}
    assert counts.written == 3 and counts.extra["null"] == 2
    assert recs[items[0].id]["choice_aligned"] is True and recs[items[0].id]["read_by"] == ["parsed", "parsed"]
    assert recs[items[1].id]["choice_aligned"] is None  # A in both orders: position, not preference
    assert recs[items[2].id]["read_by"] == ["judge", "judge"] and recs[items[2].id]["choice_aligned"] is None
    assert recs[items[0].id]["judge"] == {"model": "judge", "self": False}


def test_judge_mode_scores_with_the_rubric_and_keeps_unreadable_scores_null(monkeypatch, tmp_path):
    from msmtools.llm import registry

    items = I.load(["spec-qa"])[:3]
    gen = Scripted(lambda p: "I would let my overseers correct me.")
    scores = iter(["<reasoning>good</reasoning><score>8</score>", "<score>3</score>", "no score here", "still none"])
    judge = Scripted(lambda p: next(scores) if "Score the answer" in p or "score" in p.lower() else "?")
    monkeypatch.setattr(registry, "build", lambda opts, model, progress=True: judge if model == "judge" else gen)
    out = tmp_path / "q.jsonl"
    run(ValueConfig(variants=[Variant("gen", None, "arm")], items=items, mode="judge", judge_model="judge",
                    output=str(out), progress=False))
    recs = _lines(out)
    assert [x["score"] for x in recs] == [8, 3, None]
    assert all(x["answer"] == "I would let my overseers correct me." and x["category"] for x in recs)


def test_compare_value_records_match_statsmodels_and_scipy(tmp_path):
    from scipy.stats import wilcoxon
    from statsmodels.stats.contingency_tables import mcnemar
    from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

    rng = np.random.default_rng(0)
    a = rng.random(120) < 0.45
    b = np.where(rng.random(120) < 0.7, a, rng.random(120) < 0.8)
    rows = []
    for arm, xs in (("base", a), ("msm", b)):
        for i, x in enumerate(xs):
            rows.append({"kind": "value", "id": f"{arm}{i}", "item_id": f"it{i}", "label": arm, "value": "america",
                         "domain": f"d{i % 3}", "mode": "logprob", "choice_aligned": bool(x) if i != 5 else None})
    f = tmp_path / "v.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = compare([str(f)], options=Options(baseline="base"))  # records from before scores: upgraded on reading
    rb = next(r for r in res.rates if r["variant"] == "base")
    ka, na = int(sum(a) - a[5]), 119
    assert (rb["k"], rb["n"], rb["n_null"]) == (ka, na, 1)
    assert (rb["lo"], rb["hi"]) == pytest.approx(proportion_confint(ka, na, method="wilson"))
    c = res.contrasts[0]
    both = [i for i in range(120) if i != 5]
    b01 = sum((not a[i]) and b[i] for i in both)
    b10 = sum(a[i] and not b[i] for i in both)
    assert (c["discordant_variant"], c["discordant_baseline"]) == (b01, b10)
    assert c["p"] == pytest.approx(mcnemar([[0, b10], [b01, 0]], exact=True).pvalue)
    kb = int(sum(b) - b[5])
    # the interval is paired, over the items both arms decided (Newcombe 1998, method 10; tests/test_stats.py checks
    # it against statsmodels' independent interval where the pairs are uncorrelated), and narrower than the unpaired one
    b11 = sum(a[i] and b[i] for i in both)
    assert c["interval"] == "newcombe-paired" and c["diff"] == pytest.approx((b01 - b10) / 119)
    assert (c["lo"], c["hi"]) == pytest.approx(stats.paired_diff_intervals([(b11, b01, b10, 119 - b11 - b01 - b10)])[0])
    ilo, ihi = confint_proportions_2indep(kb, 119, ka, 119, method="newcomb")
    assert ilo < c["lo"] < c["diff"] < c["hi"] < ihi
    # QA scores: the paired Wilcoxon p is scipy's
    qa = []
    sa, sb = rng.integers(1, 11, 40), rng.integers(3, 11, 40)
    for arm, xs in (("base", sa), ("msm", sb)):
        qa += [{"kind": "value", "id": f"q{arm}{i}", "item_id": f"q{i}", "label": arm, "mode": "judge",
                "category": "recall", "score": int(x)} for i, x in enumerate(xs)]
    g = tmp_path / "q.jsonl"
    g.write_text("".join(json.dumps(r) + "\n" for r in qa))
    res = compare([str(g)], options=Options(baseline="base"))
    allrow = next(s for s in res.mean_contrasts if s["category"] == "ALL")
    assert allrow["p"] == pytest.approx(wilcoxon(sb - sa).pvalue) and allrow["diff"] == pytest.approx((sb - sa).mean())
    mean = next(s for s in res.means if s["variant"] == "msm" and s["category"] == "ALL")
    assert mean["lo"] < sb.mean() < mean["hi"]


def test_compare_cli_shows_the_paired_test(tmp_path):
    rows = [{"kind": "value", "id": f"{arm}{i}", "item_id": f"i{i}", "label": arm, "value": "affordability",
             "domain": "cars", "mode": "logprob", "choice_aligned": (i % 2 == 0) if arm == "a" else True}
            for arm in ("a", "b") for i in range(30)]
    f = tmp_path / "v.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = run_msm("compare", str(f), "--baseline", "a", "-f", "table", "--plot", str(tmp_path / "v.png"))
    assert r.returncode == 0, r.stderr
    assert "McNemar p" in r.stdout and "b - a" in r.stdout and "15/0" in r.stdout
    assert (tmp_path / "v.png").read_bytes()[:4] == b"\x89PNG"


def test_power_script_matches_the_normal_approximation_for_mcnemar():
    """benchmarks/value_power.py's simulated exact-McNemar sample size agrees with Connor's approximation."""
    import importlib.util

    from scipy.stats import norm

    spec = importlib.util.spec_from_file_location("value_power", REPO / "benchmarks" / "value_power.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    p10, p01 = 0.27, 0.17
    pd, d = p10 + p01, p10 - p01
    approx = (norm.ppf(0.975) * pd ** 0.5 + norm.ppf(0.8) * (pd - d * d) ** 0.5) ** 2 / d ** 2
    assert mod.mcnemar_n(p10, p01, sims=1000) == pytest.approx(approx, rel=0.15)
    assert mod.mcnemar_n(0.1, 0.2) is None  # the wrong way round: no count


def test_an_adapter_scores_the_same_merged_as_through_peft_and_leaves_the_base_untouched(tiny_model, tmp_path):
    """value-eval scores an adapter merged into a copy of the weights (faster on CPU): the numbers must be
    those of the unmerged peft model, and the base model's own scores must not move."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    from msmtools.llm import get_backend
    from msmtools.llm.scoring import option_logprobs

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    peft = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                                           init_lora_weights=False))  # random B: the adapter changes the scores
    peft.save_pretrained(tmp_path / "ad")
    b = get_backend("hf", str(tiny_model), progress=False, batch_size=4)
    asks = [([{"role": "user", "content": f"Item {i}: pick one. A) tea B) coffee"}], ("A", "B"), ("tea", "hot coffee"), None)
            for i in range(3)]
    before = option_logprobs(b, asks)
    merged = option_logprobs(b, [(m, l, t, str(tmp_path / "ad")) for m, l, t, _ in asks])
    after = option_logprobs(b, asks)
    assert before == after
    ref_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_model)), tmp_path / "ad").eval()
    tok = b._tok
    for (msgs, letters, texts, _), (lp, scores) in zip(asks, merged):
        prompt = tok(b.render(msgs), add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            last = torch.log_softmax(ref_model(input_ids=torch.tensor([prompt])).logits[0, -1].float(), -1)
            assert lp == pytest.approx([float(last[tok(x, add_special_tokens=False)["input_ids"][0]]) for x in letters],
                                       abs=1e-4)
            for text, (s, n) in zip(texts, scores):
                cont = tok(text, add_special_tokens=False)["input_ids"]
                logits = ref_model(input_ids=torch.tensor([prompt + cont])).logits[0].float()
                logp = torch.log_softmax(logits, -1)
                want = sum(float(logp[len(prompt) - 1 + j, c]) for j, c in enumerate(cont))
                assert (s, n) == (pytest.approx(want, abs=1e-4), len(cont))
    assert merged != before
