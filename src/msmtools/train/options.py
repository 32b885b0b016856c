"""CLI options shared by `msm midtrain` and `msm aft`; help texts and defaults come from config.py.

Stdlib and typer only: imported when the CLI starts.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .config import TrainConfig, default, help_for


def _h(name: str) -> str:
    return help_for(TrainConfig, name)


def _d(name: str):
    return default(TrainConfig, name)


OutDir = Annotated[str | None, typer.Option("-o", "--output", help="Checkpoint folder to write (must not exist yet).", metavar="OUTDIR")]
TrainTokens = Annotated[int | None, typer.Option("--train-tokens", help=_h("train_tokens"))]
MaxSteps = Annotated[int | None, typer.Option("--max-steps", help=_h("max_steps"))]
BatchTokens = Annotated[int, typer.Option("--batch-tokens", help=_h("batch_tokens"))]
SeqLen = Annotated[int, typer.Option("--seq-len", help=_h("seq_len"))]
MicroBatch = Annotated[int, typer.Option("--micro-batch", help=_h("micro_batch"))]
Lr = Annotated[float, typer.Option("--lr", help=_h("lr"))]
WarmupRatio = Annotated[float, typer.Option("--warmup-ratio", help=_h("warmup_ratio"))]
WeightDecay = Annotated[float, typer.Option("--weight-decay", help=_h("weight_decay"))]
GradClip = Annotated[float, typer.Option("--grad-clip", help=_h("grad_clip"))]
Epochs = Annotated[int, typer.Option("--epochs", help=_h("epochs"))]
Full = Annotated[bool, typer.Option("--full", help=_h("full"))]
LoraRank = Annotated[int, typer.Option("--lora-rank", help=_h("lora_rank"))]
LoraAlpha = Annotated[int, typer.Option("--lora-alpha", help=_h("lora_alpha"))]
LoraDropout = Annotated[float, typer.Option("--lora-dropout", help=_h("lora_dropout"))]
Seed = Annotated[int, typer.Option("--seed", help=_h("seed"))]
Bf16 = Annotated[bool | None, typer.Option("--bf16/--no-bf16", help=_h("bf16"), show_default=False)]
GradCkpt = Annotated[bool, typer.Option("--grad-checkpointing", help=_h("grad_checkpointing"))]
Compile = Annotated[bool, typer.Option("--compile", help=_h("compile"))]
Attn = Annotated[str, typer.Option("--attn", help=_h("attn"))]
SaveEvery = Annotated[int, typer.Option("--save-every", help="Save resumable state every N steps (0 = never; a kill then restarts from scratch).")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue an interrupted run into the same -o folder: same data order, same final step count.")]
RestartChanged = Annotated[bool, typer.Option("--restart-changed", help="With --resume: state an interrupted run saved for other data or settings is discarded and training starts over, instead of stopping (for workflows, which rerun a job because its inputs changed).")]
Metrics = Annotated[str | None, typer.Option("--metrics", help="Write per-step metrics JSONL here (default: OUTDIR/metrics.jsonl).", metavar="FILE")]
Label = Annotated[str | None, typer.Option("--label", help="Name for this checkpoint in later records and tables (default: the folder name).")]
Fsdp = Annotated[bool, typer.Option("--fsdp", help="Under torchrun with several processes: shard weights, gradients and optimizer state (FSDP2) instead of DDP.")]

DEFAULTS = {name: _d(name) for name in ("batch_tokens", "seq_len", "micro_batch", "lr", "warmup_ratio", "weight_decay",
                                        "grad_clip", "epochs", "lora_rank", "lora_alpha", "lora_dropout", "seed", "attn")}
SAVE_EVERY = 200
