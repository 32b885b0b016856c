"""Test helpers: a tiny random model with the embedded model's tokenizer, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MSM = [sys.executable, "-m", "msmtools"]


def make_tiny_model(path: Path, *, layers: int = 2, hidden: int = 64, seed: int = 0) -> Path:
    """A randomly initialised Llama-shaped model (about 3M parameters) saved as a normal HF folder."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from msmtools import models

    if (path / "model.safetensors").exists():
        return path
    tok = AutoTokenizer.from_pretrained(models.ensure_default_model())
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=2048, tie_word_embeddings=True,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


def run_msm(*args: str, input: str | bytes | None = None, env: dict | None = None, timeout: float = 600,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m msmtools ...` and capture bytes-free text output."""
    e = dict(os.environ)
    e.update(env or {})
    if isinstance(input, bytes):
        input = input.decode()
    return subprocess.run([*MSM, *args], input=input, capture_output=True, text=True, env=e, timeout=timeout,
                          cwd=cwd or REPO)
