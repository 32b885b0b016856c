"""`msm midtrain`: continued pretraining on a document corpus -> LoRA adapter (or full weights) + record."""

from __future__ import annotations

from typing import Annotated

import typer

from . import _options as opt
from ..train import options as t
from ..train.options import DEFAULTS as D


def midtrain(
    docs: Annotated[list[str], typer.Argument(help="Document JSONL files (`text` field; '-' = stdin).", metavar="DOCS...")],
    output: t.OutDir = None,
    model: opt.Model = "default",
    train_tokens: t.TrainTokens = None,
    max_steps: t.MaxSteps = None,
    batch_tokens: t.BatchTokens = D["batch_tokens"],
    seq_len: t.SeqLen = D["seq_len"],
    micro_batch: t.MicroBatch = D["micro_batch"],
    lr: t.Lr = D["lr"],
    warmup_ratio: t.WarmupRatio = D["warmup_ratio"],
    weight_decay: t.WeightDecay = D["weight_decay"],
    grad_clip: t.GradClip = D["grad_clip"],
    epochs: t.Epochs = D["epochs"],
    full: t.Full = False,
    lora_rank: t.LoraRank = D["lora_rank"],
    lora_alpha: t.LoraAlpha = D["lora_alpha"],
    lora_dropout: t.LoraDropout = D["lora_dropout"],
    seed: t.Seed = D["seed"],
    bf16: t.Bf16 = None,
    grad_checkpointing: t.GradCkpt = False,
    compile: t.Compile = False,
    attn: t.Attn = D["attn"],
    save_every: t.SaveEvery = t.SAVE_EVERY,
    resume: t.Resume = False,
    restart_changed: t.RestartChanged = False,
    metrics: t.Metrics = None,
    label: t.Label = None,
    fsdp: t.Fsdp = False,
    trust_remote_code: opt.TrustRemoteCode = False,
    allow_pickle: opt.AllowPickle = False,
) -> None:
    """Midtrain a model on documents (LoRA r64 on all projections by default); print one checkpoint record.

    Documents are tokenized with EOS after each, packed best-fit into rows of --seq-len tokens with
    positions restarting per document and attention kept inside each document.
    """
    from ..errors import MsmError
    from ..train import stage
    from ..train.config import MidtrainConfig

    if output is None:
        raise MsmError("-o OUTDIR is required (the checkpoint folder to write)")
    cfg = MidtrainConfig(seq_len=seq_len, batch_tokens=batch_tokens, micro_batch=micro_batch, lr=lr,
                         warmup_ratio=warmup_ratio, weight_decay=weight_decay, grad_clip=grad_clip, epochs=epochs,
                         max_steps=max_steps, train_tokens=train_tokens, full=full, lora_rank=lora_rank,
                         lora_alpha=lora_alpha, lora_dropout=lora_dropout, seed=seed, bf16=bf16,
                         grad_checkpointing=grad_checkpointing, compile=compile, attn=attn)
    stage.midtrain(docs, output, model, cfg, resume=resume, restart_changed=restart_changed, save_every=save_every, metrics=metrics, label=label,
                   fsdp=fsdp, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)


def register(app: typer.Typer) -> None:
    app.command("midtrain")(midtrain)
