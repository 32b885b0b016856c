"""`msm midtrain` (and `msm aft`) vs TRL's SFTTrainer with packing_strategy="wrapped", back to back on one GPU.

Issue 6 goal: >= 1.8x TRL wrapped in real tokens/s (about 110k tokens/s with LoRA r64, MFU >= 30% on
an H100), with attention kept inside each document. Same set-up as the anchor
(../shared/bench/trl_anchor.py): a model with Qwen2.5-0.5B shapes, random init, the embedded model's
vocabulary; 1,500 documents with lognormal lengths (median ~600 tokens); 16,384 tokens per optimizer
step; bf16; LoRA r64 on all projections (and full fine-tuning with --full).

Ours runs through the real CLI (`python -m msmtools midtrain ... --compile`), rows of 8,192 tokens, two
rows per step; then `msm aft --from` continues its adapter on synthetic chats. TRL runs in a fresh
process per run (8 x 2,048-token wrapped blocks per step; its blocks let attention cross documents).
Timing: real (non-padding) tokens over the wall time of the steps after `--warmup`; MFU counted as in
msmtools/train/flops.py (6N full, 4N + 6N_adapter LoRA, plus the attention of the rows trained) over
the card's dense bf16 peak; `mfu_6n` (6N over every parameter, the anchor's count) is kept beside it.
`--shape 7b` builds Qwen2.5-7B shapes instead (use --grad-checkpointing at 8,192-token rows).

    PYTHONPATH=src python benchmarks/train_gpu.py --tokenizer DIR            # on the GPU machine
    PYTHONPATH=src python benchmarks/train_gpu.py --tokenizer DIR --tiny     # CPU smoke test
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def qwen_config(vocab: int, tiny: bool, shape: str = "0.5b"):
    from transformers import Qwen2Config

    if tiny:
        return Qwen2Config(vocab_size=vocab, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, intermediate_size=128, tie_word_embeddings=True,
                           max_position_embeddings=32768)
    if shape == "7b":  # Qwen2.5-7B shapes (the embedded vocabulary)
        return Qwen2Config(vocab_size=vocab, hidden_size=3584, num_hidden_layers=28, num_attention_heads=28,
                           num_key_value_heads=4, intermediate_size=18944, tie_word_embeddings=False,
                           max_position_embeddings=32768)
    return Qwen2Config(vocab_size=vocab, hidden_size=896, num_hidden_layers=24, num_attention_heads=14,
                       num_key_value_heads=2, intermediate_size=4864, tie_word_embeddings=True,
                       max_position_embeddings=32768)


def build_inputs(args: argparse.Namespace) -> None:
    """Model folder (random init, bf16 safetensors + tokenizer), documents and chats."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if not any((out / "model").glob("*.safetensors")):
        cfg = qwen_config(len(tok), args.tiny, args.shape)
        cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id = tok.bos_token_id, tok.eos_token_id, tok.pad_token_id
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
        model.save_pretrained(out / "model", safe_serialization=True)
        tok.save_pretrained(out / "model")
    rng = np.random.default_rng(0)
    words = [w for w in (tok.convert_tokens_to_string([t]).strip() for t in list(tok.get_vocab())[:20000])
             if w.isalpha() and 2 < len(w) < 10][:5000]
    lens = np.clip(rng.lognormal(math.log(600), 0.8, args.docs), 50, 4000).astype(int)
    with open(out / "docs.jsonl", "w") as f:
        for i, n in enumerate(lens):
            text = " ".join(rng.choice(words, max(1, int(n / 1.3))))
            f.write(json.dumps({"kind": "doc", "id": f"d{i}", "text": text[:600] if args.tiny else text}) + "\n")
    with open(out / "chats.jsonl", "w") as f:
        for i in range(args.chats):
            q = " ".join(rng.choice(words, int(rng.integers(10, 40))))
            a = " ".join(rng.choice(words, int(rng.integers(40, 300))))
            f.write(json.dumps({"kind": "chat", "messages": [{"role": "user", "content": q + "?"},
                                                            {"role": "assistant", "content": a + "."}],
                                "reasoning": " ".join(rng.choice(words, 30))}) + "\n")


def msm(args: argparse.Namespace, *cli: str, timeout: float) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "msmtools", *cli], capture_output=True, text=True, env=env,
                       timeout=timeout, cwd=REPO)
    wall = time.perf_counter() - t0
    tail = "\n".join(x for x in p.stderr.splitlines() if x.startswith(("msm", "step")))
    log(tail[-3000:])
    if p.returncode != 0:
        raise RuntimeError(f"msm {cli[0]} failed (exit {p.returncode}): {p.stderr[-2000:]}")
    rec = json.loads(p.stdout.strip().splitlines()[-1])
    rec["_wall_s"] = wall
    return rec


def summarize(name: str, metrics: Path, warmup: int, wall: float) -> dict:
    recs = [json.loads(x) for x in metrics.read_text().splitlines()]
    start = next(r for r in recs if r["kind"] == "train_start")
    steps = [r for r in recs if r["kind"] == "train_step"]
    timed = steps[warmup:] or steps
    tps = sum(r["tokens"] for r in timed) / sum(r["step_time_s"] for r in timed)
    peak = start.get("peak_flops")
    fpt = (start.get("flops_per_token") or {}).get("total")
    return {"run": name, "tokens_per_s": tps, "mfu": (fpt * tps / peak) if peak and fpt else None,
            "mfu_6n": (6 * start["params"] * tps / peak) if peak else None, "flops_per_token": start.get("flops_per_token"),
            "params": start["params"], "trainable": start["trainable"], "steps_timed": len(timed),
            "padding_fraction": start["padding_fraction"], "attention": start["attention"],
            "attention_isolated": start["attention_isolated"], "peak_mem_gb": max(r["peak_mem_gb"] for r in steps),
            "device": start["device"], "wall_s": round(wall, 1), "final_loss": steps[-1]["loss"]}


def run_ours(args: argparse.Namespace, full: bool) -> list[dict]:
    out = Path(args.out)
    tag = "full" if full else "lora"
    common = ["--seq-len", str(args.seq_len), "--batch-tokens", str(args.batch_tokens),
              "--micro-batch", str(args.batch_tokens // args.seq_len), "--save-every", "0"]
    if not args.tiny:
        common += ["--compile", "--bf16"]
    if args.grad_checkpointing:
        common += ["--grad-checkpointing"]
    mid_dir, aft_dir = out / f"mid_{tag}", out / f"aft_{tag}"
    for d in (mid_dir, aft_dir):
        if d.exists():
            import shutil

            shutil.rmtree(d)
    res = []
    rec = msm(args, "midtrain", str(out / "docs.jsonl"), "-o", str(mid_dir), "--model", str(out / "model"), *common,
              "--max-steps", str(args.warmup + args.steps), "--metrics", str(out / f"ours_mid_{tag}.jsonl"),
              *(["--full"] if full else []), timeout=args.timeout)
    res.append(summarize(f"msm midtrain ({tag})", out / f"ours_mid_{tag}.jsonl", args.warmup, rec["_wall_s"]))
    if args.aft:
        rec = msm(args, "aft", str(out / "chats.jsonl"), "--from", str(mid_dir), "-o", str(aft_dir), *common,
                  "--metrics", str(out / f"ours_aft_{tag}.jsonl"), *(["--full"] if full else []), timeout=args.timeout)
        s = summarize(f"msm aft --from midtrain ({tag})", out / f"ours_aft_{tag}.jsonl", 1, rec["_wall_s"])
        s["continued_from_midtrain"] = bool(rec.get("from")) and rec["adapter"] == (not full)
        res.append(s)
    return res


# --- TRL (runs in its own process) --------------------------------------------------------------


def trl_worker(args: argparse.Namespace, full: bool) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

    import datasets.fingerprint as fp
    from datasets import Dataset

    _orig = fp.Hasher.hash

    def _hash(value):  # fingerprinting can fail on mismatched dill/pyarrow builds; the cache is not needed here
        try:
            return _orig(value)
        except Exception:
            return os.urandom(8).hex()

    fp.Hasher.hash = staticmethod(_hash)
    import trl
    from trl import SFTConfig, SFTTrainer

    cuda = torch.cuda.is_available()
    out = Path(args.out)
    tok = AutoTokenizer.from_pretrained(out / "model")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(out / "model", dtype=torch.bfloat16 if cuda else torch.float32,
                                                 attn_implementation="sdpa").to("cuda" if cuda else "cpu")
    docs = [json.loads(x)["text"] for x in (out / "docs.jsonl").read_text().splitlines()]
    bs = args.batch_tokens // args.trl_block
    cfg = SFTConfig(output_dir=str(out / "trl_out"), max_steps=args.warmup + args.steps, per_device_train_batch_size=bs,
                    learning_rate=1e-4, lr_scheduler_type="cosine", warmup_steps=1, weight_decay=0.01, bf16=cuda,
                    logging_steps=10**6, save_strategy="no", report_to="none", packing=True,
                    packing_strategy="wrapped", max_length=args.trl_block, dataset_text_field="text",
                    gradient_checkpointing=False, use_cpu=not cuda, dataloader_num_workers=0, seed=0)
    peft_cfg = None
    if not full:
        from peft import LoraConfig

        peft_cfg = LoraConfig(r=64, lora_alpha=128, lora_dropout=0.0, task_type="CAUSAL_LM", target_modules=LORA_TARGETS)
    state = {"t": [], "real": [], "t0": 0.0}

    def sync():
        if cuda:
            torch.cuda.synchronize()

    class Timer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            sync()
            state["t0"] = time.perf_counter()

        def on_step_end(self, *a, **k):
            sync()
            state["t"].append(time.perf_counter() - state["t0"])

    tr = SFTTrainer(model=model, args=cfg, train_dataset=Dataset.from_dict({"text": docs}), processing_class=tok,
                    peft_config=peft_cfg, callbacks=[Timer()])
    collate = tr.data_collator

    def counting(features):
        b = collate(features)
        state["real"].append(int((b["labels"] != -100).sum()))
        return b

    tr.data_collator = counting
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    tr.train()
    n = min(len(state["t"]), len(state["real"]))
    t, real = state["t"][args.warmup:n], state["real"][args.warmup:n]
    tps = sum(real) / sum(t)
    params = sum(p.numel() for p in tr.model.parameters())
    from msmtools.train import flops
    from msmtools.train.loop import peak_flops

    peak = peak_flops(torch.device("cuda")) if cuda else None
    frozen, trainable = flops.matmul_params(tr.model)
    fpt = flops.flops_per_token(tr.model.config, frozen, trainable, full=full, doc_lengths=np.array([args.trl_block]),
                                isolated=False, seq_len=args.trl_block)["total"]  # wrapped blocks: no document masks
    return {"run": f"TRL SFTTrainer wrapped ({'full' if full else 'lora'})", "tokens_per_s": tps,
            "mfu": fpt * tps / peak if peak else None, "mfu_6n": 6 * params * tps / peak if peak else None,
            "params": params, "steps_timed": len(t),
            "attention_isolated": False, "trl": trl.__version__,
            "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30 if cuda else None}


def run_trl(args: argparse.Namespace, full: bool) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--trl-worker", "full" if full else "lora", "--shape", args.shape,
           "--out", args.out, "--tokenizer", args.tokenizer, "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--batch-tokens", str(args.batch_tokens), "--trl-block", str(args.trl_block)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, cwd=REPO)
    if p.returncode != 0:
        raise RuntimeError(f"TRL run failed (exit {p.returncode}): {p.stderr[-2500:]}")
    rec = json.loads(p.stdout.strip().splitlines()[-1])
    rec["wall_s"] = round(time.perf_counter() - t0, 1)
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokenizer", required=True, help="folder with the embedded model's tokenizer files")
    ap.add_argument("--out", default="/tmp/msm-gpu-check", help="work folder (model, data, metrics, summary.json)")
    ap.add_argument("--tiny", action="store_true", help="tiny model and data: a smoke test that runs on CPU")
    ap.add_argument("--full", action="store_true", help="also compare full fine-tuning")
    ap.add_argument("--no-aft", dest="aft", action="store_false", help="skip the aft stage")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per run")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps per run (compilation happens here)")
    ap.add_argument("--docs", type=int, default=1500)
    ap.add_argument("--chats", type=int, default=400)
    ap.add_argument("--seq-len", type=int, default=8192, help="our row length")
    ap.add_argument("--batch-tokens", type=int, default=16384)
    ap.add_argument("--trl-block", type=int, default=2048, help="TRL wrapped block length (anchor: 2048)")
    ap.add_argument("--budget-s", type=float, default=420, help="skip the full fine-tuning pair past this much time")
    ap.add_argument("--timeout", type=float, default=400, help="per-run timeout, seconds")
    ap.add_argument("--shape", choices=["0.5b", "7b"], default="0.5b", help="model shapes (random init): Qwen2.5-0.5B or -7B")
    ap.add_argument("--grad-checkpointing", action="store_true", help="recompute activations (needed at 7B x 8192)")
    ap.add_argument("--no-trl", dest="trl", action="store_false", help="skip the TRL baseline")
    ap.add_argument("--trl-worker", choices=["lora", "full"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.tiny:
        args.docs, args.chats, args.seq_len, args.batch_tokens, args.trl_block = 60, 24, 512, 1024, 256
        args.steps, args.warmup = 3, 1
    if args.trl_worker:
        print(json.dumps(trl_worker(args, args.trl_worker == "full")), flush=True)
        return
    t_start = time.perf_counter()
    build_inputs(args)
    log(f"inputs ready in {time.perf_counter() - t_start:.0f} s")
    results, pairs = [], [False] + ([True] if args.full else [])
    missing = [m for m in ("trl", "datasets") if importlib.util.find_spec(m) is None]
    if args.trl and missing:  # the CPU smoke test runs without them; on the card, --wheels brings them
        log(f"skipping the TRL baseline: {', '.join(missing)} not installed (see --wheels in gpu_check.sh)")
        args.trl = False
    for full in pairs:
        if full and time.perf_counter() - t_start > args.budget_s - 180:
            log("skipping the full fine-tuning pair: not enough time left in the budget")
            break
        for fn in (run_ours, run_trl) if args.trl else (run_ours,):
            try:
                r = fn(args, full)
                results.extend(r if isinstance(r, list) else [r])
            except Exception as e:  # report; without our figures the baseline alone tells nothing
                results.append({"run": f"{fn.__name__} ({'full' if full else 'lora'})", "error": str(e)[-1500:]})
                log(f"ERROR {fn.__name__}: {str(e)[-1500:]}")
                if fn is run_ours:
                    break
    from msmtools.report import table

    rows = []
    for r in results:
        if "error" in r:
            rows.append([r["run"], "error", "", "", "", ""])
            continue
        kind = "full" if "(full)" in r["run"] else "lora"
        base = next((b for b in results if b.get("run") == f"TRL SFTTrainer wrapped ({kind})" and "error" not in b), None)
        ratio = f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}x" if base and r["run"].startswith("msm midtrain") else ""
        r["ratio_vs_trl_wrapped"] = ratio or None
        rows.append([r["run"], f"{r['tokens_per_s']:,.0f}", "" if r.get("mfu") is None else f"{r['mfu']:.1%}", ratio,
                     "yes" if r.get("attention_isolated") else "no",
                     "" if r.get("peak_mem_gb") is None else f"{r['peak_mem_gb']:.1f}"])
    device = next((r.get("device") for r in results if r.get("device")), "?")
    print(f"device: {device}; {args.docs} docs, {args.batch_tokens} tokens/step, {args.steps} timed steps after "
          f"{args.warmup} warm-up; total {time.perf_counter() - t_start:.0f} s")
    print(table(["run", "real tokens/s", "MFU", "vs TRL wrapped", "docs kept apart", "peak GB"], rows))
    print("MFU: FLOPs per token (6N full; 4N + 6N_adapter for LoRA; plus attention of the document-masked rows) x "
          "tokens/s / the card's dense bf16 peak (msmtools/train/flops.py); summary.json also has mfu_6n, the old count")
    (Path(args.out) / "summary.json").write_text(json.dumps({"device": device, "results": results}, indent=1))
    if any("error" in r for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
