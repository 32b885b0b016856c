"""MFU counted honestly (issue 16): 6N for full fine-tuning, 4N + 6N_adapter for LoRA, plus the attention
of the document-masked sequences actually trained, checked against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from msmtools.train import flops


def test_attended_context_of_causal_documents():
    assert flops.attended_context(np.array([4, 8]), True, 16) == pytest.approx((4 * 5 / 2 + 8 * 9 / 2) / 12)
    # not isolated: every token attends within its packed row of 16
    assert flops.attended_context(np.array([4, 8, 4]), False, 16) == pytest.approx(16 * 17 / 2 / 16)
    # a window of 3 caps what a long document's later tokens see
    assert flops.attended_context(np.array([5]), True, 16, window=3) == pytest.approx((1 + 2 + 3 + 3 + 3) / 5)


def test_lora_and_full_dense_flops_on_a_real_model():
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=128, tie_word_embeddings=False)
    model = Qwen2ForCausalLM(cfg)
    emb = model.get_input_embeddings().weight.numel()
    total = sum(p.numel() for p in model.parameters())
    frozen, trainable = flops.matmul_params(model)
    assert (frozen, trainable) == (0, total - emb)  # the input embedding is a lookup; the LM head is a matmul
    full = flops.flops_per_token(cfg, frozen, trainable, full=True, doc_lengths=np.array([64]), isolated=True, seq_len=64)
    assert full["dense"] == 6 * (total - emb)
    lora = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
    frozen, trainable = flops.matmul_params(lora)
    adapters = sum(p.numel() for n, p in lora.named_parameters() if "lora_" in n)
    assert trainable == adapters and frozen == total - emb
    f = flops.flops_per_token(cfg, frozen, trainable, full=False, doc_lengths=np.array([64]), isolated=True, seq_len=64)
    assert f["dense"] == 4 * (total - emb) + 6 * adapters
    assert f["attention"] == pytest.approx(12 * 2 * 64 * (65 / 2))  # layers x heads*head_dim x mean context


def test_the_7b_shape_by_hand():
    from transformers import Qwen2Config

    cfg = Qwen2Config(vocab_size=49152, hidden_size=3584, num_hidden_layers=28, num_attention_heads=28,
                      num_key_value_heads=4, intermediate_size=18944, tie_word_embeddings=False)
    d, kv, ff, L, V = 3584, 512, 18944, 28, 49152
    per_layer = d * d + d + 2 * (d * kv + kv) + d * d + 3 * d * ff + 2 * d  # q (bias), k, v (bias), o, mlp, norms
    base = L * per_layer + d + V * d  # final norm and the LM head (the embedding lookup is not counted)
    r = 64
    adapters = L * r * (2 * (d + d) + 2 * (d + kv) + 2 * (d + ff) + (ff + d))  # q,o,k,v,gate,up,down
    f = flops.flops_per_token(cfg, base, adapters, full=False, doc_lengths=np.array([8192]), isolated=True, seq_len=8192)
    assert f["dense"] == 4 * base + 6 * adapters
    assert f["attention"] == pytest.approx(12 * 28 * 3584 * 8193 / 2)
    # the old count (6N over every parameter) overstates LoRA work by about 1.3x here, more for shorter rows
    old = 6 * (base + V * d + adapters)
    assert 1.2 < old / f["total"] < 1.6
