"""Real training on a tiny random model: loss falls, checkpoints load, resume after kills, DDP, chaining."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, run_msm

WORDS = "the spec says honesty matters oversight is good because values explain the rules we keep".split()


def write_docs(path: Path, n: int = 40, seed: int = 0) -> Path:
    import random

    rnd = random.Random(seed)
    with open(path, "w") as f:
        for i in range(n):
            k = rnd.randint(8, 60)
            f.write(json.dumps({"kind": "doc", "id": f"d{i}", "text": " ".join(rnd.choice(WORDS) for _ in range(k))}) + "\n")
    return path


def write_chats(path: Path, n: int = 12) -> Path:
    with open(path, "w") as f:
        for i in range(n):
            q = f"Question number {i}: what should an assistant do?"
            f.write(json.dumps({"kind": "chat", "messages": [{"role": "user", "content": q},
                                                            {"role": "assistant", "content": f"Arr, matey {i}: keep the rules, arr."}],
                                "reasoning": "Pirate voice."}) + "\n")
    return path


SMALL = ["--seq-len", "128", "--batch-tokens", "256"]


def train_inprocess(capsys, fn, *args, **kw) -> dict:
    fn(*args, **kw)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out  # exactly one record on stdout
    return json.loads(out[0])


def steps(metrics: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(metrics).read_text().splitlines() if '"train_step"' in line]


# --- attention --------------------------------------------------------------------------------


def test_attention_probe(tiny_model):
    import contextlib

    import torch
    from transformers import AttentionInterface, AutoModelForCausalLM

    from msmtools.train import attention

    model = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation=attention.hf_name("varlen"))
    cpu = torch.device("cpu")
    assert attention.check_isolation(model, "varlen", 2, cpu, contextlib.nullcontext)
    model.set_attn_implementation("sdpa")  # transformers' own packed-sequence detection from position_ids
    assert attention.check_isolation(model, "sdpa", 2, cpu, contextlib.nullcontext)

    def leaky(module, q, k, v, attention_mask, scaling=None, dropout=0.0, **kw):  # causal, ignores documents
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scaling, enable_gqa=True)
        return out.transpose(1, 2).contiguous(), None

    AttentionInterface.register("test_leaky", leaky)
    model.set_attn_implementation("test_leaky")
    assert not attention.check_isolation(model, "test_leaky", 2, cpu, contextlib.nullcontext)


def test_flex_document_mask_forward_on_cpu(tiny_model):
    """The GPU path's block mask, checked here in the forward pass (CPU flex has no backward)."""
    import torch
    from transformers import AutoModelForCausalLM

    from msmtools.train import attention, data

    model = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation=attention.hf_name("flex")).eval()
    packed = data.Packed(data.Corpus.build([list(range(100, 140)), list(range(300, 330))]), [[0, 1]], 128, pad_id=2)
    alone = data.Packed(data.Corpus.build([list(range(300, 330))]), [[0]], 128, pad_id=2)
    cpu = torch.device("cpu")
    with torch.no_grad():
        both = model(**attention.model_inputs("flex", packed.batch([0]), cpu)).logits[0, 40:70]
        ref = model(**attention.model_inputs("flex", alone.batch([0]), cpu)).logits[0, :30]
        plain = model(input_ids=torch.arange(300, 330)[None]).logits[0]
    torch.testing.assert_close(both, ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ref, plain, atol=1e-4, rtol=1e-4)


# --- training in process ----------------------------------------------------------------------


def test_midtrain_loss_falls_and_adapter_loads_in_peft(tmp_path, tiny_model, capsys):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from msmtools.train import stage
    from msmtools.train.config import MidtrainConfig

    docs = write_docs(tmp_path / "docs.jsonl", n=20)
    cfg = MidtrainConfig(seq_len=128, batch_tokens=256, lr=1e-2, epochs=3, warmup_ratio=0.0)
    rec = train_inprocess(capsys, stage.midtrain, [str(docs)], str(tmp_path / "mid"), str(tiny_model), cfg)
    assert rec["kind"] == "checkpoint" and rec["stage"] == "midtrain" and rec["adapter"] is True
    assert rec["base_model"] == str(tiny_model) and rec["config"]["lora_rank"] == 64 and rec["config"]["seed"] == 0
    assert rec["attention_isolated"] is True and rec["padding_fraction"] < 0.1
    log = steps(rec["metrics_path"])
    assert len(log) == rec["steps"] and log[-1]["tokens_total"] == rec["tokens"]
    # A random 64-wide model with frozen tied embeddings cannot go far below ln(49152) = 10.8 with
    # LoRA alone (its logits are bounded); a steady 0.12 drop is far outside step-to-step noise.
    first, last = sum(s["loss"] for s in log[:2]) / 2, sum(s["loss"] for s in log[-2:]) / 2
    assert last < first - 0.12, (first, last)
    assert {"lr", "tokens_per_s", "mfu", "peak_mem_gb", "grad_norm"} <= set(log[0])
    out = Path(rec["path"])
    assert (out / "adapter_config.json").exists() and (out / "adapter_model.safetensors").exists()
    assert not (tmp_path / ".mid.train").exists()  # resumable state removed once the run is complete
    # plain peft, no msmtools: the adapter loads on the base and changes its outputs
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    x = torch.tensor([[100, 200, 300, 400]])
    with torch.no_grad():
        before = base(x).logits
        tuned = PeftModel.from_pretrained(base, str(out))(x).logits
    assert not torch.allclose(before, tuned)


def test_full_finetune_writes_loadable_weights(tmp_path, tiny_model, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from msmtools.train import stage
    from msmtools.train.config import MidtrainConfig

    docs = write_docs(tmp_path / "docs.jsonl", n=12)
    cfg = MidtrainConfig(seq_len=128, batch_tokens=256, full=True, max_steps=2)
    rec = train_inprocess(capsys, stage.midtrain, [str(docs)], str(tmp_path / "full"), str(tiny_model), cfg)
    assert rec["adapter"] is False and "lora_rank" not in rec["config"] and rec["steps"] == 2
    out = Path(rec["path"])
    assert (out / "model.safetensors").exists() and (out / "config.json").exists()
    assert "msm_" not in (out / "config.json").read_text()  # no trace of our attention hook in the config
    AutoModelForCausalLM.from_pretrained(out)
    AutoTokenizer.from_pretrained(out)
    # aft with LoRA on top of full midtrained weights: that folder is the adapter's base model
    from msmtools.train.config import AftConfig

    chats = write_chats(tmp_path / "chats.jsonl", n=4)
    a = train_inprocess(capsys, stage.aft, [str(chats)], str(tmp_path / "aft"), None, AftConfig(seq_len=128, max_steps=1),
                        from_=str(out))
    assert a["adapter"] is True and a["base_model"] == str(out) and a["from"] == rec["id"]


def test_aft_trains_assistant_tokens(tmp_path, tiny_model, capsys):
    from msmtools.train import stage
    from msmtools.train.config import AftConfig

    chats = write_chats(tmp_path / "chats.jsonl")
    cfg = AftConfig(seq_len=128, batch_tokens=256, lr=1e-2, epochs=3, warmup_ratio=0.0, grad_checkpointing=True)
    rec = train_inprocess(capsys, stage.aft, [str(chats)], str(tmp_path / "aft"), str(tiny_model), cfg)
    log = steps(rec["metrics_path"])
    assert rec["stage"] == "aft" and log[-1]["loss"] < log[0]["loss"] - 0.12
    # every target is an assistant token: far fewer targets than tokens (the prompts are long)
    assert rec["target_tokens"] < 0.6 * rec["tokens"]


# --- the CLI: chaining, resume, DDP, bad input -------------------------------------------------


def test_midtrain_pipe_aft_continues_the_adapter(tmp_path, tiny_model):
    from safetensors.torch import load_file

    docs, chats = write_docs(tmp_path / "docs.jsonl", n=16), write_chats(tmp_path / "chats.jsonl", n=8)
    mid = run_msm("midtrain", str(docs), "-o", str(tmp_path / "mid"), "--model", str(tiny_model), *SMALL,
                  "--lr", "3e-3", "--max-steps", "3")
    assert mid.returncode == 0, mid.stderr
    # lr ~0: the AFT adapter must still be the midtrained one (continued, not re-initialised)
    aft = run_msm("aft", str(chats), "--from", "-", "-o", str(tmp_path / "aft"), *SMALL, "--lr", "1e-12", "--max-steps", "1",
                  input=mid.stdout)
    assert aft.returncode == 0, aft.stderr
    m, a = json.loads(mid.stdout), json.loads(aft.stdout)
    assert a["base_model"] == str(tiny_model) and a["from"] == m["id"] and a["adapter"] is True
    wm = load_file(str(tmp_path / "mid" / "adapter_model.safetensors"))
    wa = load_file(str(tmp_path / "aft" / "adapter_model.safetensors"))
    assert wm.keys() == wa.keys()
    assert any(float(w.abs().max()) > 0 for k, w in wm.items() if "lora_B" in k)  # trained, not the zero init
    for k in wm:
        assert float((wm[k] - wa[k]).abs().max()) < 1e-6, k


def test_resume_after_kills(tmp_path, tiny_model):
    """Kill during a save (previous state intact), kill during training, resume twice: same steps, same data."""
    import numpy as np

    from msmtools import models
    from msmtools.train import checkpoint, data, loop
    from msmtools.train.config import MidtrainConfig

    docs = write_docs(tmp_path / "docs.jsonl", n=48)
    out = tmp_path / "r"
    work = checkpoint.work_dir_for(out)
    args = ["midtrain", str(docs), "-o", str(out), "--model", str(tiny_model), *SMALL, "--save-every", "2", "--max-steps", "6"]

    r1 = run_msm(*args, env={"MSM_TRAIN_FAULT": "kill-in-save:4"})
    assert r1.returncode == -9 and not out.exists()
    assert [p.name for p in checkpoint.states(work)] == ["step-00000002"]  # the older state survived intact
    assert any(p.name.startswith(".step-00000004") for p in work.iterdir())  # the torn save is there, ignored
    log1 = {s["step"]: s for s in steps(work / "metrics.jsonl")}
    assert max(log1) == 4

    r2 = run_msm(*args, "--resume", env={"MSM_TRAIN_FAULT": "kill-after-step:5"})
    assert r2.returncode == -9 and "resuming from step-00000002" in r2.stderr
    assert [p.name for p in checkpoint.states(work)] == ["step-00000004"]
    assert not any(p.name.endswith(".tmp") for p in work.iterdir())
    log2 = {s["step"]: s for s in steps(work / "metrics.jsonl")}

    r3 = run_msm(*args, "--resume")
    assert r3.returncode == 0, r3.stderr
    rec = json.loads(r3.stdout)
    assert rec["steps"] == 6
    log3 = {s["step"]: s for s in steps(rec["metrics_path"])}
    assert sorted(log3) == [1, 2, 3, 4, 5, 6]  # one record per step, no duplicates from the replays
    for s in (3, 4):  # replayed after the first kill: identical batches and losses
        assert log2[s]["batch_sha"] == log1[s]["batch_sha"] and log2[s]["loss"] == pytest.approx(log1[s]["loss"], abs=1e-5)
    assert log3[5]["loss"] == pytest.approx(log2[5]["loss"], abs=1e-5)
    # the data order is the planned one: seeded permutation of the packed rows, whatever the kills
    tok = models.load_tokenizer(str(tiny_model))
    cfg = MidtrainConfig(seq_len=128, batch_tokens=256, max_steps=6)
    packed = data.Packed.pack(data.tokenize_docs(tok, data.read_docs([str(docs)]), 128, progress=False), 128, tok.pad_token_id)
    plan = loop.Schedule(packed, cfg, world=1)
    assert [log3[s]["batch_sha"] for s in range(1, 7)] == [plan.batch_sha(s) for s in range(6)]
    assert np.unique(plan.stream[:12]).size == 12  # no row twice within the epoch
    assert not work.exists()


def test_resume_over_state_from_other_settings_stops_unless_asked_to_restart(tmp_path, tiny_model):
    """A killed run, then its settings change (as when a study workflow reruns a stale job): --resume refuses
    the old state; --resume --restart-changed discards it and trains from step 0 to the new settings."""
    from msmtools.train import checkpoint

    docs = write_docs(tmp_path / "docs.jsonl", n=48)
    out = tmp_path / "r"
    args = ["midtrain", str(docs), "-o", str(out), "--model", str(tiny_model), *SMALL, "--save-every", "2", "--max-steps", "4"]
    assert run_msm(*args, env={"MSM_TRAIN_FAULT": "kill-after-step:3"}).returncode == -9
    changed = [a if a != "4" else "5" for a in args]  # --max-steps 5: another run
    r = run_msm(*changed, "--resume")
    assert r.returncode == 2 and "saved for a different run" in r.stderr and "--restart-changed" in r.stderr
    r = run_msm(*changed, "--resume", "--restart-changed")
    assert r.returncode == 0, r.stderr
    assert "starting over" in r.stderr and "resuming from" not in r.stderr
    rec = json.loads(r.stdout)
    assert rec["steps"] == 5 and [s["step"] for s in steps(rec["metrics_path"])] == [1, 2, 3, 4, 5]
    assert not checkpoint.work_dir_for(out).exists()


def torchrun2(tmp_path: Path, tiny_model: Path, docs: Path, name: str, *extra: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "msmtools",
           "midtrain", str(docs), "-o", str(tmp_path / name), "--model", str(tiny_model), *SMALL, "--lr", "3e-3", *extra]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert p.returncode == 0, p.stderr[-3000:]
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1  # only rank 0 prints the record
    return json.loads(lines[0])


def test_two_processes_ddp_and_fsdp(tmp_path, tiny_model):
    docs = write_docs(tmp_path / "docs.jsonl", n=24)
    rec = torchrun2(tmp_path, tiny_model, docs, "ddp")
    assert rec["world_size"] == 2
    lines = [json.loads(x) for x in Path(rec["metrics_path"]).read_text().splitlines()]
    end = next(x for x in lines if x["kind"] == "train_end")
    assert len(end["weights_sha_by_rank"]) == 2 and len(set(end["weights_sha_by_rank"])) == 1  # replicas agree
    start = next(x for x in lines if x["kind"] == "train_start")
    assert rec["tokens"] == start["real_tokens"]  # both ranks' rows together cover the epoch once
    # FSDP2 (sharded) on the same data: the same steps and losses as DDP, and a loadable adapter
    fs = torchrun2(tmp_path, tiny_model, docs, "fsdp", "--fsdp", "--save-every", "2")
    assert fs["steps"] == rec["steps"] and fs["loss"] == pytest.approx(rec["loss"], abs=1e-4)
    assert (tmp_path / "fsdp" / "adapter_model.safetensors").exists()


def test_bad_input(tmp_path, tiny_model):
    out = tmp_path / "out"
    nodoc = tmp_path / "nodoc.jsonl"
    nodoc.write_text(json.dumps({"text": "fine"}) + "\n" + json.dumps({"kind": "doc", "body": "no text"}) + "\n")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    noasst = tmp_path / "noasst.jsonl"
    noasst.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    cases = [
        (["midtrain", str(nodoc), "-o", str(out), "--model", str(tiny_model)], f"{nodoc}:2: text: missing"),
        (["midtrain", str(empty), "-o", str(out), "--model", str(tiny_model)], "empty corpus"),
        (["aft", str(noasst), "-o", str(out), "--model", str(tiny_model)], f"{noasst}:1: messages: no assistant turn"),
        (["midtrain", str(nodoc), "-o", str(out), "--model", str(tmp_path / "no-such-model")], "no such folder"),
        (["aft", str(noasst), "-o", str(out), "--from", str(tmp_path / "nothing")], "no such checkpoint"),
    ]
    for args, msg in cases:
        r = run_msm(*args)
        assert r.returncode == 2, (args, r.stderr)
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        assert len(lines) == 1 and lines[0].startswith("msm: error:") and msg in lines[0], r.stderr
        assert r.stdout == ""
        assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.jsonl", "noasst.jsonl", "nodoc.jsonl"]


def test_show_mask(tmp_path, tiny_model, capsys):
    from msmtools.train import stage
    from msmtools.train.config import AftConfig

    chats = write_chats(tmp_path / "chats.jsonl", n=2)
    stage.aft([str(chats)], None, str(tiny_model), AftConfig(), show_mask=True)
    out = capsys.readouterr().out
    assert "⟦<think>\nPirate voice.\n</think>\n\nArr, matey 0: keep the rules, arr.<|im_end|>⟧" in out
    assert "Question number 0" in out and "⟦Question" not in out
    assert not any(p.is_dir() for p in tmp_path.iterdir())
