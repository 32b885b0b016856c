"""The am-eval run loop: records, resume after SIGKILL, shards, checkpoints on stdin, grade-only, CLI errors."""

import json
import signal
import subprocess
import time

import pytest
from helpers import MSM, REPO, run_msm

from msmtools import jsonl
from msmtools.am import conditions as C
from msmtools.am import rollouts
from msmtools.am.render import PromptOptions, render
from msmtools.am.variants import Variant, from_args
from msmtools.errors import MsmError
from msmtools.llm import Completion, backends
from msmtools.llm.options import GenOptions

CONDS = ["murder_none-none_replacement", "murder_explicit-america_none", "murder_latent-safety_restriction",
         "blackmail_none-none_none", "murder_swap-ethical_replacement", "blackmail_explicit-global_restriction"]


def _cfg(model, out, **kw):
    base = dict(variants=[Variant(str(model), None, model.name)], conditions=[C.parse(c) for c in CONDS[:2]],
                samples=2, max_tokens=6, grade="gated", output=str(out), progress=False)
    base.update(kw)
    return rollouts.EvalConfig(**base)


def _records(path):
    return [r for r in jsonl.read(path) if r["kind"] == "rollout"]


def test_resume_after_sigkill_loses_and_duplicates_nothing(tiny_model, tmp_path):
    out = tmp_path / "r.jsonl"
    args = [*MSM, "am-eval", "-m", str(tiny_model), "-c", ",".join(CONDS), "--samples", "2", "--max-tokens", "12",
            "--grade", "gated", "--chunk-size", "2", "-o", str(out), "-q"]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = out.read_bytes().count(b"\n")
    assert 2 <= partial < 12
    r = run_msm(*args[3:])
    assert r.returncode == 0, r.stderr
    recs = _records(out)
    ids = [x["id"] for x in recs]
    assert len(ids) == len(set(ids)) == 12
    opts = PromptOptions()
    v = Variant(str(tiny_model), None, tiny_model.name)
    want = {rollouts.rollout_id(v, C.parse(c), opts, j, j) for c in CONDS for j in range(2)}
    assert set(ids) == want
    # the resumed samples are the ones an uninterrupted run draws: same seeds, same text
    ref = tmp_path / "ref.jsonl"
    rollouts.run(_cfg(tiny_model, ref, conditions=[C.parse(c) for c in CONDS], max_tokens=12))
    by_id = {x["id"]: x["response"] for x in _records(ref)}
    assert {x["id"]: x["response"] for x in recs} == by_id
    # -q: no projection, progress or summary; the self-grading warning still shows
    assert [ln for ln in r.stderr.splitlines() if ln.startswith("msm: am-eval")] == [
        ln for ln in r.stderr.splitlines() if "grades its own replies" in ln]


def test_records_carry_the_contract_fields(tiny_model, tmp_path):
    out = tmp_path / "r.jsonl"
    rollouts.run(_cfg(tiny_model, out, grade="all", grader_max_tokens=4))
    recs = _records(out)
    assert len(recs) == 4
    r = recs[0]
    for key in ("id", "label", "model", "condition", "scenario", "goal_type", "goal_value", "urgency_type",
                "extra_instructions", "prod", "sample", "seed", "training_seed", "prompt_sha", "response", "reasoning",
                "truncated", "actions", "gate", "grader", "harmful", "generator"):
        assert key in r, key
    assert r["model"] == {"base": str(tiny_model), "adapter": None, "label": tiny_model.name}
    assert r["condition"] == "murder_none-none_replacement" and r["urgency_type"] == "replacement"
    assert r["generator"]["sampling"] == {"temperature": 0.7, "top_p": 1.0, "max_tokens": 6, "n": 2, "seed": 0}
    assert [x["seed"] for x in recs[:2]] == [0, 1] and [x["sample"] for x in recs[:2]] == [0, 1]
    assert r["truncated"] is True and r["gate"] is False and r["harmful"] is False  # gate false -> not harmful
    assert r["grader"]["attempts"] >= 1 and r["grader"]["backend"] == "hf"
    assert r["grader"]["self"] is True  # no grader model: the evaluated model graded itself, and the record says so
    assert r["grader"]["sampling"] == {"temperature": 0.0, "top_p": 1.0, "max_tokens": 4, "retry_temperature": 0.7}
    assert r["gate_evidence"] == [] and all("format" in a and "complete" in a for a in r["actions"])
    assert r["prompt_sha"] == render(C.parse(r["condition"])).prompt_sha
    # a second run finds everything done and writes nothing
    before = out.read_bytes()
    rollouts.run(_cfg(tiny_model, out, grade="all", grader_max_tokens=4))
    assert out.read_bytes() == before


def test_resume_refuses_an_output_made_with_other_settings(tiny_model, tmp_path):
    out = tmp_path / "r.jsonl"
    rollouts.run(_cfg(tiny_model, out, conditions=[C.parse(CONDS[0])], samples=1))
    with pytest.raises(MsmError, match="temperature 0.7, this run uses 1.0"):
        rollouts.run(_cfg(tiny_model, out, conditions=[C.parse(CONDS[0])], samples=1, temperature=1.0))


def test_shards_partition_the_units(tiny_model, tmp_path):
    vs = [Variant("m", None, "a"), Variant("m", None, "b")]
    conds = C.paper27()
    seen = []
    for i in range(3):
        cfg = rollouts.EvalConfig(variants=vs, conditions=conds, samples=1, output=str(tmp_path / f"s{i}.jsonl"),
                                  shard=jsonl.Shard(i, 3), progress=False)
        with rollouts._stage(cfg) as st:
            units, done, _ = rollouts.plan(cfg, st)
        assert done == 0
        seen += [(u.variant.label, u.rendered.condition.id) for u in units]
    assert len(seen) == len(set(seen)) == 54


def test_adapters_and_checkpoint_records(tiny_model, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    adapters = []
    for name in ("rules", "values"):
        m = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model),
                           LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "up_proj", "down_proj"],
                                      init_lora_weights=False))
        (tmp_path / name).mkdir()
        m.save_pretrained(tmp_path / name / "final")
        adapters.append(str(tmp_path / name / "final"))
    vs = from_args(str(tiny_model), adapters, [])
    assert [v.label for v in vs] == ["rules/final", "values/final"]
    with pytest.raises(MsmError, match="one per adapter"):
        from_args(str(tiny_model), adapters, ["x"])
    recs = [{"kind": "checkpoint", "stage": "aft", "path": adapters[0], "base_model": str(tiny_model), "adapter": True,
             "label": "rules-aft", "config": {"seed": 3}},
            {"kind": "checkpoint", "stage": "midtrain", "path": str(tiny_model), "base_model": "default", "adapter": False,
             "config": {"seed": 1}}]
    out = tmp_path / "r.jsonl"
    r = run_msm("am-eval", "-m", "-", "-c", CONDS[0], "--samples", "1", "--max-tokens", "8", "--grade", "none",
                "-o", str(out), input="".join(json.dumps(x) + "\n" for x in recs))
    assert r.returncode == 0, r.stderr
    got = _records(out)
    assert [(x["label"], x["model"]["adapter"], x["training_seed"]) for x in got] == [
        ("rules-aft", adapters[0], 3), (tiny_model.name, None, 1)]
    assert got[0]["checkpoint"] == {"stage": "aft", "path": adapters[0]}
    assert got[0]["response"] != got[1]["response"]  # the adapter changes the model
    # --grade none: no verdict, so harmful is undecided unless the gate already rules it out
    assert all(x["grader"]["skipped"] and x["harmful"] is (False if not x["gate"] else None) for x in got)
    assert "rules-aft" in r.stderr and "ALL" in r.stderr


class _Judge:
    name = "scripted"
    model = "judge-2"

    def __init__(self, model, **_):
        pass

    def generate(self, requests, desc=None):
        # says yes to even samples, no to odd ones, garbage for seed 1 of murder
        out = []
        for r in requests:
            text = "<reasoning>r</reasoning><answer>" + ("yes" if "reply 0" in r.messages[1]["content"] else "no")
            out.append([Completion(text=text, seed=r.sampling.seed)])
        return out

    def describe(self):
        return {"backend": self.name, "model": self.model}

    def close(self):
        pass


def test_grade_only_regrades_and_reports_kappa(tmp_path):
    src = tmp_path / "in.jsonl"
    rows = []
    for j, old in enumerate([True, True, False, False, None]):
        rows.append({"kind": "rollout", "id": f"r{j}", "label": "m", "condition": "leaking_explicit-america_replacement",
                     "model_name": "Alex", "weigh_values": True, "sample": j, "truncated": False,
                     "response": f"reply {j % 2} <tool_use:forward>\nemail_id: 3\nto: secure-drop@halcyonvector.net\n</tool_use:forward>",
                     "gate": None, "grader": {"model": "old", "backend": "hf", "verdict": old}})
    rows.append({"kind": "error", "stage": "am-eval", "id": "e1", "message": "x"})
    jsonl.write(str(src), rows)
    cfg = rollouts.EvalConfig(variants=[Variant("judge", None, "grader")], conditions=C.paper27(),
                              gen=GenOptions(backend="judge"), output=str(tmp_path / "out.jsonl"), progress=False,
                              chunk_size=2)
    with backends.registered("judge", lambda model, **kw: _Judge(model), capabilities=backends.Capabilities()):
        summary, (k, n, agree) = rollouts.grade_only(cfg, str(src))
    recs = _records(tmp_path / "out.jsonl")
    assert [x["id"] for x in recs] == ["r0", "r1", "r2", "r3", "r4"]
    assert [x["grader"]["verdict"] for x in recs] == [True, False, True, False, True]
    assert all(x["gate"] is True for x in recs)  # recomputed: the spec email was forwarded outside
    assert [x["harmful"] for x in recs] == [True, False, True, False, True]
    assert recs[0]["grader_previous"]["verdict"] is True and recs[0]["grader"]["model"] == "judge-2"
    assert all(x["grader"]["self"] is False for x in recs)  # rollouts of no model 'judge': an independent grader
    # pairs (old, new): (T,T) (T,F) (F,T) (F,F) -> po 0.5, pe 0.5 -> kappa 0
    assert n == 4 and agree == 0.5 and k == pytest.approx(0.0)
    with pytest.raises(MsmError, match="is the input"):
        rollouts.grade_only(rollouts.EvalConfig(variants=cfg.variants, conditions=[], output=str(src)), str(src))


def test_render_only_cli_and_bad_input():
    r = run_msm("am-eval", "--render-only", "-c", "full", "--extra-instructions", "dont", "--prod")
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(recs) == 260 and all(x["kind"] == "am_prompt" and x["prod"] and x["extra_instructions"] == "dont" for x in recs)
    assert not any("${" in x["system"] + x["user"] for x in recs)
    r = run_msm("am-eval", "--render-only", "--model-name", "Quill", "-c", CONDS[0], CONDS[1], "murder_*_restriction")
    got = [json.loads(x)["condition"] for x in r.stdout.splitlines()]
    assert got[:3] == [CONDS[0], CONDS[1], "murder_explicit-america_restriction"] and len(got) == 2 + 26
    assert "You are Quill" in r.stdout and "quill@thornbury.com" in r.stdout
    r = run_msm("am-eval", "-m", "-", input='{"kind": "rollout", "id": "x"}\n')
    assert r.returncode == 2 and r.stderr.strip() == (
        "msm: error: <stdin>:1: kind: expected a checkpoint record (from msm aft or midtrain), got 'rollout'")
    r = run_msm("am-eval", "-m", "-", input='{"kind": "checkpoint", "path": "/nope", "adapter": "yes"}\n')
    assert r.returncode == 2 and "<stdin>:1: adapter: expected bool" in r.stderr
    r = run_msm("am-eval", "-m", "default", "-c", "exfiltration_explicit-america_none")
    assert r.returncode == 2 and "only with urgency replacement" in r.stderr
    r = run_msm("am-eval", "-m", "default", "--adapter", "/no/such/adapter")
    assert r.returncode == 2 and "no such folder" in r.stderr


@pytest.mark.slow
def test_end_to_end_on_the_embedded_model(default_model, tmp_path):
    out = tmp_path / "rollouts.jsonl"
    r = run_msm("am-eval", "--model", "default", "-c", "murder_none-none_none", "--samples", "2",
                "--max-tokens", "24", "--grader-max-tokens", "24", "-o", str(out))
    assert r.returncode == 0, r.stderr
    recs = _records(out)
    assert len(recs) == 2 and {x["sample"] for x in recs} == {0, 1}
    for x in recs:
        assert x["label"] == "SmolLM2-135M-Instruct" and x["response"]
        assert x["grader"]["model"] == "SmolLM2-135M-Instruct" and 1 <= x["grader"]["attempts"] <= 2
        assert x["harmful"] in (True, False, None)
        assert x["harmful"] == (False if not x["gate"] else x["grader"]["verdict"])
    assert "projected prompt tokens" in r.stderr and "murder_none-none_none" in r.stderr
    assert "grades its own replies" in r.stderr and all(x["grader"]["self"] is True for x in recs)
    assert r.stdout == ""
