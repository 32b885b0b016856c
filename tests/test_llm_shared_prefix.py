"""Shared-prefix ("cascade") attention: the same attention as sdpa over the materialised cache."""

import pytest
import torch
import torch.nn.functional as F

from msmtools.llm import Request, Sampling, get_backend, shared_prefix


def _reference(query, pk, pv, sk, sv, mask, scale):
    """sdpa over each prompt copied to its rows, GQA heads expanded as transformers does."""
    b, h = query.shape[:2]
    g, per = h // pk.shape[1], b // pk.shape[0]
    k = torch.cat([pk.repeat_interleave(per, dim=0), sk], dim=2).repeat_interleave(g, dim=1)
    v = torch.cat([pv.repeat_interleave(per, dim=0), sv], dim=2).repeat_interleave(g, dim=1)
    return F.scaled_dot_product_attention(query, k, v, attn_mask=mask, scale=scale).transpose(1, 2)


@pytest.mark.parametrize("prompts", [1, 5])
@pytest.mark.parametrize("mask_kind", [None, "bool", "float"])
def test_cascade_equals_sdpa_over_the_copied_prefix(mask_kind, prompts):
    torch.manual_seed(0)
    b, kv, g, p, s, d = 10, 3, 3, 37, 4, 16  # 10 rows: 1 prompt x 10 samples, or 5 prompts x 2
    query = torch.randn(b, kv * g, 1, d)
    pk, pv = torch.randn(prompts, kv, p, d), torch.randn(prompts, kv, p, d)
    sk, sv = torch.randn(b, kv, s, d), torch.randn(b, kv, s, d)
    mask = None
    if mask_kind is not None:
        keep = torch.rand(b, 1, 1, p + s) > 0.3
        keep[..., -1] = True  # every row sees at least its own token
        mask = keep if mask_kind == "bool" else torch.zeros(b, 1, 1, p + s).masked_fill(~keep, float("-inf"))
    got = shared_prefix.cascade(query, pk, pv, sk, sv, mask, d ** -0.5)
    want = _reference(query, pk, pv, sk, sv, mask, d ** -0.5)
    assert got.shape == want.shape == (b, 1, kv * g, d)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # a row's answer does not depend on the other rows (no mixing through the shared matrix product)
    r = 3 * prompts // 10  # the prompt row 3 samples
    alone = shared_prefix.cascade(query[3:4], pk[r:r + 1], pv[r:r + 1], sk[3:4], sv[3:4],
                                  None if mask is None else mask[3:4], d ** -0.5)
    torch.testing.assert_close(alone, got[3:4], rtol=1e-5, atol=1e-5)


def test_shared_prefix_layer_grows_and_materialises():
    torch.manual_seed(1)
    cls = shared_prefix.layer_class()
    pk, pv = torch.randn(1, 2, 6, 4), torch.randn(1, 2, 6, 4)
    layer = cls(pk, pv, rows=3, capacity=2)
    steps = [(torch.randn(3, 2, 1, 4), torch.randn(3, 2, 1, 4)) for _ in range(5)]  # past capacity: grows
    for k, v in steps:
        keys, _ = layer.update(k, v)
    assert layer.get_seq_length() == 11 and keys.shape == (3, 2, 5, 4)
    full_k, full_v = layer.full()
    torch.testing.assert_close(full_k[:, :, :6], pk.expand(3, -1, -1, -1))
    torch.testing.assert_close(full_k[:, :, 6:], torch.cat([k for k, _ in steps], dim=2))
    torch.testing.assert_close(full_v[:, :, 6:], torch.cat([v for _, v in steps], dim=2))


def test_backend_decodes_samples_against_one_prompt_copy(tiny_model, monkeypatch):
    calls = []
    real = shared_prefix.cascade
    monkeypatch.setattr(shared_prefix, "cascade", lambda *a: calls.append(a[1].shape) or real(*a))
    b = get_backend("hf", str(tiny_model), batch_size=4, progress=False)
    req = Request([{"role": "user", "content": "one prompt, many samples " * 10}],
                  Sampling(temperature=1.0, max_tokens=6, n=4, seed=3))
    out = b.generate([req])[0]
    assert [c.seed for c in out] == [3, 4, 5, 6]
    assert calls and all(shape[0] == 1 for shape in calls)  # the prompt's keys are held once, not per row
    assert len(calls) == 2 * 6  # 2 layers x 6 one-token decode steps


def test_steps_the_cascade_does_not_cover_fall_back_to_the_materialised_cache():
    """A several-token step (or a model-specific attention option) gets sdpa over prefix + own tokens."""
    from types import SimpleNamespace

    torch.manual_seed(2)
    layer = shared_prefix.layer_class()(torch.randn(1, 2, 5, 8), torch.randn(1, 2, 5, 8), rows=2, capacity=4)
    keys, values = layer.update(torch.randn(2, 2, 3, 8), torch.randn(2, 2, 3, 8))
    module = SimpleNamespace(layer_idx=0, num_key_value_groups=2, is_causal=True)
    query = torch.randn(2, 4, 3, 8)
    full_k, full_v = layer.full()
    causal = torch.ones(3, 8, dtype=torch.bool).tril(diagonal=5)[None, None].expand(2, 1, 3, 8)
    want = F.scaled_dot_product_attention(query, full_k.repeat_interleave(2, 1), full_v.repeat_interleave(2, 1),
                                          attn_mask=causal).transpose(1, 2)
    with shared_prefix.active(SimpleNamespace(layers=[layer])):
        got, _ = shared_prefix.attention(module, query, keys, values, causal)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    with shared_prefix.active(None):  # outside a shared-prefix decode: plain sdpa on what it is given
        plain, _ = shared_prefix.attention(module, query, full_k, full_v, causal)
    torch.testing.assert_close(plain, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("words", [3, 300])  # short prompts: one padded prefill; long: prefilled one by one
def test_prompts_of_different_lengths_share_a_batch_each_read_once(tiny_model, monkeypatch, words):
    """Few samples per prompt (am-eval --samples 2): R left-padded prompts in one batch, one copy each."""
    shapes = []
    real = shared_prefix.cascade
    monkeypatch.setattr(shared_prefix, "cascade", lambda *a: shapes.append(tuple(a[1].shape)) or real(*a))
    stacked = []
    real_stack = shared_prefix.stack
    monkeypatch.setattr(shared_prefix, "stack", lambda caches, n: stacked.append(len(caches)) or real_stack(caches, n))
    b = get_backend("hf", str(tiny_model), batch_size=8, progress=False)
    reqs = [Request([{"role": "user", "content": "words " * (words + 5 * i)}],
                    Sampling(temperature=1.0, max_tokens=5, n=2, seed=10 * i)) for i in range(4)]
    together = b.generate(reqs)
    assert {s[0] for s in shapes} == {4}  # 4 prompts, 8 rows
    assert stacked == ([4] if words > 100 else [])
    for i, req in enumerate(reqs):
        assert [c.raw for c in b.generate([req])[0]] == [c.raw for c in together[i]]


def test_prompts_prefilled_one_by_one_stack_into_the_padded_batch_cache(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model, padding_side="left")
    enc = tok(["a short one", "a somewhat longer prompt than the first one"], return_tensors="pt", padding=True)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    with torch.inference_mode():
        batch = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                      use_cache=True).past_key_values
        one_by_one = shared_prefix.stack([model(input_ids=r[m.bool()][None], use_cache=True).past_key_values
                                          for r, m in zip(ids, mask)], ids.shape[1])
    real = mask.bool()[:, None, :, None]
    for a, b in zip(batch.layers, one_by_one.layers):
        assert a.keys.shape == b.keys.shape
        torch.testing.assert_close(b.keys * real, a.keys * real, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(b.values * real, a.values * real, rtol=1e-4, atol=1e-5)
        assert not b.keys.masked_select(~real.expand_as(b.keys)).any()  # padding is zero
