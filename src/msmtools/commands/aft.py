"""`msm aft`: supervised fine-tuning on chats (assistant tokens only), by default continuing midtrain's adapter."""

from __future__ import annotations

from typing import Annotated

import typer

from . import _options as opt
from ..train import options as t
from ..train.config import AftConfig, help_for
from ..train.options import DEFAULTS as D


def aft(
    chats: Annotated[list[str], typer.Argument(help="Chat JSONL files (`messages`, optional `reasoning`; '-' = stdin).", metavar="CHATS...")],
    output: t.OutDir = None,
    from_: Annotated[str | None, typer.Option("--from", help="Continue this checkpoint: a record file, its folder, or '-' (stdin, e.g. piped from msm midtrain). Uses its base model and continues its LoRA adapter.", metavar="RECORD")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="'default' (embedded SmolLM2-135M-Instruct), a local HF folder, or a hub id (default: the --from checkpoint's base, else 'default').")] = None,
    reasoning: Annotated[str, typer.Option("--reasoning", help=help_for(AftConfig, "reasoning"))] = "keep",
    mix: Annotated[list[str] | None, typer.Option("--mix", help=help_for(AftConfig, "mix"), metavar="FILE:FRACTION")] = None,
    show_mask: Annotated[bool, typer.Option("--show-mask", help="Print the first chat as rendered, trained spans between ⟦ ⟧, and exit.")] = False,
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
    """Fine-tune on chat demonstrations with loss on assistant tokens only; print one checkpoint record.

    `msm midtrain docs.jsonl -o mid/ | msm aft chats.jsonl --from - -o aft/` continues the midtrained
    LoRA adapter on the same base model, as the paper does.
    """
    from ..train import stage

    cfg = AftConfig(seq_len=seq_len, batch_tokens=batch_tokens, micro_batch=micro_batch, lr=lr,
                    warmup_ratio=warmup_ratio, weight_decay=weight_decay, grad_clip=grad_clip, epochs=epochs,
                    max_steps=max_steps, train_tokens=train_tokens, full=full, lora_rank=lora_rank, lora_alpha=lora_alpha,
                    lora_dropout=lora_dropout, seed=seed, bf16=bf16, grad_checkpointing=grad_checkpointing,
                    compile=compile, attn=attn, reasoning=reasoning, mix=tuple(mix or ()))
    stage.aft(chats, output, model, cfg, from_=from_, resume=resume, restart_changed=restart_changed, save_every=save_every, metrics=metrics,
              label=label, show_mask=show_mask, fsdp=fsdp, trust_remote_code=trust_remote_code,
              allow_pickle=allow_pickle)


def register(app: typer.Typer) -> None:
    app.command("aft")(aft)
