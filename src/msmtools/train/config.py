"""Training hyperparameters: one typed dataclass per trainer, defaults from the MSM paper.

Each field carries its help text, so the CLI options (`msmtools.commands.midtrain` / `aft`, generated
by `cli_options.config_options`: one option per field, `--field-name`) and the `config` block of the
checkpoint record come from one definition; `cli=False` keeps a field off the command line. Stdlib only: the CLI imports this
module at start-up.

Paper defaults (Li et al. 2026): LoRA rank 64, alpha 128, dropout 0 on q,k,v,o,gate,up,down; AdamW
lr 1e-4, cosine schedule, 5% warm-up, weight decay 0.01; 1 epoch per stage; max length 8192. The
paper does not state its batch size; 65,536 tokens per optimizer step is ours.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..cli_options import SEED_HELP

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ATTN_CHOICES = ("auto", "flex", "varlen", "sdpa", "eager", "flash_attention_2")


def _f(default: Any, help: str, **kw: Any) -> Any:
    if isinstance(default, (list, tuple, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    """Hyperparameters shared by both stages (everything that changes the trained weights)."""

    seq_len: int = _f(8192, "Row length in tokens: documents are packed into rows of this many tokens (paper: max length 8192).")
    batch_tokens: int = _f(65536, "Tokens per optimizer step, all devices and accumulation steps together (rounded to whole rows).")
    micro_batch: int = _f(1, "Rows per forward pass on each device; the rest of a step is gradient accumulation.")
    lr: float = _f(1e-4, "Peak learning rate (AdamW).")
    warmup_ratio: float = _f(0.05, "Fraction of steps spent in linear warm-up before the cosine decay.")
    min_lr_ratio: float = _f(0.0, "Learning rate at the end of the cosine, as a fraction of the peak.", cli=False)
    weight_decay: float = _f(0.01, "AdamW weight decay.")
    adam_beta1: float = _f(0.9, "AdamW beta1.", cli=False)
    adam_beta2: float = _f(0.999, "AdamW beta2.", cli=False)
    grad_clip: float = _f(1.0, "Clip the global gradient norm to this value (0 = no clipping).")
    epochs: int = _f(1, "Passes over the data (paper: 1 per stage).")
    max_steps: int | None = _f(None, "Stop after this many optimizer steps (default: as many as the epochs need).")
    train_tokens: int | None = _f(None, "Train on exactly this many tokens: documents in seeded order, the last one cut (token-matched variants).")
    full: bool = _f(False, "Full fine-tuning instead of LoRA.")
    lora_rank: int = _f(64, "LoRA rank r.")
    lora_alpha: int = _f(128, "LoRA alpha (scale = alpha / r).")
    lora_dropout: float = _f(0.0, "LoRA dropout.")
    lora_targets: tuple[str, ...] = _f(LORA_TARGETS, "Module names that get LoRA adapters.", cli=False)
    seed: int = _f(0, SEED_HELP)
    bf16: bool | None = _f(None, "bf16 autocast (default: on for CUDA, off on CPU).")
    grad_checkpointing: bool = _f(False, "Recompute activations in the backward pass: less memory, about 30% more compute.")
    compile: bool = _f(False, "torch.compile each decoder layer and the loss (slower start, faster steps on GPU).")
    attn: str = _f("auto", "Attention: auto, flex (GPU), varlen, sdpa, eager, flash_attention_2.", choices=ATTN_CHOICES)

    def hyperparameters(self) -> dict[str, Any]:
        """The flat dict stored in the checkpoint record."""
        d = dataclasses.asdict(self)
        d["lora_targets"] = list(self.lora_targets)
        if self.full:
            for k in ("lora_rank", "lora_alpha", "lora_dropout", "lora_targets"):
                d.pop(k)
        return d


@dataclass
class MidtrainConfig(TrainConfig):
    """Continued pretraining on documents: every token of every document is trained."""


@dataclass
class AftConfig(TrainConfig):
    """Supervised fine-tuning on chats: loss on assistant tokens only."""

    reasoning: str = _f("keep", "keep or strip the chats' reasoning: docgen keeps it on each chat (strip: reasoning: "
                        "null); aft trains on it as <think>...</think> in the assistant turn (strip: drops it).",
                        choices=("keep", "strip"))
    mix: tuple[str, ...] = _f((), "Mix in another chat file: FILE:fraction of the training examples (repeatable).",
                              metavar="FILE:FRACTION")


def help_for(cls: type, name: str) -> str:
    """Help text of a config field (the CLI uses this, so docs live in one place)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f.metadata["help"]
    raise KeyError(name)


def default(cls: type, name: str) -> Any:
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            return f.default_factory()  # type: ignore[misc]
    raise KeyError(name)
