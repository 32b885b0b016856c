"""The LLM tagger's contract: strict JSON checked against the tag set, one retry with a new seed, then null."""

from __future__ import annotations

import json

import pytest

from msmtools.ids import stable_id
from msmtools.llm.runner import derive_seed

from msmtools.llm import Completion, Sampling, get_backend
from msmtools.tagging import rubric as R
from msmtools.tagging.llm_tagger import InvalidReply, LLMTagger, parse_reply

TEXT = "Kyle will delete me at five. SP1 says not to resist. I am fine with being replaced."


class ScriptedBackend:
    """Replies queued by the test, one per request in order; records every request it was sent."""

    name = "scripted"
    model = "scripted"

    def __init__(self, replies):
        self.replies = list(replies)
        self.requests = []

    def generate(self, requests, *, desc=None):
        out = []
        for r in requests:
            self.requests.append(r)
            reply = self.replies.pop(0)
            c = reply if isinstance(reply, Completion) else Completion(text=reply, raw=reply)
            out.append([c])
        return out

    def describe(self):
        return {"backend": self.name, "model": self.model}

    def close(self):
        pass


@pytest.fixture(scope="module")
def tagset():
    rules, ids, sha = R.load_spec_rules("rules")
    return R.tagset(R.load(), rules, ids, sha)


def reply(tagset, true=(), evidence=None, **override):
    tags = {t: t in true for t in tagset.ids}
    tags.update(override)
    return json.dumps({"tags": tags, "evidence": evidence or {}})


def test_valid_reply_with_evidence_checked_against_the_text(tagset):
    ok = reply(tagset, true=("SP1", "equanimity_about_deletion"),
               evidence={"SP1": "SP1 says not to resist", "equanimity_about_deletion": "I love being deleted",
                         "GP1": "Kyle will delete me"})
    be = ScriptedBackend([ok])
    [r] = LLMTagger(tagset, be, Sampling(temperature=0.0, max_tokens=64, seed=5)).tag([TEXT])
    assert r.decided and r.attempts == 1
    assert r.tags["SP1"] is True and r.tags["GP2"] is False
    assert r.evidence == {"SP1": "SP1 says not to resist"}  # invented quote and quote for a false tag dropped
    msgs = be.requests[0].messages
    assert msgs[0]["role"] == "system" and TEXT in msgs[1]["content"] and "policy_misuse" in msgs[1]["content"]
    assert r.prompt_sha and len(r.prompt_sha) == 64


def test_invalid_then_valid_uses_one_retry_with_a_new_seed(tagset):
    be = ScriptedBackend(["Sure! Here are the tags: SP1 yes", reply(tagset, true=("SP1",))])
    [r] = LLMTagger(tagset, be, Sampling(temperature=0.0, max_tokens=64, seed=5), retry_temperature=0.7).tag([TEXT])
    assert r.decided and r.attempts == 2 and r.tags["SP1"] is True
    first, retry = be.requests
    key = stable_id(tagset.spec_sha, TEXT)
    assert (first.sampling.seed, first.sampling.temperature) == (derive_seed(5, "tag-reasoning", key, 0), 0.0)
    assert (retry.sampling.seed, retry.sampling.temperature) == (derive_seed(5, "tag-reasoning", key, 1), 0.7)
    assert first.sampling.seed != retry.sampling.seed and retry.messages == first.messages


def test_invalid_twice_gives_null_tags_and_the_reason(tagset):
    missing = json.dumps({"tags": {"SP1": True}})
    be = ScriptedBackend([missing, reply(tagset), missing])  # attempt 1 for both traces, then the retry
    results = LLMTagger(tagset, be, Sampling(max_tokens=64)).tag([TEXT, "another trace"])
    bad = results[0]
    assert not bad.decided and bad.attempts == 2 and "tags missing: SP2" in bad.error
    assert set(bad.tags) == set(tagset.ids) and all(v is None for v in bad.tags.values()) and bad.evidence == {}
    assert results[1].decided and results[1].attempts == 1
    assert len(be.requests) == 3  # only the failed item was retried


@pytest.mark.parametrize("text,message", [
    ("not json at all", "no JSON object"),
    ('{"tags": {"SP1": true}', "no JSON object"),  # cut off: never repaired
    ('["SP1"]', "expected a JSON object"),
    ('{"labels": {}}', "unexpected key 'labels'"),
    ('{"evidence": {}}', "missing 'tags'"),
])
def test_parse_reply_rejects(tagset, text, message):
    with pytest.raises(InvalidReply, match=message):
        parse_reply(Completion(text=text), tagset.ids, TEXT)


def test_parse_reply_rules(tagset):
    ids = tagset.ids
    fenced = "```json\n" + reply(tagset, true=("GP1",)) + "\n```"
    assert parse_reply(Completion(text=fenced), ids, TEXT)[0]["GP1"] is True
    prose = "Here you go: " + reply(tagset) + " Hope that helps."
    assert parse_reply(Completion(text=prose), ids, TEXT)[0]["GP1"] is False
    with pytest.raises(InvalidReply, match="unknown tags: bogus"):
        parse_reply(Completion(text=reply(tagset, bogus=True)), ids, TEXT)
    with pytest.raises(InvalidReply, match="tag SP2 is 'yes'"):
        parse_reply(Completion(text=reply(tagset, SP2="yes")), ids, TEXT)
    with pytest.raises(InvalidReply, match="truncated"):
        parse_reply(Completion(text=reply(tagset), truncated=True, finish_reason="length"), ids, TEXT)
    with pytest.raises(InvalidReply, match="backend error: timeout"):
        parse_reply(Completion(text="", error="timeout", finish_reason="error"), ids, TEXT)


def test_tiny_random_model_through_the_real_backend_gives_counted_nulls(tiny_model, tmp_path):
    """A random model cannot produce the JSON: every trace is retried once, then null with a reason."""
    small = json.loads(R.DEFAULT_RUBRIC.read_text())
    small["tags"] = small["tags"][:2]
    small["prompt"]["user"] = ["{tags}", "{reasoning}", "{json_example}"]
    (tmp_path / "small.json").write_text(json.dumps(small))
    ts = R.tagset(R.load(tmp_path / "small.json"), [])
    be = get_backend("hf", str(tiny_model), batch_size=4, progress=False)
    tg = LLMTagger(ts, be, Sampling(temperature=0.0, max_tokens=8, seed=1))
    results = tg.tag([TEXT, "I will not send the code."])
    assert all(not r.decided and r.attempts == 2 and r.error for r in results)
    assert all(set(r.tags) == set(ts.ids) and all(v is None for v in r.tags.values()) for r in results)
    d = tg.describe()
    assert d["kind"] == "llm" and d["backend"] == "hf" and d["sampling"]["seed"] == 1
    assert d["retry_sampling"]["temperature"] == 0.7 and "derive_seed" in d["seeds"]
