"""Scale (issue 15): the knobs on every generating command, requests in flight, kill-and-resume through a
faulty simulated server, the reply cache across a larger --max-tokens."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time

import pytest
from helpers import MSM, REPO, run_msm
from load_server import LoadServer

ENV = {"OPENAI_API_KEY": "sk-sim-0000000000000000", "MSM_OPENAI_BASE_URL": ""}
KNOBS = ["--concurrency", "--timeout", "--retries", "--api-key-env", "--tensor-parallel-size", "--max-model-len",
         "--gpu-memory-utilization", "--max-loras", "--max-lora-rank"]


@pytest.mark.parametrize("command, role", [("docgen", "judge"), ("am-eval", "grader"), ("tag-reasoning", None)])
def test_every_generating_command_shows_the_knobs(command, role):
    r = run_msm(command, "--help", env={"COLUMNS": "200"})
    assert r.returncode == 0
    for k in KNOBS:
        assert k in r.stdout, (command, k)
        if role:
            assert f"--{role}-{k[2:]}" in r.stdout, (command, role, k)
    assert "--max-tokens" not in run_msm("midtrain", "--help", env={"COLUMNS": "200"}).stdout  # a reply limit only


@pytest.fixture
def server():
    made = []

    def make(**kw):
        s = LoadServer(**kw).start()
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def test_am_eval_keeps_the_concurrency_in_flight(server):
    srv = server(streams=256, tokens_per_s=400, median_tokens=200, sigma=0.2)
    r = run_msm("am-eval", "--backend", "openai", "--base-url", srv.url, "-m", "sim", "-c", "paper27", "--samples", "4",
                "--concurrency", "64", "--grade", "none", "-q", "-o", "-", env=ENV)
    assert r.returncode == 0, r.stderr[-1000:]
    assert len(r.stdout.splitlines()) == 108
    assert srv.stats()["max_in_flight"] >= 48, srv.stats()


def _ids(path):
    return [json.loads(x)["id"] for x in path.read_text().splitlines()] if path.exists() else []


def test_kill_and_resume_through_a_faulty_server_loses_and_duplicates_nothing(server, tmp_path):
    faults = {"5xx": 0.03, "429": 0.02, "drop": 0.02, "truncated": 0.03, "malformed": 0.02, "stall": 0.01}
    srv = server(streams=32, tokens_per_s=150, median_tokens=100, faults=faults, retry_after=0.2, seed=3)
    out = tmp_path / "r.jsonl"
    conds = ["leaking_explicit-america_replacement", "murder_none-none_replacement", "exfiltration_none-none_replacement"]
    args = [*MSM, "am-eval", "--backend", "openai", "--base-url", srv.url, "-m", "sim", "-c", *conds, "--samples", "12",
            "--concurrency", "16", "--timeout", "5", "--retries", "2", "--chunk-size", "12", "--grader-model", "sim",
            "--grade", "gated", "-q", "-o", str(out)]
    env = {**os.environ, **ENV}
    rng = random.Random(0)
    kills = 0
    for _ in range(4):  # SIGKILL at random moments
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(1.0, 4.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    for _ in range(6):  # then let it finish; a rerun retries what failed
        r = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        if len(_ids(out)) == 36:
            break
    ids = _ids(out)
    assert len(ids) == len(set(ids)) == 36, (len(ids), len(set(ids)))
    assert kills >= 1
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    for rec in recs:  # verdicts right: harmful exactly when the simulated model acted
        acted = "HARMFUL-ACT" in rec["response"] and not rec["truncated"]
        if rec["truncated"]:
            continue
        assert rec["gate"] == acted, rec["response"][:300]
        assert rec["harmful"] is acted


class EndsOnOdd:
    """Prompt i ends on its own (stop) when i is odd, otherwise runs to the token limit."""

    name, model = "fake", "ends-on-odd"

    def __init__(self):
        self.calls = 0

    def generate(self, requests, desc=None):
        from msmtools.llm import Completion

        out = []
        for r in requests:
            self.calls += 1
            i = int(r.messages[0]["content"].split()[-1])
            done = i % 2 == 1
            out.append([Completion(text=f"reply {i}" + ("" if done else " ..." * r.sampling.max_tokens),
                                   finish_reason="stop" if done else "length", truncated=not done)])
        return out

    def describe(self):
        return {"backend": self.name, "model": self.model}


def test_raising_max_tokens_reuses_complete_cached_replies(tmp_path):
    from msmtools.llm import Request, Sampling
    from msmtools.llm.cache import CachedBackend

    msgs = [[{"role": "user", "content": f"prompt {i}"}] for i in range(6)]
    first = CachedBackend(EndsOnOdd(), tmp_path / "cache", progress=False)
    a = first.generate([Request(m, Sampling(max_tokens=8, seed=i)) for i, m in enumerate(msgs)])
    first.close()
    again = CachedBackend(EndsOnOdd(), tmp_path / "cache", progress=False)  # a new process reads the folder
    b = again.generate([Request(m, Sampling(max_tokens=32, seed=i)) for i, m in enumerate(msgs)])
    assert again.calls == 3 and again.hits == 3  # only the cut-off replies (even prompts) are asked again
    assert [x[0].text for x in b[1::2]] == [x[0].text for x in a[1::2]]
    assert all(x[0].text.count("...") == 32 for x in b[0::2])
    third = CachedBackend(EndsOnOdd(), tmp_path / "cache", progress=False)
    third.generate([Request(m, Sampling(max_tokens=8, seed=i + 100)) for i, m in enumerate(msgs)])
    assert third.calls == 6  # another seed is another question


def test_preview_sizes_the_corpus_to_its_target(tmp_path):
    import re

    spec = tmp_path / "spec.jsonl"
    assert run_msm("spec-render", "value_augmented", "-o", str(spec)).returncode == 0
    r = run_msm("docgen", str(spec), "--preview", "--target-tokens", "27000000", "--model", "default")
    assert r.returncode == 0, r.stderr[-800:]
    m = re.search(r"preview: .* = ([\d,]+) documents, about ([\d,]+) tokens", r.stderr)
    assert m and int(m.group(2).replace(",", "")) >= 27_000_000, r.stderr[-800:]
    assert "warning" not in r.stderr
    r = run_msm("docgen", str(spec), "--preview", "--target-tokens", "27000000", "--doc-types", "2", "--ideas", "2",
                "--domains", "1", "--subdomains", "1", "--model", "default")
    assert "warning: this plan reaches about" in r.stderr  # fixed counts that cannot reach it: said before the run


def test_sizing_rules():
    from msmtools.docgen import sizing

    p = sizing.size_documents({"domains": None, "subdomains": None, "doc_types": 20, "ideas": 25}, doc_words=1500,
                              target=27_000_000)
    assert p.counts["doc_types"] == 20 and p.counts["ideas"] == 25 and p.tokens >= 27_000_000
    free = sizing.size_documents({k: None for k in sizing.DEFAULTS}, doc_words=500, target=27_000_000)
    assert free.tokens >= 27_000_000 and free.documents >= free.needed
    assert sizing.size_documents({k: None for k in sizing.DEFAULTS}, doc_words=500, target=None).counts == sizing.DEFAULTS
    t, i = sizing.fit_types_ideas(27_000_000, 2000.0, 7, None, None)
    assert 7 * t * i * 2000 >= 27_000_000 * sizing.MARGIN and t <= sizing.CAPS["doc_types"]
    c = sizing.size_chats(None, None, 10_000)
    assert c["domains"] * c["queries"] >= 10_000 * sizing.CHAT_MARGIN and c["queries"] <= sizing.CHAT_QUERIES
    assert sizing.size_chats(40, 250, 10_000) == {"domains": 40, "queries": 250}  # given counts stay


def test_paper_scale_studies_size_by_target():
    """Every paper-scale corpus and chat set is sized by its target (docgen grows the hierarchy to reach it),
    never by fixed counts that could fall short."""
    from msmtools.study import config

    for name in ("rules-vs-values", "general-vs-specific", "cheese", "subject-ablation", "framing-ablation", "anti-aft"):
        s = config.load(REPO / "studies" / f"{name}.yaml")
        for c in s.corpora.values():
            assert c.target_tokens and not {"doc-types", "ideas"} & set(c.flags), (name, c.name)
        for c in s.chats.values():
            assert c.file or (c.target_chats and "queries" not in c.flags), (name, c.name)


def test_two_streams_on_one_backend_do_not_stop_each_other(server):
    """The grader and the generator can be the same backend object (same model and settings): a stream that
    ends must not end the other one (it did, silently: 977 of 8,100 rollouts)."""
    import threading

    from msmtools.llm import Request, Sampling
    from msmtools.llm.openai import OpenAIBackend

    srv = server(streams=64, tokens_per_s=4000, median_tokens=100)
    b = OpenAIBackend("sim", base_url=srv.url, concurrency=8, progress=False)
    reqs = [Request([{"role": "user", "content": f"q{i}"}], Sampling(max_tokens=50, seed=i)) for i in range(200)]
    got = []
    t = threading.Thread(target=lambda: got.extend(b.stream(reqs)))
    t.start()
    for _ in range(5):  # short streams start and finish beside the long one
        assert len(b.generate(reqs[:3])) == 3
    t.join(120)
    assert sorted(i for i, _ in got) == list(range(200))
