"""Decoding many samples of one prompt without copying the prompt's KV cache to every row.

am-eval draws n samples of a ~2k-token prompt. Copying the prompt's cache to each of the n rows
(`batch_repeat_interleave`) makes every decode step read n copies of it, expand them per query head
(GQA) and concatenate the grown cache: on a CPU a batch-8 step then cost about 3.3x a single-row
step. Here the prompt's keys and values are kept once, the samples' own tokens in a preallocated
buffer, and attention is split in two ("cascade" attention): all rows' queries against the one
prompt copy (one matrix product, each KV head read once), each row against its own tokens, joined
in one softmax. The result is the same attention, up to float rounding.

Only plain full-attention layers (transformers' `DynamicLayer`) with `sdpa` attention take this path;
anything else (sliding windows, soft-capping, sinks, a prefill of several tokens) falls back to the
materialised cache and the stock kernel, so the answer never depends on the path.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterator

NAME = "msm_shared_prefix"
_ACTIVE: contextvars.ContextVar[Any] = contextvars.ContextVar("msm_shared_prefix_cache", default=None)
_UNSUPPORTED_KWARGS = ("sliding_window", "softcap", "s_aux", "position_bias")


def _layer_class():
    from transformers.cache_utils import DynamicLayer

    class SharedPrefixLayer(DynamicLayer):
        """A prompt's keys/values once ([1, kv, P, d]) plus each row's new tokens in a growing buffer."""

        def __init__(self, keys: Any, values: Any, rows: int, capacity: int) -> None:
            super().__init__()
            import torch

            self.prefix_keys, self.prefix_values = keys, values
            self.dtype, self.device = keys.dtype, keys.device
            _, kv, _, d = keys.shape
            self._kbuf = torch.empty(rows, kv, capacity, d, dtype=keys.dtype, device=keys.device)
            self._vbuf = torch.empty(rows, kv, capacity, values.shape[-1], dtype=values.dtype, device=values.device)
            self.length = 0
            self.keys, self.values = self._kbuf[:, :, :0], self._vbuf[:, :, :0]
            self.is_initialized = True

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            n = key_states.shape[-2]
            if self.length + n > self._kbuf.shape[2]:  # more tokens than planned: grow (rare)
                import torch

                self._kbuf = torch.cat([self._kbuf, torch.empty_like(self._kbuf)], dim=2)
                self._vbuf = torch.cat([self._vbuf, torch.empty_like(self._vbuf)], dim=2)
            self._kbuf[:, :, self.length:self.length + n] = key_states
            self._vbuf[:, :, self.length:self.length + n] = value_states
            self.length += n
            self.keys, self.values = self._kbuf[:, :, :self.length], self._vbuf[:, :, :self.length]
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.prefix_keys.shape[-2] + self.length

        def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
            return self.get_seq_length() + query_length, 0

        def full(self) -> tuple[Any, Any]:
            """The materialised cache, as a plain layer would hold it."""
            import torch

            rows = self.keys.shape[0]
            return (torch.cat([self.prefix_keys.expand(rows, -1, -1, -1), self.keys], dim=-2),
                    torch.cat([self.prefix_values.expand(rows, -1, -1, -1), self.values], dim=-2))

        def crop(self, tokens_to_remove: int) -> None:
            raise NotImplementedError("shared-prefix cache does not support cropping")

        def batch_repeat_interleave(self, repeats: int) -> None:
            raise NotImplementedError("shared-prefix cache is already one row per sample")

        def batch_select_indices(self, indices: Any) -> None:
            raise NotImplementedError("shared-prefix cache does not support dropping rows")

        def reorder_cache(self, beam_idx: Any) -> None:
            raise NotImplementedError("shared-prefix cache does not support beam search")

    return SharedPrefixLayer


_LAYER: Any = None


def layer_class() -> Any:
    global _LAYER
    if _LAYER is None:
        _LAYER = _layer_class()
    return _LAYER


def attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
              scaling: float | None = None, is_causal: bool | None = None, **kwargs: Any) -> tuple[Any, None]:
    """sdpa, except for one-token decode steps over a shared-prefix layer (see the module docstring)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    cache = _ACTIVE.get()
    layer = cache.layers[module.layer_idx] if cache is not None else None
    if not isinstance(layer, layer_class()):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    if (query.shape[2] != 1 or dropout or any(kwargs.get(k) is not None for k in _UNSUPPORTED_KWARGS)
            or key is not layer.keys):
        key, value = layer.full()
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    return cascade(query, layer.prefix_keys, layer.prefix_values, key, value, attention_mask,
                   scaling if scaling is not None else query.shape[-1] ** -0.5), None


def cascade(query: Any, pk: Any, pv: Any, sk: Any, sv: Any, mask: Any, scale: float) -> Any:
    """Attention of one new token per row over a shared prefix ([1, kv, P, d]) and per-row suffixes.

    query [B, H, 1, d]; sk/sv [B, kv, S, d]; mask None, bool or additive, broadcastable to
    [B, 1, 1, P+S]. Returns [B, 1, H, d], the layout transformers' attention functions return.
    """
    import torch

    b, h, _, d = query.shape
    kv, p = pk.shape[1], pk.shape[2]
    g = h // kv
    q = query.reshape(b, kv, g, d)  # head i*g+r reads KV head i, as repeat_kv lays them out
    # every row's queries against the one prefix copy: [kv, B*g, d] @ [kv, d, P]
    qp = q.permute(1, 0, 2, 3).reshape(kv, b * g, d)
    s_pre = torch.matmul(qp, pk[0].transpose(-1, -2)).view(kv, b, g, p).permute(1, 0, 2, 3)
    s_own = torch.matmul(q, sk.transpose(-1, -2))  # [B, kv, g, S]
    scores = torch.cat([s_pre, s_own], dim=-1).float().mul_(scale)
    if mask is not None:
        m = mask.reshape(mask.shape[0], 1, 1, mask.shape[-1])
        scores = scores.masked_fill(~m, float("-inf")) if m.dtype == torch.bool else scores + m.float()
    w = torch.softmax(scores, dim=-1).to(query.dtype)
    w_pre = w[..., :p].permute(1, 0, 2, 3).reshape(kv, b * g, p)
    out = torch.matmul(w_pre, pv[0]).view(kv, b, g, -1).permute(1, 0, 2, 3) + torch.matmul(w[..., p:], sv)
    return out.reshape(b, 1, h, -1)


def enable(model: Any) -> bool:
    """Route `model`'s attention through `attention` (identical to sdpa outside a shared-prefix decode)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return False
    AttentionInterface.register(NAME, attention)
    AttentionMaskInterface.register(NAME, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])
    try:
        model.set_attn_implementation(NAME)
    except (ValueError, TypeError):
        return False
    return model.config._attn_implementation == NAME


def share(cache: Any, rows: int, capacity: int) -> Any | None:
    """Turn a one-row prefilled DynamicCache into a `rows`-row shared-prefix cache, or None if a layer isn't plain."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    if not layers or any(type(layer) is not DynamicLayer or layer.keys is None for layer in layers):
        return None
    cls = layer_class()
    cache.layers = [cls(layer.keys, layer.values, rows, capacity) for layer in layers]
    return cache


@contextlib.contextmanager
def active(cache: Any) -> Iterator[None]:
    token = _ACTIVE.set(cache)
    try:
        yield
    finally:
        _ACTIVE.reset(token)
