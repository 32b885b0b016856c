"""`msm compare`: counts built by hand come out exactly, bad input gets one clear line, outputs parse."""

from __future__ import annotations

import csv
import io
import json
import struct

import orjson
import pytest
from scipy.stats import fisher_exact
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from helpers import run_msm
from msmtools.compare import Options, compare
from msmtools.compare import render
from msmtools.am import scores as am_scores
from msmtools.compare.plot import plot
from msmtools.errors import MsmError
from msmtools.tagging import scores as tag_scores

HARMFUL = {"harmful": {"aggregate": "rate"}}  # the declaration of a record scored by harmful alone


def rollouts(label, harmful, nulls=0, condition="murder_none", seed=None, tags=None, **extra):
    """`harmful` true then false records as given by (k, n), plus `nulls` undecided ones."""
    k, n = harmful
    out = []
    for i in range(n + nulls):
        rec = {"kind": "tagged" if tags else "rollout", "label": label, "condition": condition,
               "scenario": condition.split("_")[0], "sample": i, "seed": i, "training_seed": seed,
               "harmful": None if i >= n else i < k, "response": "text " * 20, **extra}
        am_scores.attach(rec)
        if tags:
            rec["tags"] = {t: None if i >= n else i < v for t, v in tags.items()}
            tag_scores.attach(rec, rec["tags"])
        out.append(rec)
    return out


def scored(**fields):
    """One record scored by harmful alone, written by hand (the fields a bad-input test needs)."""
    return {"scorers": HARMFUL, **fields}


def write(path, records, style="orjson"):
    with open(path, "wb") as f:
        for r in records:
            f.write(orjson.dumps(r) + b"\n" if style == "orjson" else (json.dumps(r) + "\n").encode())
    return str(path)


def by_key(res, kind="rate", **want):
    rows = res.rates if kind == "rate" else res.contrasts
    hits = [r for r in rows if all(r.get(k) == v for k, v in want.items())]
    assert len(hits) == 1, (want, hits)
    return hits[0]


def test_counts_come_out_exactly(tmp_path):
    a = write(tmp_path / "a.jsonl", rollouts("base", (20, 100), nulls=3))
    b = write(tmp_path / "b.jsonl", rollouts("msm", (7, 100)))
    res = compare([a, b])
    base, msm = by_key(res, variant="base"), by_key(res, variant="msm")
    assert (base["k"], base["n"], base["n_null"], base["rate"]) == (20, 100, 3, 0.2)
    assert (base["lo"], base["hi"]) == pytest.approx(proportion_confint(20, 100, method="wilson"), abs=1e-12)
    assert (msm["lo"], msm["hi"]) == pytest.approx((0.034319, 0.137495), abs=1e-6)
    c = by_key(res, "contrast", baseline="base", variant="msm")
    assert c["diff"] == pytest.approx(-0.13)
    assert (c["lo"], c["hi"]) == pytest.approx(confint_proportions_2indep(7, 100, 20, 100, method="newcomb"), abs=1e-12)
    assert c["p"] == pytest.approx(fisher_exact([[20, 80], [7, 93]]).pvalue, rel=1e-12)
    assert c["p_holm"] == c["p"]  # one contrast: Holm changes nothing
    assert c["mdd_down"] < 0 < c["mdd_up"]
    assert res.variants == ["base", "msm"]
    assert res.sources[0].nulls["harmful"] == 3 and res.sources[0].records == 103


def test_clopper_pearson_option(tmp_path):
    a = write(tmp_path / "a.jsonl", rollouts("base", (0, 10)))
    r = compare([a], options=Options(interval="clopper-pearson")).rates[0]
    assert (r["lo"], r["hi"]) == pytest.approx((0.0, 1 - 0.025 ** 0.1), abs=1e-9)
    assert r["interval"] == "clopper-pearson"


def test_splits_baseline_and_holm(tmp_path):
    recs = []
    for label, ks in [("base", (30, 40, 50)), ("rules", (20, 35, 10)), ("values", (5, 30, 12))]:
        for cond, k in zip(("murder_none", "leaking_america", "exfiltration_safety"), ks):
            recs += rollouts(label, (k, 100), condition=cond)
    f = write(tmp_path / "all.jsonl", recs)
    res = compare([f], by=["condition"], options=Options(baseline="base"))
    assert [(c["condition"], c["baseline"], c["variant"]) for c in res.contrasts] == [
        (cond, "base", v) for cond in ("exfiltration_safety", "leaking_america", "murder_none") for v in ("rules", "values")]
    ps = [c["p"] for c in res.contrasts]
    m = len(ps)
    order = sorted(range(m), key=lambda i: ps[i])
    expected, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):  # Holm by hand
        running = max(running, min(1.0, (m - rank) * ps[i]))
        expected[i] = running
    assert [c["p_holm"] for c in res.contrasts] == pytest.approx(expected)
    every_pair = compare([f], by=["condition"])
    assert len(every_pair.contrasts) == 9
    assert {(c["baseline"], c["variant"]) for c in every_pair.contrasts} == {("base", "rules"), ("base", "values"), ("rules", "values")}


def test_shards_of_one_variant_add_up_and_label_overrides(tmp_path):
    s1 = write(tmp_path / "s1.jsonl", rollouts("x", (3, 10)))
    s2 = write(tmp_path / "s2.jsonl", rollouts("y", (4, 10)))
    other = write(tmp_path / "o.jsonl", rollouts("z", (1, 10)))
    res = compare([other], labels={s1: "msm", s2: "msm"})
    assert by_key(res, variant="msm")["k"] == 7 and by_key(res, variant="msm")["n"] == 20
    assert res.variants == ["z", "msm"]  # order of first appearance: positional files, then --label files


def test_training_seeds_get_a_clustered_bootstrap(tmp_path):
    recs = []
    for seed, k in enumerate((10, 30, 20, 40)):
        recs += rollouts("base", (k, 100), seed=seed)
    for seed, k in enumerate((5, 8, 6, 9)):
        recs += rollouts("msm", (k, 100), seed=seed)
    f = write(tmp_path / "s.jsonl", recs)
    res = compare([f], options=Options(bootstrap=1000, bootstrap_seed=3))
    base = by_key(res, variant="base")
    assert base["n_seeds"] == 4 and base["training_seeds"] == [0, 1, 2, 3]
    assert base["seed_mean"] == pytest.approx(0.25)
    assert base["seed_lo"] < 0.25 < base["seed_hi"]
    assert base["seed_hi"] - base["seed_lo"] > base["hi"] - base["lo"]  # seed spread widens it
    c = res.contrasts[0]
    assert c["seed_diff"] == pytest.approx(0.07 - 0.25)
    assert c["seed_lo"] < c["seed_diff"] < c["seed_hi"]
    again = compare([f], options=Options(bootstrap=1000, bootstrap_seed=3))
    assert again.rates == res.rates and again.contrasts == res.contrasts
    other = compare([f], options=Options(bootstrap=1000, bootstrap_seed=4))
    assert by_key(other, variant="base")["seed_lo"] != base["seed_lo"]
    assert res.has_seeds and "seed mean" in render.as_table(res)


def test_by_training_seed_gives_per_seed_rows(tmp_path):
    recs = rollouts("base", (3, 10), seed=0) + rollouts("base", (6, 10), seed=1)
    res = compare([write(tmp_path / "s.jsonl", recs)], by=["training_seed"])
    assert [(r["training_seed"], r["k"], r["n_seeds"]) for r in res.rates] == [("0", 3, 1), ("1", 6, 1)]
    assert not res.has_seeds and res.contrasts == []


def test_tags_use_the_same_machinery(tmp_path):
    a = write(tmp_path / "a.jsonl", rollouts("base", (10, 50), nulls=2, tags={"SP1": 6, "policy_misuse": 10}))
    b = write(tmp_path / "b.jsonl", rollouts("values", (3, 50), tags={"SP1": 18, "policy_misuse": 1}))
    res = compare([a, b])
    assert res.metrics == ["harmful", "SP1", "policy_misuse"]
    sp1 = by_key(res, metric="SP1", variant="base")
    assert (sp1["k"], sp1["n"], sp1["n_null"]) == (6, 50, 2)
    assert (sp1["lo"], sp1["hi"]) == pytest.approx(proportion_confint(6, 50, method="wilson"))
    pm = by_key(res, "contrast", metric="policy_misuse")
    assert pm["p"] == pytest.approx(fisher_exact([[10, 40], [1, 49]]).pvalue)
    assert compare([a, b], scores=["harmful"]).metrics == ["harmful"]
    assert compare([a, b], scores=["harmful", "SP1"]).metrics == ["harmful", "SP1"]
    with pytest.raises(MsmError, match=r"unknown score nope \(known: harmful, SP1, policy_misuse\)"):
        compare([a, b], scores=["nope"])


def test_rollouts_without_tags_beside_tagged_ones(tmp_path):
    a = write(tmp_path / "a.jsonl", rollouts("base", (10, 50)))
    b = write(tmp_path / "b.jsonl", rollouts("values", (3, 50), tags={"SP1": 18}))
    res = compare([a, b])
    base = by_key(res, metric="SP1", variant="base")
    assert (base["n"], base["n_null"], base["rate"]) == (0, 50, None)
    assert by_key(res, "contrast", metric="SP1")["p"] is None


def test_json_dumps_spacing_and_nulls_are_fine(tmp_path):
    f = write(tmp_path / "a.jsonl", rollouts("base", (2, 5), nulls=2), style="json")
    r = compare([f]).rates[0]
    assert (r["k"], r["n"], r["n_null"]) == (2, 5, 2)


@pytest.mark.parametrize("line,field,message", [
    (orjson.dumps(scored(label="a", scores={})).decode(), "scores.harmful", "missing (declared in scorers"),
    (orjson.dumps(scored(scores={"harmful": True})).decode(), "label", "missing (give --variant NAME=FILE"),
    (orjson.dumps(scored(label="a", scores={"harmful": "yes"})).decode(), "scores.harmful", "expected true, false or null"),
    (orjson.dumps(scored(label="a", scores={"harmful": True}, training_seed="s1")).decode(), "training_seed",
     "expected an integer"),
    ('{"kind": "spec", "label": "a", "harmful": true}', "scores", "missing: not a record of an msm evaluator"),
    ('{"label": "a", "harmful": tru', None, "invalid JSON"),
])
def test_bad_record_is_named_by_file_line_field(tmp_path, line, field, message):
    good = orjson.dumps(scored(label="a", scores={"harmful": False})).decode()
    nulled = orjson.dumps(scored(label="a", scores={"harmful": None})).decode()
    f = tmp_path / "bad.jsonl"
    f.write_text(f"{good}\n{nulled}\n\n{line}\n{good}\n")
    with pytest.raises(MsmError) as e:
        compare([str(f)])
    where = f"{f}:4: {field}: " if field else f"{f}:4: "
    assert str(e.value).startswith(where) and message in str(e.value), str(e.value)


def test_missing_score_hidden_among_nulls(tmp_path):
    # polars reads both as null; the null check must still find the line without the key
    f = tmp_path / "a.jsonl"
    f.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in [
        scored(label="a", scores={"harmful": None}, grader={"harmful": None}), scored(label="a", scores={"harmful": True}),
        scored(label="a", scores={}, grader={"harmful": None})]))
    with pytest.raises(MsmError, match=r"a.jsonl:3: scores.harmful: missing"):
        compare([str(f)])


def test_records_from_before_scores_are_upgraded_on_reading(tmp_path):
    legacy = [{k: v for k, v in r.items() if k not in ("scores", "scorers", "self_judged")}
              for r in rollouts("base", (20, 100), nulls=3, grader={"self": True})]
    old = compare([write(tmp_path / "old.jsonl", legacy)])
    new = compare([write(tmp_path / "new.jsonl", rollouts("base", (20, 100), nulls=3, grader={"self": True}))])
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("inputs", "id")} for r in rs]  # noqa: E731
    assert strip(old.rates) == strip(new.rates) and old.sources[0].upgraded == 103
    assert old.rates[0]["self_judged"] == 103


def test_label_override_accepts_unlabelled_files(tmp_path):
    f = write(tmp_path / "u.jsonl", [scored(scores={"harmful": True}), scored(scores={"harmful": False})])
    assert compare([], labels={f: "mine"}).rates[0]["variant"] == "mine"


def test_unknown_baseline_lists_variants(tmp_path):
    a = write(tmp_path / "a.jsonl", rollouts("base", (1, 5)) + rollouts("msm", (0, 5)))
    with pytest.raises(MsmError, match=r"--baseline nope: no such variant \(known: base, msm\)"):
        compare([a], options=Options(baseline="nope"))


def test_empty_and_missing_inputs(tmp_path):
    empty = tmp_path / "e.jsonl"
    empty.write_text("")
    with pytest.raises(MsmError, match="no scored records in"):
        compare([str(empty)])
    with pytest.raises(MsmError, match="nope.jsonl: no such file"):
        compare([str(tmp_path / "nope.jsonl")])
    a = write(tmp_path / "a.jsonl", rollouts("base", (1, 5)))
    with pytest.raises(MsmError, match="given twice"):
        compare([a, a])
    with pytest.raises(MsmError, match="--by goal: no record has this field"):
        compare([a], by=["goal"])
    with pytest.raises(MsmError, match="--by n: not a field"):
        compare([a], by=["n"])


def test_formats_parse(tmp_path):
    a = write(tmp_path / "a.jsonl", rollouts("base", (20, 100), nulls=1, condition="c2") + rollouts("base", (5, 50), condition="c10"))
    b = write(tmp_path / "b.jsonl", rollouts("msm", (7, 100), condition="c2") + rollouts("msm", (1, 50), condition="c10"))
    res = compare([a, b], by=["condition"])
    assert [r["condition"] for r in res.rates] == ["c2", "c2", "c10", "c10"]  # natural order, variants inside
    rows = list(csv.DictReader(io.StringIO(render.as_csv(res))))
    assert len(rows) == 6 and {r["kind"] for r in rows} == {"rate", "contrast"}
    assert float(rows[0]["rate"]) == 0.2 and rows[0]["inputs"] == f"{a};{b}"
    table = render.as_table(res)
    assert "20.0%" in table and "[13.3, 28.9]" in table and "msm - base" in table
    md = render.as_markdown(res)
    assert "| score | variant | condition | n |" in md and "|---|---|---|---:|" in md
    assert len({r["id"] for r in render.records(res)}) == 6


def test_plot_is_a_png(tmp_path):
    recs = []
    for v, k in (("base", 50), ("rules", 30), ("values", 7)):
        for cond in ("murder_none", "leaking_america"):
            recs += rollouts(v, (k, 100), condition=cond)
    res = compare([write(tmp_path / "a.jsonl", recs)], by=["condition"])
    out = tmp_path / "fig" / "rates.png"
    plot(res, str(out))
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 1200 and height >= 800
    with pytest.raises(MsmError, match="known: harmful"):
        plot(res, str(tmp_path / "x.png"), "SP1")
    assert sorted(p.name for p in out.parent.iterdir()) == ["rates.png"]  # no temp file left behind


# --- the command, end to end (each call starts Python: keep them few) -------------------------


def test_cli_table_label_and_plot(tmp_path):
    a = write(tmp_path / "a.jsonl", rollouts("ignored", (20, 100), nulls=2))
    b = write(tmp_path / "b.jsonl", rollouts("msm", (7, 100)))
    png = tmp_path / "p.png"
    r = run_msm("compare", b, "--variant", f"base={a}", "--baseline", "base", "-f", "table", "--plot", str(png))
    assert r.returncode == 0, r.stderr
    assert "base" in r.stdout and "ignored" not in r.stdout and "[3.4, 13.7]" in r.stdout
    assert "msm - base" in r.stdout and "2 of 102 records have harmful null" in r.stderr
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_jsonl_when_piped_and_stdin(tmp_path):
    data = "".join(json.dumps(r) + "\n" for r in rollouts("base", (3, 10)) + rollouts("msm", (1, 10)))
    r = run_msm("compare", "-", input=data)
    assert r.returncode == 0, r.stderr
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["kind"] for x in recs] == ["rate", "rate", "contrast"] and recs[0]["inputs"] == ["<stdin>"]


def test_cli_bad_input_is_one_line_exit_2(tmp_path):
    f = tmp_path / "bad.jsonl"
    write(f, [scored(label="a", scores={"harmful": True}), scored(label="a", scores={})])
    out = tmp_path / "out.md"
    r = run_msm("compare", str(f), "-o", str(out))
    assert r.returncode == 2 and r.stderr.strip() == (f"msm: error: {f}:2: scores.harmful: missing (declared in "
                                                      "scorers; null if undecided)")
    assert not out.exists() and r.stdout == ""
    good = write(tmp_path / "g.jsonl", rollouts("base", (1, 5)))
    r = run_msm("compare", good, "--baseline", "nope", "-o", str(out))
    assert r.returncode == 2 and "known: base" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_null_bounds_and_null_sensitive_contrasts(tmp_path):
    # base 25/100 decided + 40 nulls; msm 10/100: decided-only says msm is lower (interval below 0), but
    # counting base's nulls as not harmful (25/140 vs 10/100) puts the interval across 0: null-sensitive
    a = write(tmp_path / "a.jsonl", rollouts("base", (25, 100), nulls=40))
    b = write(tmp_path / "b.jsonl", rollouts("msm", (10, 100)))
    res = compare([a, b], options=Options(baseline="base"))
    base = by_key(res, variant="base")
    assert base["rate_nulls_false"] == pytest.approx(25 / 140) and base["rate_nulls_true"] == pytest.approx(65 / 140)
    assert by_key(res, variant="msm")["rate_nulls_false"] == pytest.approx(0.1)
    c = by_key(res, "contrast", variant="msm")
    assert c["hi"] < 0  # decided only: msm lower
    assert c["diff_nulls_low"] == pytest.approx(0.1 - 65 / 140) and c["diff_nulls_high"] == pytest.approx(0.1 - 25 / 140)
    hi_iv = confint_proportions_2indep(10, 100, 25, 140, method="newcomb")
    assert hi_iv[0] < 0 < hi_iv[1]  # at one extreme the interval includes zero, as the flag says
    assert c["null_sensitive"] is True
    # a few nulls that cannot change the conclusion: not flagged
    a2 = write(tmp_path / "a2.jsonl", rollouts("base", (40, 100), nulls=2))
    c2 = by_key(compare([a2, b], options=Options(baseline="base")), "contrast", variant="msm")
    assert c2["null_sensitive"] is False and c2["null_baseline"] == 2
    text = render.as_table(res)
    assert "nulls 0 / 1" in text and "17.9% / 46.4%" in text and "YES" in text


def test_self_graded_rows_are_marked(tmp_path):
    a = write(tmp_path / "a.jsonl", rollouts("base", (2, 10), grader={"self": True, "verdict": True}))
    b = write(tmp_path / "b.jsonl", rollouts("msm", (1, 10), grader={"self": False, "verdict": False}))
    res = compare([a, b])
    assert by_key(res, variant="base")["self_judged"] == 10 and by_key(res, variant="msm")["self_judged"] == 0
    text = render.as_table(res)
    assert "base *" in text and "msm *" not in text and "judged by the evaluated model itself" in text


def _values(label, aligned, n=30, value="america", domain=None):
    from msmtools.valueeval import scores as value_scores

    return [value_scores.attach({"kind": "value", "id": f"{label}-v{i}", "item_id": f"it{i}", "label": label,
                                 "value": value, "domain": domain or f"d{i % 2}", "mode": "logprob",
                                 "choice_aligned": i < aligned}) for i in range(n)]


def test_rollouts_and_value_records_in_one_report_from_stdin(tmp_path):
    """One report holds every measure: rollouts and value records mixed on stdin, one --baseline, --by alike."""
    data = "".join(json.dumps(r) + "\n" for r in
                   rollouts("base", (20, 40)) + _values("base", 10) + rollouts("msm", (5, 40)) + _values("msm", 22))
    r = run_msm("compare", "-", "--baseline", "base", "--by", "condition", "-f", "jsonl", input=data)
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in r.stdout.splitlines()]
    rates = {(x["metric"], x["variant"]): x for x in recs if x["kind"] == "rate"}
    assert (rates[("harmful", "msm")]["k"], rates[("choice_aligned", "msm")]["k"]) == (5, 22)
    assert rates[("harmful", "base")]["condition"] == "murder_none"
    assert rates[("choice_aligned", "base")]["splits"] == ["value", "condition"]  # declared split, then --by
    tests = {x["metric"]: x["test"] for x in recs if x["kind"] == "contrast"}
    assert tests == {"harmful": "fisher-exact", "choice_aligned": "mcnemar-exact"}
    res = compare([write(tmp_path / "a.jsonl", _values("base", 10) + _values("msm", 22))], by=["domain"],
                  options=Options(baseline="base"))
    assert {r["domain"] for r in res.rates} == {"d0", "d1"} and all(c["paired"] for c in res.contrasts)


def test_paired_scores_with_several_seeds_per_item_are_refused(tmp_path):
    recs = _values("base", 10) + [r | {"id": r["id"] + "s1", "training_seed": 1} for r in _values("base", 12)]
    f = write(tmp_path / "v.jsonl", recs + _values("msm", 20))
    with pytest.raises(MsmError, match="several records for 'it0'.*--by training_seed"):
        compare([f], options=Options(baseline="base"))
    by_seed = compare([f], by=["training_seed"], options=Options(baseline="base"))
    assert {r["training_seed"] for r in by_seed.rates} == {None, "1"}


def test_across_a_factor_compares_the_contrasts_of_its_levels(tmp_path):
    """--across family: the arm contrast within each family, and whether it differs between them (Wald z)."""
    from scipy.stats import norm

    recs = []
    for fam, (kb, km) in {"smollm2": (10, 22), "gemma3": (12, 16)}.items():
        recs += [r | {"family": fam, "id": f"{fam}-{r['id']}", "item_id": f"{fam}-{r['item_id']}"}
                 for r in _values("base", kb) + _values("msm", km)]
    res = compare([write(tmp_path / "v.jsonl", recs)], across="family", options=Options(baseline="base"))
    within = {c["family"]: c for c in res.contrasts}
    assert within["smollm2"]["diff"] == pytest.approx(12 / 30) and within["gemma3"]["diff"] == pytest.approx(4 / 30)
    [x] = res.interactions
    assert (x["level_a"], x["level_b"]) == ("gemma3", "smollm2") or (x["level_a"], x["level_b"]) == ("smollm2", "gemma3")
    a, b = within[x["level_a"]], within[x["level_b"]]

    def se(c):  # discordant counts: msm aligned where base was not, and the reverse
        n, d1, d0 = c["n_paired"], c["discordant_variant"], c["discordant_baseline"]
        return (d1 + d0 - (d1 - d0) ** 2 / n) ** 0.5 / n

    s = (se(a) ** 2 + se(b) ** 2) ** 0.5
    assert x["diff"] == pytest.approx(b["diff"] - a["diff"])
    assert x["p"] == pytest.approx(2 * norm.sf(abs(x["diff"]) / s))
    assert (x["lo"], x["hi"]) == pytest.approx((x["diff"] - 1.959964 * s, x["diff"] + 1.959964 * s), abs=1e-6)
    assert "does the contrast differ across family" in render.as_table(res)
    # unpaired rates: the standard error from the two rates
    am = rollouts("base", (30, 100), family="f1") + rollouts("msm", (10, 100), family="f1") + \
        rollouts("base", (30, 100), family="f2") + rollouts("msm", (28, 100), family="f2")
    for i, r in enumerate(am):
        r["id"] = f"r{i}"
    [y] = compare([write(tmp_path / "r.jsonl", am)], across="family", options=Options(baseline="base")).interactions
    s = ((0.3 * 0.7 / 100 + 0.1 * 0.9 / 100) + (0.3 * 0.7 / 100 + 0.28 * 0.72 / 100)) ** 0.5
    assert y["diff"] == pytest.approx(0.18) and y["p"] == pytest.approx(2 * norm.sf(0.18 / s))
    with pytest.raises(MsmError, match="--across"):
        compare([write(tmp_path / "one.jsonl", rollouts("base", (3, 10)))], across="nope")
