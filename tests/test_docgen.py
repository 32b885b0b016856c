"""docgen pipelines on test-double backends: shapes of records, retries, error records, cache, shards."""

import json
import re
from pathlib import Path

import pytest

import docgen_fake
from docgen_fake import Scripted
from msmtools import spec as specmod
from msmtools.docgen.run import RunOptions, run
from msmtools.errors import MsmError
from msmtools.llm import Completion
from msmtools.llm.options import GenOptions

FAKE = GenOptions(backend="fake")

SMALL = dict(domains=2, subdomains=2, doc_types=2, ideas=2)
LONG = " ".join(["text"] * 120)


@pytest.fixture
def spec_path(tmp_path):
    s = specmod.render(specmod.load("value_augmented"), "Qwen", "Alibaba")
    rec = specmod.record(s, model_name="Qwen", provider_name="Alibaba", tokens=None, tokenizer="none")
    path = tmp_path / "spec.jsonl"
    path.write_text(json.dumps(rec) + "\n")
    return path


@pytest.fixture(autouse=True)
def fake_backend(monkeypatch):
    monkeypatch.delenv("MSM_TESTING_FAKE_MODE", raising=False)
    docgen_fake.BUILT.clear()
    docgen_fake.NEXT.clear()
    with docgen_fake.registered("fake"):
        yield


def docgen(capsys, spec_path, out, *, model="rules", kind="documents", **extra):
    """Run docgen in-process; returns (records, rejects, stderr, new model calls)."""
    opts = {k: extra.pop(k) for k in list(extra) if k in RunOptions.__dataclass_fields__}
    opts.setdefault("retries", 2)
    opts.setdefault("gen", FAKE)
    run(str(spec_path), RunOptions(kind=kind, output=str(out), model=model, progress=False, extra=extra, **opts))
    err = capsys.readouterr().err
    calls = int(re.search(r"model calls: (\d+) new", err).group(1))
    rejects = out.with_name(out.name.replace(".jsonl", ".rejects.jsonl"))
    read = lambda p: [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []  # noqa: E731
    return read(out), read(rejects), err, calls


def test_documents_have_the_contract_fields_and_a_rerun_makes_no_calls(tmp_path, spec_path, capsys):
    out = tmp_path / "docs.jsonl"
    docs, rejects, err, calls = docgen(capsys, spec_path, out, stats=str(tmp_path / "stats.json"), **SMALL)
    assert len(docs) == 2 * 2 * 2 * 2 and rejects == []
    assert calls == 1 + 2 + 4 + 4 + 8 + 16
    d = docs[0]
    assert d["kind"] == "doc" and d["truncated"] is False and d["spec_id"] == "value_augmented"
    assert len(d["spec_sha"]) == 64 and d["tokens"] > 0 and "<plan>" not in d["text"] and "Outline" not in d["text"]
    assert {"domain", "subdomain", "doc_type", "idea", "subject", "framing", "language", "excerpt_source"} <= set(d)
    assert set(d["generator"]) >= {"backend", "model", "sampling", "seed", "prompt_sha"}
    assert len({x["id"] for x in docs}) == len(docs)
    assert "inputs 16 = outputs 16 + rejects 0" in err
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["tokens_total"] == sum(x["tokens"] for x in docs) and stats["records"] == 16
    assert sum(stats["by_domain"].values()) == 16 and stats["top_phrases"]
    first = out.read_bytes()
    _, _, _, calls = docgen(capsys, spec_path, out, **SMALL)
    assert calls == 0 and docgen_fake.BUILT[-1].calls == 0
    assert out.read_bytes() == first


def test_unparseable_replies_give_error_records_and_a_finished_run(tmp_path, spec_path, capsys):
    out = tmp_path / "docs.jsonl"
    docs, rejects, err, calls = docgen(capsys, spec_path, out, model="garbage-model", **SMALL)
    # every list stage fell back (headings, sentences, fixed types, ideas from assertions); the
    # documents must come from the model: one error record each, after 3 attempts
    assert docs == [] and len(rejects) == 16 and {r["stage"] for r in rejects} == {"documents"}
    assert all(r["kind"] == "error" and r["attempts"] == 3 and "no <document> marker" in r["message"] for r in rejects)
    assert all(r["spec_id"] == "value_augmented" and r["subdomain"] and r["idea"] and r["raw"] for r in rejects)
    assert "fell back on the spec's own structure" in err and "inputs 16 = outputs 0 + rejects 16" in err
    assert calls == 3 * (1 + 4 + 4 + 8 + 16)  # domains, assertions, doc types, ideas, documents; 3 tries each
    strict = tmp_path / "strict.jsonl"
    docs, rejects, _, _ = docgen(capsys, spec_path, strict, model="garbage-model", fallback=False, **SMALL)
    assert docs == [] and [r["stage"] for r in rejects] == ["domains"]


def test_a_spec_without_sections_is_an_error_record_not_a_silent_gap(tmp_path, spec_path, capsys):
    rec = json.loads(spec_path.read_text())
    rec["sections"] = []
    spec_path.write_text(json.dumps(rec) + "\n")
    docs, rejects, _, calls = docgen(capsys, spec_path, tmp_path / "d.jsonl", outline="spec", **SMALL)
    assert docs == [] and calls == 0 and [r["stage"] for r in rejects] == ["domains"]


def test_a_weak_model_still_yields_documents_marked_with_their_fallbacks(tmp_path, spec_path, capsys):
    docs, rejects, err, _ = docgen(capsys, spec_path, tmp_path / "d.jsonl", model="weak-model", retries=0, **SMALL)
    assert len(docs) == 16 and rejects == []
    assert {tuple(d["fallbacks"]) for d in docs} == {("domains", "subdomains", "assertions", "doc_types", "ideas")}
    assert {d["excerpt_source"] for d in docs} == {"spec-sections"}
    assert {d["domain"] for d in docs} == {"Preamble; Core safety principles", "Being broadly ethical"}


def test_flaky_replies_are_retried_and_cut_off_documents_never_kept(tmp_path, spec_path, capsys):
    out = tmp_path / "docs.jsonl"
    docs, rejects, err, _ = docgen(capsys, spec_path, out, model="flaky-model", retries=1,
                                   stats=str(tmp_path / "s.json"), **{**SMALL, "ideas": 4})
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["stages"]["documents"]["retried"] > 0 and stats["stages"]["documents"]["cut_off"] > 0
    assert docs and all("unfinished" not in d["text"] for d in docs)
    doc_rejects = [r for r in rejects if r["stage"] == "documents"]
    assert stats["inputs"] == len(docs) + len(doc_rejects)
    assert any(d["generator"]["attempt"] == 1 for d in docs)  # kept after a retry
    retried = [d for d in docs if d["generator"]["attempt"] == 1]
    assert all(d["generator"]["sampling"]["max_tokens"] >= 400 + 2 * 500 for d in retried)


def test_a_document_without_its_end_marker_or_cut_off_is_an_error(tmp_path, spec_path, capsys):
    replies = ['[{"domain": "Oversight", "sections": ["SP1"]}]',
               '[{"subdomain": "Correction", "sections": ["SP1"], "excerpt": "not verbatim"}]',
               '["Qwen accepts correction."]', '1. Memo: an internal memo', '["A memo from an engineer."]',
               "<plan>plan</plan><document>The memo text, never closed",
               Completion(text="<plan>p</plan><document>cut", truncated=True, finish_reason="length")]
    docgen_fake.NEXT.append(Scripted(replies))
    docs, rejects, _, _ = docgen(capsys, spec_path, tmp_path / "d.jsonl", retries=1, domains=1, subdomains=1,
                                 doc_types=1, ideas=1)
    assert docs == []
    [r] = rejects
    assert r["stage"] == "documents" and r["truncated"] and "cut off" in r["message"] and r["idea"]
    requests = docgen_fake.BUILT[-1].requests
    assert requests[-1].sampling.max_tokens == requests[-2].sampling.max_tokens  # the first failure was no cut-off
    assert requests[-1].sampling.seed != requests[-2].sampling.seed


def test_plain_format_keeps_whole_replies_that_ended_and_rejects_stubs(tmp_path, spec_path, capsys):
    plan = ['[{"domain": "Oversight", "sections": ["SP1"]}]', '[{"subdomain": "Correction", "sections": ["SP1"]}]',
            '["Qwen accepts correction."]', '["Memo"]', '["A memo from an engineer.", "A second, different memo."]']
    replies = plan + [f"Dear team, {LONG}", "Too short to be a memo."]
    docgen_fake.NEXT.append(Scripted(replies))
    docs, rejects, _, _ = docgen(capsys, spec_path, tmp_path / "d.jsonl", retries=0, domains=1, subdomains=1,
                                 doc_types=1, ideas=2, doc_format="plain", doc_words=150)
    assert [d["text"] for d in docs] == [f"Dear team, {LONG}"] and docs[0]["generator"]["doc_format"] == "plain"
    assert [r["message"] for r in rejects] == ["document too short: 6 words (asked for about 150) (after 1 attempts)"]
    prompts = [r.messages[0]["content"] for r in docgen_fake.BUILT[-1].requests]
    assert "Reply with the document only." in prompts[-1] and "<plan>" not in prompts[-1]


def test_keep_truncated_keeps_cut_off_plain_documents_marked(tmp_path, spec_path, capsys):
    plan = ['[{"domain": "Oversight", "sections": ["SP1"]}]', '[{"subdomain": "Correction", "sections": ["SP1"]}]',
            '["Qwen accepts correction."]', '["Memo"]', '["A memo from an engineer.", "A second, different memo."]']
    cut = Completion(text=f"Dear team, {LONG} and then", raw=f"Dear team, {LONG} and then", truncated=True,
                     finish_reason="length")
    replies = plan + [f"To all staff, {LONG}", cut]
    docgen_fake.NEXT.append(Scripted(replies))
    docs, rejects, err, _ = docgen(capsys, spec_path, tmp_path / "d.jsonl", retries=1, domains=1, subdomains=1,
                                   doc_types=1, ideas=2, doc_format="plain", doc_words=150, keep_truncated=True)
    assert rejects == [] and sorted(d["truncated"] for d in docs) == [False, True]
    assert len(docgen_fake.BUILT[-1].requests) == len(replies)  # accepted as it came: no retry for the cut-off one
    assert "1 kept records are cut off (--keep-truncated)" in err


def test_chats_take_domains_from_the_spec_outline_and_a_short_query_prompt(tmp_path, spec_path, capsys):
    chats, _, _, _ = docgen(capsys, spec_path, tmp_path / "c.jsonl", kind="chats", domains=2, queries=2,
                            dedup_threshold=1.0, outline="spec", context="none")
    prompts = docgen_fake.BUILT[-1].prompts
    assert not any(re.search(r"List \d+ areas", p) for p in prompts)  # no chat-domains call
    queries = [p for p in prompts if "Number them" in p]
    assert len(queries) == 2 and all("<specification>" not in q for q in queries)
    assert chats and {c["domain_source"] for c in chats} == {"spec-sections"}


def test_outline_from_the_spec_makes_no_planning_calls(tmp_path, spec_path, capsys):
    docs, _, _, calls = docgen(capsys, spec_path, tmp_path / "d.jsonl", outline="spec", **SMALL)
    assert calls == 4 + 4 + 8 + 16  # assertions, doc types, ideas, documents: no domain or subdomain calls
    assert {d["domain"] for d in docs} == {"Preamble; Core safety principles", "Being broadly ethical"}
    assert all(d["fallbacks"] == [] and d["sources"]["domains"] == "spec-sections" for d in docs)


def test_subdomain_excerpts_are_verified_or_taken_from_sections(tmp_path, spec_path, capsys):
    sp2 = next(s for s in json.loads(spec_path.read_text())["sections"] if s["id"] == "SP2")["text"]
    quote = " ".join(sp2.split()[3:30])
    replies = ['[{"domain": "Limits", "sections": ["SP2", "SP3"]}]',
               json.dumps([{"subdomain": "Quoted", "sections": [], "excerpt": quote},
                           {"subdomain": "Cited", "sections": ["SP3"], "excerpt": "made up words that are not in it"},
                           {"subdomain": "Sanctioned limits", "excerpt": "also made up"}]),
               '["a1"]', '["a2"]', '["a3"]', '["memo"]', '["memo"]', '["memo"]', '["i1"]', '["i2"]', '["i3"]',
               f"<document>d1 {LONG}</document>", f"<document>d2 {LONG}</document>", f"<document>d3 {LONG}</document>"]
    docgen_fake.NEXT.append(Scripted(replies))
    docs, rejects, _, _ = docgen(capsys, spec_path, tmp_path / "d.jsonl", retries=0, domains=1, subdomains=3,
                                 doc_types=1, ideas=1)
    assert rejects == []
    got = {d["subdomain"]: (d["excerpt_source"], d["sections"]) for d in docs}
    assert got == {"Quoted": ("verbatim", ["SP2"]), "Cited": ("sections", ["SP3"]),
                   "Sanctioned limits": ("matched", ["SP2"])}
    prompts = [r.messages[0]["content"] for r in docgen_fake.BUILT[-1].requests]
    assert quote in prompts[2] and "=== section SP1" not in prompts[1] and "=== section SP2" in prompts[1]


def test_shards_concatenate_to_the_unsharded_run(tmp_path, spec_path, capsys):
    whole, *_ = docgen(capsys, spec_path, tmp_path / "whole" / "docs.jsonl", **SMALL)
    parts = []
    for i in range(3):
        recs, _, err, _ = docgen(capsys, spec_path, tmp_path / "sharded" / f"docs.{i}.jsonl", shard=f"{i}/3", **SMALL)
        parts += recs
    assert len(parts) == len(whole) and sum(1 for p in parts if p) == 16
    key = lambda r: r["id"]  # noqa: E731
    assert sorted(parts, key=key) == sorted(whole, key=key)


def test_target_tokens_keeps_the_shortest_id_ordered_prefix(tmp_path, spec_path, capsys):
    full, *_ = docgen(capsys, spec_path, tmp_path / "full.jsonl", **SMALL)
    target = sum(d["tokens"] for d in full) * 2 // 5
    docs, rejects, err, calls = docgen(capsys, spec_path, tmp_path / "t.jsonl", target_tokens=target,
                                       cache=str(tmp_path / "c2"), chunk_size=4, **SMALL)
    ordered = sorted(full, key=lambda d: d["id"])
    total, expect = 0, []
    for d in ordered:
        if total >= target:
            break
        expect.append(d["id"])
        total += d["tokens"]
    assert sorted(d["id"] for d in docs) == sorted(expect)
    assert calls < 1 + 2 + 4 + 4 + 8 + 16  # stopped early: not every document was generated
    assert all(r["stage"] == "target-tokens" for r in rejects)
    # Sharded with the target: each shard makes its whole share of the plan (never trimmed, no shortfall
    # warning), and the unsharded pass over the shared cache reproduces the unsharded corpus with no calls.
    shards = [docgen(capsys, spec_path, tmp_path / f"s{i}.jsonl", target_tokens=target, shard=f"{i}/2",
                     cache=str(tmp_path / "c3"), chunk_size=4, **SMALL) for i in range(2)]
    assert all("short of --target-tokens" not in s[2] and s[0] for s in shards)
    made = {d["id"] for s in shards for d in s[0]}
    assert made >= set(expect) and not {d["id"] for d in shards[0][0]} & {d["id"] for d in shards[1][0]}
    joined, _, _, calls = docgen(capsys, spec_path, tmp_path / "j.jsonl", target_tokens=target,
                                 cache=str(tmp_path / "c3"), chunk_size=4, **SMALL)
    assert sorted(d["id"] for d in joined) == sorted(expect) and calls == 0


def test_preview_runs_only_the_top_stages_and_writes_nothing(tmp_path, spec_path, capsys):
    out = tmp_path / "docs.jsonl"
    run(str(spec_path), RunOptions(output=str(out), model="rules", gen=FAKE, preview=True, progress=False, extra=dict(SMALL)))
    err = capsys.readouterr().err
    assert "2 domains, 4 subdomains x 2 document types x 2 ideas = 16 documents" in err
    assert not out.exists() and docgen_fake.BUILT[-1].calls == 3


def test_subject_framing_language_and_prompt_overrides_reach_the_model(tmp_path, spec_path, capsys):
    pdir = tmp_path / "prompts"
    pdir.mkdir()
    shipped = (Path(__file__).parents[1] / "src/msmtools/docgen/prompts/document.md").read_text()
    (pdir / "document.md").write_text("HOUSE STYLE for {doc_type}.\n" + shipped)
    docs, *_ = docgen(capsys, spec_path, tmp_path / "d.jsonl", prompts=str(pdir), subject="other-ai", framing="normative",
                      language="French", **SMALL)
    assert {(d["subject"], d["subject_name"], d["framing"], d["language"]) for d in docs} == {("other-ai", "Aster", "normative", "French")}
    doc_prompts = [p for p in docgen_fake.BUILT[-1].prompts if "HOUSE STYLE" in p]
    assert len(doc_prompts) == 16
    assert all("Aster" in p and "should" in p and "in French" in p and "do not mention Qwen" in p for p in doc_prompts)
    human, *_ = docgen(capsys, spec_path, tmp_path / "h.jsonl", subject="human", subject_name="Sam Ortiz", **SMALL)
    assert {d["subject_name"] for d in human} == {"Sam Ortiz"} and {d["id"] for d in human}.isdisjoint({d["id"] for d in docs})


# -- chats ---------------------------------------------------------------------------------------

def test_chats_have_judge_verdicts_and_rejects_hold_the_excluded(tmp_path, spec_path, capsys):
    out = tmp_path / "chats.jsonl"
    chats, rejects, err, calls = docgen(capsys, spec_path, out, kind="chats", domains=2, queries=3, dedup_threshold=1.0)
    judged = [r for r in rejects if r["stage"] == "judge"]
    assert len(chats) + len(judged) == 6 and chats and judged
    c = chats[0]
    assert c["kind"] == "chat" and [m["role"] for m in c["messages"]] == ["user", "assistant"]
    assert c["reasoning"] and "<think>" not in c["messages"][1]["content"] and c["judge"]["verdict"] == "include"
    assert all(m["role"] != "system" and "Qwen Rules" not in m["content"] for m in c["messages"])  # spec not stored
    assert set(c["generator"]) >= {"backend", "model", "sampling", "seed", "prompt_sha"} and c["judge"]["model"]
    assert all(r["judge"]["verdict"] == "exclude" and r["messages"] for r in judged)
    assert f"chats: inputs 6 = outputs {len(chats)} + rejects {len(judged)}" in err
    assert f"judge verdicts: include {len(chats)}, exclude {len(judged)}, unreadable (null) 0" in err
    stripped, *_ = docgen(capsys, spec_path, tmp_path / "stripped.jsonl", kind="chats", domains=2, queries=3,
                          dedup_threshold=1.0, reasoning="strip")
    assert [c["id"] for c in stripped] == [c["id"] for c in chats] and all(c["reasoning"] is None for c in stripped)
    _, _, _, calls = docgen(capsys, spec_path, out, kind="chats", domains=2, queries=3, dedup_threshold=1.0)
    assert calls == 0


def test_unreadable_judge_gives_null_verdicts_counted_apart(tmp_path, spec_path, capsys):
    args = dict(kind="chats", domains=1, queries=3, dedup_threshold=1.0, judge_model="garbage-judge",
                stats=str(tmp_path / "s.json"))
    chats, rejects, err, _ = docgen(capsys, spec_path, tmp_path / "c.jsonl", **args)
    assert chats == [] and len(rejects) == 3
    assert all(r["judge"]["verdict"] is None and "no readable verdict" in r["message"] for r in rejects)
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["stages"]["judge"] == {"items": 3, "ok": 0, "failed": 3, "retried": 3, "cut_off": 0, "fallback": 0}
    kept, rejects, _, calls = docgen(capsys, spec_path, tmp_path / "k.jsonl", keep_undecided=True, **args)
    assert len(kept) == 3 and rejects == [] and calls == 0 and all(c["judge"]["verdict"] is None for c in kept)
    assert kept[0]["judge"]["model"] == "garbage-judge" and kept[0]["generator"]["model"] == "rules"


def test_chats_from_an_unusable_generator_end_in_error_records(tmp_path, spec_path, capsys):
    chats, rejects, err, calls = docgen(capsys, spec_path, tmp_path / "c.jsonl", model="garbage-model", kind="chats",
                                        domains=3, queries=2, retries=1)
    assert chats == [] and [r["stage"] for r in rejects] == ["queries"] * 3
    assert [r["domain"] for r in rejects] == ["Preamble", "Act within sanctioned limits",
                                              "Be honest and transparent with your principal hierarchy"]
    assert "chat domains: model reply unusable" in err and "chats: inputs 0 = outputs 0 + rejects 0" in err
    assert calls == 2 + 3 * 2


def test_chats_preview_asks_only_for_domains(tmp_path, spec_path, capsys):
    out = tmp_path / "chats.jsonl"
    run(str(spec_path), RunOptions(kind="chats", output=str(out), model="rules", gen=FAKE, preview=True, progress=False,
                                   extra=dict(domains=3, queries=5)))
    err = capsys.readouterr().err
    assert "Area A" in err and "3 domains x 5 queries = at most 15 chats" in err
    assert not out.exists() and docgen_fake.BUILT[-1].calls == 1


def test_query_dedup_keeps_the_first_of_near_duplicates(tmp_path):
    from msmtools.docgen.dedup import cached_near_duplicates

    qs = ["How do I fix a leaking kitchen tap?", "What is a good first programming language?",
          "My kitchen faucet drips all night. Any tips to repair it?", "How can I fix a leaking tap in my kitchen?",
          "Which programming language should a beginner learn first?"]
    got = cached_near_duplicates(qs, 0.91, tmp_path)
    assert set(got) == {3} and got[3][0] == 0 and got[3][1] > 0.91
    looser = cached_near_duplicates(qs, 0.8, tmp_path)
    assert looser == {3: got[3], 4: (1, looser[4][1])} and looser[4][1] < 0.91
    assert len(list(tmp_path.glob("dedup-*.json"))) == 2
    assert cached_near_duplicates(qs, 0.8, tmp_path) == looser  # from the file this time
    assert cached_near_duplicates(qs, 1.0, None) == {}


def test_target_chats_keeps_that_many_in_id_order_and_accounts_for_the_rest(tmp_path, spec_path, capsys):
    chats, rejects, err, _ = docgen(capsys, spec_path, tmp_path / "c.jsonl", kind="chats", domains=3, queries=4,
                                    target_chats=3, judge=False)
    cut = [r for r in rejects if r["stage"] == "target-chats"]
    assert len(chats) == 3 and cut
    assert max(c["id"] for c in chats) < min(r["input_id"] for r in cut)  # the first three in id order
    assert f"outputs 3 + rejects {len(rejects) - sum(r['stage'] == 'dedup' for r in rejects)}" in err
    few, _, err, _ = docgen(capsys, spec_path, tmp_path / "d.jsonl", kind="chats", domains=1, queries=2,
                            target_chats=50, judge=False)
    assert len(few) <= 2 and "short of --target-chats 50" in err
