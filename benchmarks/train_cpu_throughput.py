"""Real tokens trained per second on CPU: `msm midtrain` vs a plain transformers Trainer (issue 6: >= 1.5x).

Same model (the embedded SmolLM2-135M-Instruct), same LoRA (r64, alpha 128, all projections), same
optimizer settings, same documents (lognormal lengths, median ~200 tokens by default so that a
CPU gets through enough steps), about the same real tokens per step. The Trainer batches 8 documents and
pads each batch to its longest member (DataCollatorForLanguageModeling); ours packs best-fit into
rows of 1024 tokens and attends inside each document. Both run back to back in this process; the
first step of each is warm-up and is not timed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_docs(path: Path, tok, n: int, seed: int, median: int) -> None:
    rng = np.random.default_rng(seed)
    vocab = [w for w in (tok.convert_tokens_to_string([t]).strip() for t in list(tok.get_vocab())[:20000])
             if w.isalpha() and 2 < len(w) < 10][:5000]
    lens = np.clip(rng.lognormal(math.log(median), 0.8, n), 10, 1000).astype(int)
    with open(path, "w") as f:
        for i, k in enumerate(lens):
            f.write(json.dumps({"kind": "doc", "id": str(i), "text": " ".join(rng.choice(vocab, max(1, int(k / 1.3))))}) + "\n")


def ours(docs: Path, out: Path, steps: int, seq_len: int, batch_tokens: int) -> tuple[float, int]:
    from msmtools.train import stage
    from msmtools.train.config import MidtrainConfig

    cfg = MidtrainConfig(seq_len=seq_len, batch_tokens=batch_tokens, max_steps=steps + 1, seed=0)
    metrics = out.parent / "ours_metrics.jsonl"
    with contextlib.redirect_stdout(io.StringIO()):  # the checkpoint record is not part of this report
        stage.midtrain([str(docs)], str(out), "default", cfg, metrics=str(metrics))
    recs = [json.loads(x) for x in metrics.read_text().splitlines() if '"train_step"' in x][1:]
    toks = sum(r["tokens"] for r in recs)
    return toks / sum(r["step_time_s"] for r in recs), toks


def trainer(docs: Path, out: Path, steps: int, batch: int, seq_len: int) -> tuple[float, int, float]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (AutoModelForCausalLM, DataCollatorForLanguageModeling, Trainer, TrainerCallback,
                              TrainingArguments)

    from msmtools import models

    tok = models.load_tokenizer("default")
    texts = [json.loads(x)["text"] for x in docs.read_text().splitlines()]
    feats = [{"input_ids": (tok(t)["input_ids"] + [tok.eos_token_id])[:seq_len]} for t in texts]
    model = AutoModelForCausalLM.from_pretrained(models.resolve("default"), dtype=torch.float32, attn_implementation="sdpa")
    torch.manual_seed(0)
    model = get_peft_model(model, LoraConfig(r=64, lora_alpha=128, lora_dropout=0.0, task_type="CAUSAL_LM",
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    collate = DataCollatorForLanguageModeling(tok, mlm=False)
    state = {"t": [], "real": [], "slots": [], "t0": 0.0}

    def counting(features):
        b = collate(features)
        state["real"].append(int(b["attention_mask"].sum()))
        state["slots"].append(int(b["attention_mask"].numel()))
        return b

    class Timer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            state["t0"] = time.perf_counter()

        def on_step_end(self, *a, **k):
            state["t"].append(time.perf_counter() - state["t0"])

    args = TrainingArguments(output_dir=str(out), max_steps=steps + 1, per_device_train_batch_size=batch, learning_rate=1e-4,
                             lr_scheduler_type="cosine", warmup_steps=0.05, weight_decay=0.01, logging_steps=10**6,
                             save_strategy="no", report_to="none", use_cpu=True, dataloader_num_workers=0, seed=0,
                             remove_unused_columns=False)
    Trainer(model=model, args=args, train_dataset=feats, data_collator=counting, callbacks=[Timer()]).train()
    n = min(len(state["t"]), len(state["real"]))
    t, real = state["t"][1:n], state["real"][1:n]
    return sum(real) / sum(t), sum(real), 1 - sum(real) / sum(state["slots"][1:n])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8, help="timed steps per run (plus one warm-up)")
    ap.add_argument("--docs", type=int, default=400)
    ap.add_argument("--median", type=int, default=200, help="median document length in tokens")
    ap.add_argument("--batch", type=int, default=8, help="Trainer: documents per step")
    ap.add_argument("--seq-len", type=int, default=1024)
    args = ap.parse_args()
    import torch

    from msmtools import models

    tok = models.load_tokenizer("default")
    tmp = Path(tempfile.mkdtemp(prefix="msm-bench-"))
    try:
        docs = tmp / "docs.jsonl"
        make_docs(docs, tok, args.docs, 0, args.median)
        lens = [len(tok(json.loads(x)["text"])["input_ids"]) + 1 for x in docs.read_text().splitlines()]
        batch_tokens = int(round(np.mean(lens) * args.batch / args.seq_len)) * args.seq_len or args.seq_len
        print(f"{args.docs} docs, median {int(np.median(lens))} tokens; torch threads {torch.get_num_threads()}; "
              f"Trainer: {args.batch} docs/step padded to longest; ours: {batch_tokens} tokens/step packed", file=sys.stderr)
        t_tps, t_tok, t_pad = trainer(docs, tmp / "trainer", args.steps, args.batch, args.seq_len)
        o_tps, o_tok = ours(docs, tmp / "ours", args.steps, args.seq_len, batch_tokens)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    from msmtools.report import table

    print(table(["run", "real tokens/s", "real tokens timed", "padding"],
                [["transformers Trainer, pad to longest", f"{t_tps:.0f}", t_tok, f"{t_pad:.1%}"],
                 ["msm midtrain, best-fit packed", f"{o_tps:.0f}", o_tok, "<1%"]]))
    print(f"ratio: {o_tps / t_tps:.2f}x (target >= 1.5x)")


if __name__ == "__main__":
    main()
