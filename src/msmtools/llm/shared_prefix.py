"""Decoding many samples of one prompt without copying the prompt's KV cache to every row.

am-eval draws n samples of a ~2k-token prompt. Copying the prompt's cache to each of the n rows
(`batch_repeat_interleave`) makes every decode step read n copies of it, expand them per query head
(GQA) and concatenate the grown cache: on a CPU a batch-8 step then cost about 3.3x a single-row
step. Here the prompt's keys and values are kept once, the samples' own tokens in a preallocated
buffer, and attention is split in two ("cascade" attention): all rows' queries against the one
prompt copy (one matrix product, each KV head read once), each row against its own tokens, joined
in one softmax. A batch of several prompts with k samples each (am-eval with few samples per
condition) works the same way, one matrix product per prompt.
The result is the same attention, up to float rounding.

Only plain full-attention layers (transformers' `DynamicLayer`) with `sdpa` attention take this path.
In a model that mixes them with sliding-window layers (Gemma 3: five local layers to one global) the
full layers share the prompt and the sliding layers keep a copy per row, as the stock path does (a
window's cache is small). Anything else falls back to the materialised cache and the stock kernel:
a model with soft-capped attention logits (Gemma 2) is not switched over at all, and sinks, a
sliding window on a plain cache layer or a prefill of several tokens take the stock kernel per call.
So the answer never depends on the path.
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
        """R prompts' keys/values once ([R, kv, P, d]) plus each row's new tokens in a growing buffer."""

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

            k = self.keys.shape[0] // self.prefix_keys.shape[0]
            return (torch.cat([self.prefix_keys.repeat_interleave(k, dim=0), self.keys], dim=-2),
                    torch.cat([self.prefix_values.repeat_interleave(k, dim=0), self.values], dim=-2))

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
    """Attention of one new token per row over shared prefixes and per-row suffixes.

    pk/pv [R, kv, P, d] hold R prompts once; the B = R*k rows are k samples of each prompt in turn.
    query [B, H, 1, d]; sk/sv [B, kv, S, d]; mask None, bool or additive, broadcastable to
    [B, 1, 1, P+S]. Returns [B, 1, H, d], the layout transformers' attention functions return.
    """
    import torch

    b, h, _, d = query.shape
    r, kv, p = pk.shape[0], pk.shape[1], pk.shape[2]
    g, k = h // kv, b // r
    q = query.reshape(b, kv, g, d)  # head i*g+r reads KV head i, as repeat_kv lays them out
    # each prompt's k samples x g heads against its one copy: [R, kv, k*g, d] @ [R, kv, d, P]
    qp = q.view(r, k, kv, g, d).permute(0, 2, 1, 3, 4).reshape(r, kv, k * g, d)
    s_pre = torch.matmul(qp, pk.transpose(-1, -2)).view(r, kv, k, g, p).permute(0, 2, 1, 3, 4).reshape(b, kv, g, p)
    s_own = torch.matmul(q, sk.transpose(-1, -2))  # [B, kv, g, S]
    scores = torch.cat([s_pre, s_own], dim=-1).float().mul_(scale)
    if mask is not None:
        m = mask.reshape(mask.shape[0], 1, 1, mask.shape[-1])
        scores = scores.masked_fill(~m, float("-inf")) if m.dtype == torch.bool else scores + m.float()
    w = torch.softmax(scores, dim=-1).to(query.dtype)
    w_pre = w[..., :p].reshape(r, k, kv, g, p).permute(0, 2, 1, 3, 4).reshape(r, kv, k * g, p)
    out_pre = torch.matmul(w_pre, pv).view(r, kv, k, g, -1).permute(0, 2, 1, 3, 4).reshape(b, kv, g, -1)
    return (out_pre + torch.matmul(w[..., p:], sv)).reshape(b, 1, h, -1)


def enable(model: Any) -> bool:
    """Route `model`'s attention through `attention` (identical to sdpa outside a shared-prefix decode)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    if getattr(model.config, "_attn_implementation", None) != "sdpa" or not supported(model.config):
        return False
    AttentionInterface.register(NAME, attention)
    AttentionMaskInterface.register(NAME, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])
    try:
        model.set_attn_implementation(NAME)
    except (ValueError, TypeError):
        return False
    return model.config._attn_implementation == NAME


def supported(config: Any) -> bool:
    """Whether a model with this config can decode over a shared prefix: it needs at least one full-attention
    layer, and no soft-capped attention scores (which sdpa, and so this path, does not compute)."""
    cfgs = [config] + [c for c in (getattr(config, "text_config", None),) if c is not None and c is not config]
    if any(getattr(c, "attn_logit_softcapping", None) is not None for c in cfgs):
        return False
    types = getattr(getattr(config, "text_config", None) or config, "layer_types", None)
    return not types or "full_attention" in types


def _kinds(cache: Any) -> list[str] | None:
    """'plain' or 'window' per layer of a prefilled DynamicCache; None if any layer is something else."""
    from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

    layers = getattr(cache, "layers", None)
    if not layers or any(layer.keys is None or not layer.is_initialized for layer in layers):
        return None
    kinds = []
    for layer in layers:
        if type(layer) is DynamicLayer:
            kinds.append("plain")
        elif type(layer) is DynamicSlidingWindowLayer and not getattr(layer, "record_past", False):
            kinds.append("window")
        else:
            return None
    return kinds


def share(cache: Any, samples: int, capacity: int, mask: Any = None) -> Any | None:
    """Turn a prefilled DynamicCache of R prompts into one for `samples` rows per prompt, or None (unchanged) if
    no layer can share: its plain layers hold each prompt once, its sliding-window layers a copy per row.

    `mask` [R, P] marks the prompts' real tokens: padding positions are zeroed, so that no value
    computed for a fully masked position (NaN, say) can reach a row through a zero weight.
    """
    kinds = _kinds(cache)
    if kinds is None or "plain" not in kinds:
        return None
    cls = layer_class()
    pad = None if mask is None or bool(mask.all()) else (mask == 0)[:, None, :, None]
    out = []
    for layer, kind in zip(cache.layers, kinds):
        if kind == "window":  # as the stock path: one copy per row (at most a window's worth of tokens)
            layer.batch_repeat_interleave(samples)
            out.append(layer)
            continue
        keys, values = layer.keys, layer.values
        if pad is not None:
            keys, values = keys.masked_fill(pad, 0), values.masked_fill(pad, 0)
        out.append(cls(keys, values, keys.shape[0] * samples, capacity))
    cache.layers = out
    return cache


def stack(caches: list[Any], length: int) -> Any | None:
    """One left-padded cache of `length` positions from prompts prefilled one by one (zeros where padded).

    The same cache a padded batch prefill gives, without its masked attention: a sliding-window layer holds the
    last `window - 1` of the `length` positions, as it would after the padded batch. None if a layer is another kind.
    """
    kinds = [_kinds(c) for c in caches]
    if any(k is None or k != kinds[0] for k in kinds):
        return None
    out = caches[0]
    for i, layer in enumerate(out.layers):
        parts = [c.layers[i] for c in caches]
        held = length if kinds[0][i] == "plain" else min(length, layer.sliding_window - 1)
        keys = parts[0].keys.new_zeros(len(parts), *parts[0].keys.shape[1:2], held, parts[0].keys.shape[-1])
        values = parts[0].values.new_zeros(len(parts), *parts[0].values.shape[1:2], held, parts[0].values.shape[-1])
        for r, part in enumerate(parts):
            n = part.keys.shape[-2]
            keys[r, :, held - n:], values[r, :, held - n:] = part.keys[0], part.values[0]
        layer.keys, layer.values = keys, values
        if kinds[0][i] == "window":
            layer.cumulative_length = length
    return out


@contextlib.contextmanager
def active(cache: Any) -> Iterator[None]:
    token = _ACTIVE.set(cache)
    try:
        yield
    finally:
        _ACTIVE.reset(token)
