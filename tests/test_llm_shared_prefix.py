"""Shared-prefix ("cascade") attention: the same attention as sdpa over the materialised cache."""

import pytest
import torch
import torch.nn.functional as F

from msmtools.llm import Request, Sampling, get_backend, shared_prefix


def _reference(query, pk, pv, sk, sv, mask, scale):
    """sdpa over the prefix copied to every row, GQA heads expanded as transformers does."""
    b, h = query.shape[:2]
    g = h // pk.shape[1]
    k = torch.cat([pk.expand(b, -1, -1, -1), sk], dim=2).repeat_interleave(g, dim=1)
    v = torch.cat([pv.expand(b, -1, -1, -1), sv], dim=2).repeat_interleave(g, dim=1)
    return F.scaled_dot_product_attention(query, k, v, attn_mask=mask, scale=scale).transpose(1, 2)


@pytest.mark.parametrize("mask_kind", [None, "bool", "float"])
def test_cascade_equals_sdpa_over_the_copied_prefix(mask_kind):
    torch.manual_seed(0)
    b, kv, g, p, s, d = 5, 3, 3, 37, 4, 16
    query = torch.randn(b, kv * g, 1, d)
    pk, pv = torch.randn(1, kv, p, d), torch.randn(1, kv, p, d)
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
    alone = shared_prefix.cascade(query[2:3], pk, pv, sk[2:3], sv[2:3], None if mask is None else mask[2:3], d ** -0.5)
    torch.testing.assert_close(alone, got[2:3], rtol=1e-5, atol=1e-5)


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
