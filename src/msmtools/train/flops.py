"""Training FLOPs per token, counted honestly for MFU: what the step really computes, not 6N for everything.

Dense layers (every matmul weight; the input embedding is a lookup and costs nothing, a tied output
projection is counted once as the LM head):
- full fine-tuning: 6 N per token (forward 2N, backward 4N: gradients for activations and weights);
- LoRA: 4 N_base + 6 N_adapter: the frozen base needs its forward (2N) and the gradient with respect
  to its activations (2N), but no weight gradient; the adapters get all three.
Attention (scores and the weighted sum, not in N): forward 4 d_attn per attended position per token
and layer (QK^T and AV), backward twice that, so 12 d_attn x ctx per token and layer, where ctx is the
mean number of positions a token attends to: (L + 1) / 2 in a causal document of L tokens when
attention is kept inside each document (the packed row's length when it is not). A sliding window
caps ctx at the window on its layers. Recomputation under gradient checkpointing is not counted
(model FLOPs utilization, as the anchor reports it).

    MFU = flops_per_token x real tokens/s / (peak FLOP/s x GPUs)
"""

from __future__ import annotations

from typing import Any

import numpy as np


def matmul_params(model: Any) -> tuple[int, int]:
    """(frozen, trainable) parameters that take part in matmuls (the input embedding lookup does not)."""
    emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    skip = set()
    if emb is not None and (out is None or out.weight is not emb.weight):
        skip.add(id(emb.weight))  # an untied input embedding: a lookup
    frozen = trainable = 0
    for p in model.parameters():
        if id(p) in skip:
            continue
        if p.requires_grad:
            trainable += p.numel()
        else:
            frozen += p.numel()
    return frozen, trainable


def attended_context(doc_lengths: np.ndarray, isolated: bool, seq_len: int, window: int | None = None) -> float:
    """Mean positions attended per token: within each document when isolated, else within the packed row."""
    lengths = np.asarray(doc_lengths, dtype=np.float64)
    if not isolated or lengths.size == 0:
        lengths = np.full(max(1, int(lengths.sum() // seq_len)), float(seq_len))
    if window:
        capped = np.where(lengths <= window, lengths * (lengths + 1) / 2,
                          window * (window + 1) / 2 + (lengths - window) * window)
        return float(capped.sum() / lengths.sum())
    return float((lengths * (lengths + 1) / 2).sum() / lengths.sum())


def attention_dims(config: Any) -> tuple[int, int, int | None, float]:
    """(layers, query heads x head dim, sliding window, share of layers that slide) from a transformers config."""
    layers = int(config.num_hidden_layers)
    heads = int(config.num_attention_heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    window = getattr(config, "sliding_window", None)
    types = getattr(config, "layer_types", None)
    if window and types:
        sliding = sum(t == "sliding_attention" for t in types) / len(types)
    elif window and getattr(config, "use_sliding_window", False):
        sliding = 1.0
    else:
        sliding = 0.0
    return layers, heads * head_dim, window, sliding


def flops_per_token(config: Any, frozen: int, trainable: int, *, full: bool, doc_lengths: np.ndarray,
                    isolated: bool, seq_len: int) -> dict[str, float]:
    dense = 6.0 * (frozen + trainable) if full else 4.0 * frozen + 6.0 * trainable
    layers, d_attn, window, sliding = attention_dims(config)
    ctx_full = attended_context(doc_lengths, isolated, seq_len)
    ctx_win = attended_context(doc_lengths, isolated, seq_len, window) if window and sliding else ctx_full
    ctx = (1 - sliding) * ctx_full + sliding * ctx_win
    attn = 12.0 * layers * d_attn * ctx
    return {"dense": dense, "attention": attn, "total": dense + attn, "context": ctx}


def mfu(flops_token: float, tokens_per_s: float, peak: float | None, world: int = 1) -> float | None:
    return None if not peak else flops_token * tokens_per_s / (peak * world)
