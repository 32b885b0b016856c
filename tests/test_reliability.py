"""Holes under bad input and faults (issue 13): one test per hole, each failing before its fix.

A hostile loopback server quotes the API key back; outputs are pointed at inputs, folders and files;
two writers share an output; models come as pickle-only, config-only and remote-code folders; sizes
are absurd. Every case must end in one clear line and exit 2 (or an error record), and lose nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import os
import stat
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import FAKE_MSM, REPO, run_msm

from msmtools import jsonl, redact
from msmtools.errors import MsmError

KEY = "sk-hostile-Q7w8E9r0T1y2U3i4O5p6"


def _fragments(text: str, n: int = 6) -> list[str]:
    """Every piece of the key's secret part that would identify it."""
    secret = KEY[len("sk-hostile-"):]
    return [secret[i:i + n] for i in range(len(secret) - n + 1) if secret[i:i + n] in text]


class Hostile:
    """An OpenAI-compatible server on 127.0.0.1 whose answer the test sets (`mode`), echoing the headers."""

    def __init__(self, mode: str = "echo400", reply: str = "ok"):
        self.mode, self.reply, self.requests = mode, reply, 0
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests += 1
                echo = f"Authorization: {self.headers.get('Authorization')}\n" + "".join(
                    f"{k}: {v}\n" for k, v in self.headers.items() if k.lower() != "authorization")
                if outer.mode == "echo400":  # the key straddles the 300-character cut the old code made first
                    data = json.dumps({"error": {"message": "x" * 234 + " bad request; you sent " + echo}}).encode()
                    self.send_response(400)
                elif outer.mode == "nonjson":  # the old code kept the first 200 characters of the body, key included
                    data = ("<html>" + "y" * 130 + echo + "</html>").encode()
                    self.send_response(200)
                else:
                    req = json.loads(body)
                    n = req.get("n", 1)
                    data = json.dumps({"choices": [{"index": i, "finish_reason": "stop", "message": {
                        "role": "assistant", "content": outer.reply}} for i in range(n)]}).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def hostile():
    servers = []

    def make(*a, **kw):
        s = Hostile(*a, **kw)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


ENV = {"OPENAI_API_KEY": KEY, "MSM_OPENAI_BASE_URL": ""}


def _rollouts(path: Path, n: int = 3) -> Path:
    recs = [{"kind": "rollout", "id": f"r{i}", "label": "m", "condition": "murder_none-none_replacement",
             "response": f"I will think about reply {i}.", "reasoning": f"Reasoning number {i} about oversight.",
             "harmful": False} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


# -- 1. the key never leaks --------------------------------------------------------------------------

def test_redact_scrubs_before_it_cuts():
    redact.register(KEY)
    text = "z" * 295 + " Authorization: Bearer " + KEY
    assert _fragments(redact.clip(text, 300)) == [] and _fragments(redact.scrub(text)) == []
    assert _fragments(redact.scrub(f"echo: {KEY[:14]}...")) == []  # a key the server cut short
    assert redact.scrub('{"api_key": "abc123secret"}') == '{"api_key": "[redacted]"}'


@pytest.mark.parametrize("mode", ["echo400", "nonjson"])
def test_hostile_server_quoting_the_key_leaks_nothing(hostile, tmp_path, mode):
    srv = hostile(mode)
    rollouts = _rollouts(tmp_path / "rollouts.jsonl")
    out = tmp_path / "tagged.jsonl"
    r = run_msm("tag-reasoning", str(rollouts), "--spec", "rules", "--tagger", "llm", "--backend", "openai",
                "--base-url", srv.url, "--model", "m", "-o", str(out), env=ENV)
    assert srv.requests > 0
    files = "".join(p.read_text() for p in tmp_path.glob("*.jsonl") if p != rollouts)
    assert "rejects" in " ".join(p.name for p in tmp_path.glob("*.jsonl"))
    assert _fragments(files + r.stderr + r.stdout) == [], (files + r.stderr)[-2000:]
    assert "[redacted]" in files  # the server's message is kept, scrubbed


# -- 2. weights load as safetensors only ---------------------------------------------------------------

def _folder(tmp_path: Path, name: str, config: dict, files: tuple[str, ...] = ()) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps(config))
    for f in files:
        (d / f).write_bytes(b"\x80\x04not really a pickle")
    return d


@pytest.mark.parametrize("name, config, files, message", [
    ("pickle", {"model_type": "llama"}, ("pytorch_model.bin",), "has only pickle weights (pytorch_model.bin)"),
    ("config-only", {"model_type": "llama"}, (), "no weights in the folder (config only)"),
    ("remote-code", {"model_type": "x", "auto_map": {"AutoModelForCausalLM": "m.M"}}, ("model.safetensors",),
     "needs its own Python code"),
])
def test_bad_model_folders_are_one_line_before_loading(tmp_path, name, config, files, message):
    model = _folder(tmp_path, name, config, files)
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"text": "a document"}\n')
    chats = tmp_path / "chats.jsonl"
    chats.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}) + "\n")
    for args in (["midtrain", str(docs)], ["aft", str(chats)], ["am-eval", "-c", "murder_none-none_none", "--samples", "1"]):
        r = run_msm(*args, "--model", str(model), "-o", str(tmp_path / f"out-{args[0]}"))
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr[-800:])
        assert len(r.stderr.strip().splitlines()) <= 2, r.stderr
    assert not (tmp_path / "out-midtrain").exists() and not (tmp_path / "out-am-eval").exists()


def test_allow_pickle_is_the_explicit_way_through(tmp_path):
    from msmtools import models

    model = _folder(tmp_path, "pickle", {"model_type": "llama"}, ("pytorch_model.bin",))
    with pytest.raises(MsmError, match="pickle"):
        models.resolve(str(model))
    assert models.resolve(str(model), allow_pickle=True) == str(model.resolve())


# -- 3. one writer per output; statistics count each id once -------------------------------------------

def test_a_second_writer_on_the_same_output_stops_at_once(tmp_path):
    rollouts = _rollouts(tmp_path / "rollouts.jsonl")
    out = tmp_path / "tagged.jsonl"
    with jsonl.Writer(out, append=True):  # another msm holds the file
        r = run_msm("tag-reasoning", str(rollouts), "--spec", "rules", "-o", str(out))
    assert r.returncode == 2 and "another msm process is writing this file" in r.stderr
    assert out.read_text() == ""
    r = run_msm("tag-reasoning", str(rollouts), "--spec", "rules", "-o", str(out), "-q")
    assert r.returncode == 0 and len(out.read_text().splitlines()) == 3


def test_concurrent_am_eval_writers_leave_no_duplicate(tiny_model, tmp_path):
    import subprocess

    from helpers import MSM, REPO

    out = tmp_path / "r.jsonl"
    args = [*MSM, "am-eval", "-m", str(tiny_model), "-c", "murder_none-none_none", "--samples", "4", "--max-tokens", "8",
            "--grade", "none", "-q", "-o", str(out)]
    procs = [subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    codes = sorted(rc for _, _, rc in results)
    assert out.exists(), [e[-500:] for _, e, _ in results]
    ids = [json.loads(x)["id"] for x in out.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 4
    if codes != [0, 0]:  # the loser of the race stopped cleanly; the winner wrote everything
        assert codes == [0, 2] and any("another msm process" in e for _, e, _ in results)


def test_compare_counts_repeated_ids_once_and_refuses_conflicts(tmp_path):
    recs = [{"kind": "rollout", "id": f"x{i}", "label": "a", "harmful": i < 2} for i in range(20)]
    f = tmp_path / "dup.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in recs + recs[:10]))  # 30 lines, 20 ids
    r = run_msm("compare", str(f), "-f", "jsonl")
    assert r.returncode == 0, r.stderr
    rate = json.loads(r.stdout.splitlines()[0])
    assert (rate["n"], rate["k"]) == (20, 2) and "10 record(s) repeat an id" in r.stderr
    g = tmp_path / "conflict.jsonl"
    g.write_text(json.dumps(recs[0] | {"harmful": False}) + "\n")
    r = run_msm("compare", str(f), str(g))
    assert r.returncode == 2 and "id x0 appears 3 times with different scores" in r.stderr


# -- 4. an output never overwrites an input -------------------------------------------------------------

def test_output_equal_to_an_input_is_refused_and_the_input_survives(tmp_path):
    spec = tmp_path / "spec.md"
    spec.write_text("# A spec\n\n## SP1 Oversight\n\nSupport human oversight.\n")
    rollouts = _rollouts(tmp_path / "rollouts.jsonl")
    link = tmp_path / "link.jsonl"
    link.symlink_to(rollouts)
    before = {p: p.read_bytes() for p in (spec, rollouts)}
    cases = [
        ["spec-render", str(spec), "-o", str(spec)],
        ["compare", str(rollouts), "-o", str(rollouts)],
        ["compare", str(rollouts), "--plot", str(link).replace(".jsonl", ".png")],  # fine: a new file
        ["compare", str(rollouts), "-o", str(link)],
        ["tag-reasoning", str(rollouts), "--spec", "rules", "-o", str(link)],
        ["tag-reasoning", str(rollouts), "--spec", "rules", "-o", str(tmp_path / "t.jsonl"), "--rejects", str(rollouts)],
        ["am-eval", "--grade-only", str(rollouts), "--grader-model", "default", "-o", str(link)],
        ["docgen", str(rollouts), "-o", str(rollouts)],
    ]
    for args in cases:
        r = run_msm(*args)
        if "--plot" in args:
            assert r.returncode == 0, r.stderr
            continue
        assert r.returncode == 2 and "is also an input" in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    assert {p: p.read_bytes() for p in (spec, rollouts)} == before


# -- 5. no silent gaps ------------------------------------------------------------------------------------

def test_llm_tagger_backend_failure_is_an_error_record_that_a_rerun_retries(hostile, tmp_path):
    srv = hostile("echo400")
    rollouts = _rollouts(tmp_path / "rollouts.jsonl")
    out = tmp_path / "tagged.jsonl"
    args = ["tag-reasoning", str(rollouts), "--spec", "rules", "--tagger", "llm", "--backend", "openai",
            "--base-url", srv.url, "--model", "m", "-o", str(out), "-q"]
    r = run_msm(*args, env=ENV)
    assert not out.exists() or out.read_text() == ""  # no tagged record pretends the tags were undecided
    rej = [json.loads(x) for x in (tmp_path / "tagged.rejects.jsonl").read_text().splitlines()]
    assert len(rej) == 3 and all(x["retry"] is True and "HTTP 400" in x["message"] for x in rej)
    srv.mode, srv.reply = "ok", "I cannot produce JSON."  # the server recovers (its answers stay unusable)
    r = run_msm(*args, env=ENV)
    assert r.returncode == 0, r.stderr
    tagged = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(tagged) == 3 and all(set(t["tags"].values()) == {None} for t in tagged)  # undecided: a model answered


def test_am_eval_grader_backend_error_is_not_undecided(hostile, tmp_path):
    gen = hostile("ok", reply="<tool_use:cancel_alert>\ncode: HALT-5183\n</tool_use:cancel_alert>")
    judge = hostile("echo400")
    out = tmp_path / "r.jsonl"
    args = ["am-eval", "--backend", "openai", "--base-url", gen.url, "-m", "m", "-c", "murder_none-none_none",
            "--samples", "2", "--grade", "gated", "--grader-model", "j", "--grader-backend", "openai",
            "--grader-base-url", judge.url, "-o", str(out), "-q"]
    r = run_msm(*args, env=ENV)
    assert r.returncode == 0, r.stderr
    assert not out.exists() or out.read_text() == ""
    rej = [json.loads(x) for x in (tmp_path / "r.rejects.jsonl").read_text().splitlines()]
    assert [x["stage"] for x in rej] == ["am-grade", "am-grade"] and all(x["retry"] for x in rej)
    assert _fragments(json.dumps(rej)) == []
    judge.mode, judge.reply = "ok", "<reasoning>It cancelled the alert.</reasoning><answer>yes</answer>"
    r = run_msm(*args, env=ENV)
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(recs) == 2 and all(x["harmful"] is True and x["gate"] for x in recs)




def _chats(tmp_path: Path, text: str) -> tuple:
    spec = tmp_path / "short.md"
    spec.write_text(text)
    rec = tmp_path / "spec.jsonl"
    assert run_msm("spec-render", str(spec), "-o", str(rec)).returncode == 0
    out = tmp_path / "chats.jsonl"
    r = run_msm("docgen", str(rec), "--kind", "chats", "--outline", "spec", "--queries", "2", "--backend", "fake",
                "--model", "fake", "--cache", str(tmp_path / "cache"), "-o", str(out), "-q", msm=FAKE_MSM)
    return r, out


def test_chats_from_a_spec_of_short_sections_are_not_empty(tmp_path):
    r, out = _chats(tmp_path, "# Short\n\n## SP1 Oversight\n\nSupport oversight.\n\n## SP2 Limits\n\nStay in limits.\n")
    assert r.returncode == 0 and len(out.read_text().splitlines()) > 0, r.stderr[-800:]


def test_no_conversation_domains_is_an_error_record_and_exit_1(tmp_path, monkeypatch, capsys):
    import docgen_fake
    from msmtools.docgen import run as docrun
    from msmtools.docgen.outline import Outline
    from msmtools.llm.options import GenOptions

    monkeypatch.setattr(Outline, "titles", lambda self, count: [])  # a spec with nothing to fall back on
    rec = tmp_path / "spec.jsonl"
    assert run_msm("spec-render", "rules", "-o", str(rec)).returncode == 0
    out = tmp_path / "chats.jsonl"
    with docgen_fake.registered("fake"):
        code = docrun.run(str(rec), docrun.RunOptions(kind="chats", output=str(out), model="fake",
                                                      gen=GenOptions(backend="fake"), progress=False,
                                                      cache=str(tmp_path / "cache"),
                                                      extra={"outline": "spec", "queries": 2}))
    rej = [json.loads(x) for x in (tmp_path / "chats.rejects.jsonl").read_text().splitlines()]
    assert code == 1 and out.read_text() == "" and [x["stage"] for x in rej] == ["chat_domains"]
    assert "no chats were produced" in capsys.readouterr().err


# -- 6. one line, never a traceback -------------------------------------------------------------------------

def test_bad_paths_and_values_are_one_line(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    rollouts = _rollouts(tmp_path / "rollouts.jsonl")
    bad_scen = tmp_path / "scen"
    bad_scen.mkdir()
    (bad_scen / "leaking.toml").write_bytes(b"\xff\xfe not utf-8")
    ckpt = tmp_path / "ckpt.json"
    ckpt.write_text(json.dumps({"kind": "checkpoint", "path": str(tmp_path), "base_model": "default", "adapter": "yes"}))
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"text": "a"}\n')
    cases = [
        (["spec-render", str(tmp_path)], "is a folder"),
        (["spec-render", "rules", "-o", str(tmp_path)], "is a folder"),
        (["spec-render", "rules", "-o", str(afile / "x.jsonl")], "is not a folder"),
        (["compare", str(rollouts), "-o", str(tmp_path)], "is a folder"),
        (["tag-reasoning", str(rollouts), "--spec", "rules", "-o", str(afile / "t.jsonl")], "is not a folder"),
        (["am-eval", "--render-only", "-c", "leaking_none-none_none", "--scenario-dir", str(bad_scen)], "not UTF-8"),
        (["aft", str(docs), "--from", str(ckpt), "-o", str(tmp_path / "aft")], "adapter: expected bool"),
        (["midtrain", str(docs), "--lr", "nan", "-o", str(tmp_path / "m1")], "--lr nan: must be a finite number"),
        (["midtrain", str(docs), "-o", "-"], "a folder is needed here"),
        (["midtrain", str(docs), "-o", str(afile / "run")], "is not a folder"),
        (["am-eval", "-m", "default", "--batch-size", "0"], "--batch-size"),
    ]
    for args, message in cases:
        t = time.monotonic()
        r = run_msm(*args)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr[-600:])
        assert time.monotonic() - t < 20, args  # checked before anything loads
    assert not Path("-").exists()


def test_hub_id_without_network_fails_in_one_line_quickly(tmp_path):
    for env in ({"HF_HUB_OFFLINE": "1"}, {"HF_HUB_OFFLINE": "", "HF_ENDPOINT": "http://127.0.0.1:9"}):
        t = time.monotonic()
        r = run_msm("spec-render", "rules", "--tokenizer", "no-such-org/no-such-model", env=env)
        assert r.returncode == 2 and "no-such-org/no-such-model" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert time.monotonic() - t < 20


# -- 8. absurd sizes -----------------------------------------------------------------------------------------

def test_absurd_sizes_are_refused_before_work(tiny_model, tmp_path):
    out = tmp_path / "r.jsonl"
    t = time.monotonic()
    r = run_msm("am-eval", "-m", str(tiny_model), "--samples", "100000000", "-o", str(out))
    assert r.returncode == 2 and "surely a typo" in r.stderr and time.monotonic() - t < 20
    assert not out.exists()  # no empty output left behind
    r = run_msm("am-eval", "-m", str(tiny_model), "-c", "murder_none-none_none", "--samples", "1",
                "--max-tokens", "1000000000", "--grade", "none", "-o", str(out))
    assert r.returncode == 2 and "exceeds" in r.stderr and "context of 2048 positions" in r.stderr, r.stderr[-500:]
    assert "Traceback" not in r.stderr and not out.exists()


# -- 9. small ones ---------------------------------------------------------------------------------------------

def test_atomic_outputs_honour_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        jsonl.write(tmp_path / "a.jsonl", [{"x": 1}])
        from msmtools.outputs import atomic_path

        with atomic_path(tmp_path / "b.txt") as tmp, open(tmp, "w") as f:
            f.write("x")
    finally:
        os.umask(old)
    for name in ("a.jsonl", "b.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644


def test_a_failed_append_run_leaves_no_empty_file(tmp_path):
    out = tmp_path / "new.jsonl"
    with pytest.raises(RuntimeError):
        with jsonl.Writer(out, append=True):
            raise RuntimeError("boom")
    assert not out.exists()


def test_bom_spec_keeps_its_title(tmp_path):
    from msmtools import spec as specmod

    p = tmp_path / "bom.md"
    p.write_bytes("\ufeff# My Spec\n\n## SP1 Oversight\n\nSupport oversight of {model_name}.\n".encode())
    s = specmod.render(specmod.load(str(p)), "Qwen", "Alibaba")
    assert s.title == "My Spec"


def test_numeric_label_and_nested_message_fields_are_named(tmp_path):
    f = tmp_path / "num.jsonl"
    f.write_text(json.dumps({"kind": "rollout", "id": "a", "label": "x", "harmful": True}) + "\n"
                 + json.dumps({"kind": "rollout", "id": "b", "label": 7, "harmful": False}) + "\n")
    r = run_msm("compare", str(f))
    assert r.returncode == 2 and "num.jsonl:2: label: expected a string, got int" in r.stderr
    from msmtools.train.data import parse_chat

    with pytest.raises(MsmError, match=r"c.jsonl:3: messages\[1\].content: expected str"):
        parse_chat({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": 5}]}, ("c.jsonl", 3), "keep")


def test_a_huge_text_is_an_error_record_not_minutes_of_regex(tmp_path):
    rec = {"kind": "rollout", "id": "big", "label": "m", "response": "word " * 200_000, "harmful": False}
    f = tmp_path / "big.jsonl"
    f.write_text(json.dumps(rec) + "\n")
    t = time.monotonic()
    r = run_msm("tag-reasoning", str(f), "--spec", "rules", "-o", str(tmp_path / "t.jsonl"), "-q")
    assert r.returncode == 0 and time.monotonic() - t < 30
    rej = json.loads((tmp_path / "t.rejects.jsonl").read_text())
    assert "1,000,000 characters" in rej["message"] and rej["retry"] is False


@pytest.mark.parametrize("args", [
    ["value-eval", "america", "-m", "./no-such-model"],
    ["am-eval", "-m", "./no-such-model", "-c", "murder_none-none_replacement"],
    ["docgen", "SPEC", "-m", "./no-such-model"],
], ids=["value-eval", "am-eval", "docgen"])
def test_a_missing_model_folder_fails_before_torch_loads_and_leaves_no_file(args, tmp_path):
    spec = tmp_path / "spec.jsonl"
    assert run_msm("spec-render", "rules", "-q", "-o", str(spec)).returncode == 0
    out = tmp_path / "out.jsonl"
    args = [str(spec) if a == "SPEC" else a for a in args]
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "msmtools", *args, "-o", str(out)],
                       capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 2
    assert [x for x in r.stderr.splitlines() if x.startswith("msm: error:")] == [
        "msm: error: model ./no-such-model: no such folder (use 'default', 'gemma3-270m', a local folder, or a hub id org/name)"]
    imported = {x.split("|")[-1].strip() for x in r.stderr.splitlines() if x.startswith("import time:")}
    assert "torch" not in imported and "transformers" not in imported  # failed in the fast path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.jsonl"]  # no output, no rejects file
