"""Keeping attention inside each packed document, and proving it on the loaded model.

A packed row holds several documents; without care every token also attends to the documents before
it in the row. Choices (`--attn`):

- `flex` (GPU default): PyTorch flex attention with a document block mask built from the row's
  segment ids. Blocks that cross documents are skipped entirely, so attention costs what the
  documents cost, and it compiles with the rest of the layer (`--compile`). CPU has no flex backward.
- `varlen` (CPU default): variable-length attention over segment boundaries (`cu_seqlens`): PyTorch's
  flash `varlen_attn` on CUDA (torch >= 2.10), else one causal sdpa call per document.
- `sdpa`, `eager`, `flash_attention_2`: transformers' own code. Given `position_ids` that restart at 0
  and no attention mask, transformers 5 detects the packed layout and builds a block-diagonal mask
  (a dense S x S mask for sdpa/eager: correct but computes the masked blocks) or varlen calls
  (flash_attention_2, when the flash-attn package is installed).

(transformers' `DataCollatorWithFlattening` produces that same layout, but one flat row per batch with
no best-fit rows or fixed shapes; TRL's padding-free packing does likewise and, with sdpa, ends up
attending across the whole 16k-token row, as the anchor benchmark found.)

Sliding-window layers (Gemma 3's local layers, Qwen2/Mistral with `use_sliding_window`) keep their window
inside each document: `varlen` limits each document's causal attention to the window (the CUDA kernel's
`window_size`, or a banded mask), and `flex` gets a second block mask with the window for those layers
(the models take a per-layer-type mask mapping). Soft-capped attention scores (Gemma 2) are computed
exactly as the model's eager code does. sdpa/eager get both from transformers.

Whatever is chosen, `check_isolation` runs a two-document probe through the real model and checks
that the gradient of the second document's logits with respect to the first document's embeddings
is exactly zero. If it is not (a model whose code ignores position ids, say), a warning says once on
stderr that documents see each other, and the record says `attention_isolated: false`.
"""

from __future__ import annotations

import inspect
import sys
import warnings
from functools import lru_cache
from typing import Any

import numpy as np

OURS = {"flex": "msm_flex", "varlen": "msm_varlen"}


def choose(requested: str, device_type: str) -> str:
    """The implementation for `--attn` on this device."""
    if requested != "auto":
        if requested == "flex" and device_type != "cuda":
            from ..errors import MsmError

            raise MsmError("--attn flex: flex attention has no backward pass on CPU; use --attn varlen")
        return requested
    if device_type == "cuda" and _has_flex():
        return "flex"
    return "varlen"


def _has_flex() -> bool:
    try:
        from torch.nn.attention.flex_attention import flex_attention  # noqa: F401
    except ImportError:
        return False
    return True


def hf_name(impl: str) -> str:
    """The name transformers knows the implementation by (ours are registered on first use)."""
    if impl in OURS:
        register()
        return OURS[impl]
    return impl


@lru_cache(maxsize=1)
def register() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register("msm_varlen", _varlen_forward)
    if _has_flex():
        AttentionInterface.register("msm_flex", _flex_forward)


# --- the attention functions (signature of transformers' attention interface) ----------------


def _gqa(query: Any, key: Any) -> bool:
    return query.shape[1] != key.shape[1]


def _causal_sdpa(query: Any, key: Any, value: Any, scaling: float | None, window: int | None = None,
                 softcap: float | None = None) -> Any:
    """Causal attention over one sequence ([B, H, L, D]), within `window` tokens (itself included) if given,
    with tanh soft-capping of the scores if given (as transformers' eager attention does)."""
    import torch
    import torch.nn.functional as F

    L, S = query.shape[-2], key.shape[-2]
    if softcap is None and (window is None or window >= S):
        return F.scaled_dot_product_attention(query, key, value, is_causal=True, scale=scaling,
                                              enable_gqa=_gqa(query, key))
    q_pos = torch.arange(S - L, S, device=query.device)[:, None]
    kv_pos = torch.arange(S, device=query.device)[None, :]
    keep = kv_pos <= q_pos
    if window is not None:
        keep = keep & (kv_pos > q_pos - window)
    if softcap is None:
        return F.scaled_dot_product_attention(query, key, value, attn_mask=keep, scale=scaling,
                                              enable_gqa=_gqa(query, key))
    if _gqa(query, key):
        g = query.shape[1] // key.shape[1]
        key, value = key.repeat_interleave(g, dim=1), value.repeat_interleave(g, dim=1)
    scores = torch.matmul(query, key.transpose(-1, -2)) * (scaling if scaling is not None else query.shape[-1] ** -0.5)
    scores = torch.tanh(scores / softcap) * softcap
    scores = scores.masked_fill(~keep, float("-inf"))
    return torch.matmul(torch.softmax(scores.float(), dim=-1).to(value.dtype), value)


@lru_cache(maxsize=1)
def _torch_varlen() -> tuple[Any, dict[str, Any]] | None:
    """torch.nn.attention.varlen.varlen_attn and the keyword that makes it causal, if present."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    params = inspect.signature(varlen_attn).parameters
    causal = {"window_size": (-1, 0)} if "window_size" in params else {"is_causal": True}
    return varlen_attn, {**causal, "_gqa": "enable_gqa" in params}


def _varlen_forward(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                    scaling: float | None = None, dropout: float = 0.0, **kwargs: Any) -> tuple[Any, None]:
    import torch

    cu = kwargs.get("cu_seq_lens_q")
    window, softcap = kwargs.get("sliding_window"), kwargs.get("softcap")
    B, H, S, D = query.shape
    if cu is None:  # not a packed batch (a plain forward or generation): ordinary causal attention
        if attention_mask is not None:
            import torch.nn.functional as F

            out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, scale=scaling,
                                                 enable_gqa=_gqa(query, key))
        else:
            out = _causal_sdpa(query, key, value, scaling, window, softcap)
        return out.transpose(1, 2).contiguous(), None
    Hk = key.shape[1]
    tv = _torch_varlen() if query.is_cuda and softcap is None else None
    if tv is not None and window is not None and "window_size" not in tv[1]:
        tv = None  # a kernel without window_size: the exact per-document loop below
    if tv is not None:
        fn, opts = tv
        q = query.transpose(1, 2).reshape(B * S, H, D)
        k = key.transpose(1, 2).reshape(B * S, Hk, D)
        v = value.transpose(1, 2).reshape(B * S, Hk, D)
        extra = {k_: v_ for k_, v_ in opts.items() if k_ != "_gqa"}
        if window is not None:
            extra["window_size"] = (window - 1, 0)  # the token itself and window - 1 before it, as the model's mask
        if Hk != H:
            if opts["_gqa"]:
                extra["enable_gqa"] = True
            else:
                k, v = k.repeat_interleave(H // Hk, dim=1), v.repeat_interleave(H // Hk, dim=1)
        mx = int(kwargs.get("max_length_q") or S)
        out = fn(q, k, v, cu, cu, mx, mx, scale=scaling, **extra)
        return out.view(B, S, H, D), None
    # One causal sdpa per document: exact, no wasted blocks; a Python loop, so meant for CPU.
    q = query.transpose(0, 1).reshape(H, B * S, D)
    k = key.transpose(0, 1).reshape(Hk, B * S, D)
    v = value.transpose(0, 1).reshape(Hk, B * S, D)
    bounds = cu.tolist()
    parts = [_causal_sdpa(q[None, :, a:b], k[None, :, a:b], v[None, :, a:b], scaling, window, softcap)[0]
             for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    out = torch.cat(parts, dim=1)  # (H, B*S, D)
    return out.view(H, B, S, D).permute(1, 2, 0, 3).contiguous(), None


@lru_cache(maxsize=1)
def _compiled_flex() -> Any:
    import torch
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)


_EAGER = {"on": False}  # the probe's tiny row runs flex eagerly: no compile for a shape used once


def _flex_forward(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                  scaling: float | None = None, dropout: float = 0.0, **kwargs: Any) -> tuple[Any, None]:
    import torch
    from torch.nn.attention.flex_attention import BlockMask, flex_attention

    window, softcap = kwargs.get("sliding_window"), kwargs.get("softcap")
    if not isinstance(attention_mask, BlockMask):  # no document mask given: plain causal attention
        return _varlen_forward(module, query, key, value, attention_mask, scaling,
                               sliding_window=window, softcap=softcap)
    if getattr(attention_mask, "_msm_window", None) != window:
        raise RuntimeError(f"flex attention: layer {getattr(module, 'layer_idx', '?')} has a sliding window of {window} "
                           "tokens but got a document mask for another window (this model does not take a mask per "
                           "layer type); use --attn varlen")
    score_mod = None if softcap is None else _softcap_mod(softcap)
    # Compiled kernels on GPU; on CPU (forward only, used by tests) the eager reference is quicker to start.
    compiled = query.is_cuda and not _EAGER["on"] and not torch.compiler.is_compiling()
    fn = _compiled_flex() if compiled else flex_attention
    out = fn(query, key, value, score_mod=score_mod, block_mask=attention_mask, scale=scaling,
             enable_gqa=_gqa(query, key))
    return out.transpose(1, 2).contiguous(), None


def _softcap_mod(softcap: float) -> Any:
    import torch

    def score_mod(score, b, h, q, kv):
        return torch.tanh(score / softcap) * softcap

    return score_mod


class _DocMasks:
    """Document block masks from segment ids (within a sliding window if given). One persistent segment buffer
    and one mask function per batch shape and window: every step's BlockMask carries the same `mask_mod`
    object, so compiled layers see the same function each step and do not recompile (a fresh closure per step
    would be a new guard)."""

    def __init__(self) -> None:
        self.slots: dict[tuple, tuple[Any, Any]] = {}

    def __call__(self, seg_ids: Any, window: int | None = None) -> Any:
        from torch.nn.attention.flex_attention import create_block_mask

        key = (tuple(seg_ids.shape), str(seg_ids.device), window)
        if key not in self.slots:
            buf = seg_ids.clone()

            if window is None:
                def same_doc_causal(b, h, q, kv):
                    return (buf[b, q] == buf[b, kv]) & (q >= kv)
            else:
                def same_doc_causal(b, h, q, kv):
                    return (buf[b, q] == buf[b, kv]) & (q >= kv) & (q - kv < window)

            self.slots[key] = (buf, same_doc_causal)
        buf, mod = self.slots[key]
        buf.copy_(seg_ids)
        B, S = seg_ids.shape
        mask = create_block_mask(mod, B, None, S, S, device=seg_ids.device, _compile=seg_ids.is_cuda and not _EAGER["on"])
        mask._msm_window = window  # which layers it is for (checked in _flex_forward)
        return mask


document_block_mask = _DocMasks()


def sliding_window(config: Any) -> int | None:
    """The window of the model's sliding-window layers, if it has any (they need their own flex mask)."""
    cfg = getattr(config, "text_config", None) or config
    types = getattr(cfg, "layer_types", None) or ()
    window = getattr(cfg, "sliding_window", None)
    return int(window) if window and "sliding_attention" in types else None


# --- model inputs -----------------------------------------------------------------------------


def model_inputs(impl: str, batch: dict[str, Any], device: Any, window: int | None = None) -> dict[str, Any]:
    """Keyword arguments for the model's forward for one packed batch (numpy arrays or tensors).

    `window`: the model's sliding window (`sliding_window(model.config)`); flex then passes a mask per layer type."""
    import torch

    def t(x: Any) -> Any:
        x = torch.as_tensor(x)
        if device.type == "cuda":
            x = x.pin_memory()
        return x.to(device, non_blocking=True)

    kw: dict[str, Any] = {"input_ids": t(batch["input_ids"]), "position_ids": t(batch["position_ids"]), "use_cache": False}
    if impl == "flex":
        seg = t(batch["seg_ids"])
        kw["attention_mask"] = document_block_mask(seg)
        if window is not None:
            kw["attention_mask"] = {"full_attention": kw["attention_mask"],
                                    "sliding_attention": document_block_mask(seg, window)}
    elif impl == "varlen":
        cu = t(batch["cu_seqlens"])
        mx = int(np.diff(np.asarray(batch["cu_seqlens"])).max())
        kw.update(cu_seq_lens_q=cu, cu_seq_lens_k=cu, max_length_q=mx, max_length_k=mx)
    return kw


# --- the probe --------------------------------------------------------------------------------


def check_isolation(model: Any, impl: str, pad_id: int, device: Any, autocast: Any) -> bool:
    """True if a document's outputs cannot depend on an earlier document in the same row."""
    from .data import Corpus, Packed

    gen = np.random.default_rng(0)
    vocab = model.get_input_embeddings().weight.shape[0]
    a, b = gen.integers(10, min(vocab, 1000), 11).tolist(), gen.integers(10, min(vocab, 1000), 9).tolist()
    packed = Packed(Corpus.build([a, b]), [[0, 1]], 24, pad_id)
    held: dict[str, Any] = {}

    def hook(mod: Any, inp: Any, out: Any) -> Any:
        out = out.detach().requires_grad_(True)
        held["emb"] = out
        return out

    def probe(eager: bool) -> None:
        handle = model.get_input_embeddings().register_forward_hook(hook)
        was_training = model.training
        model.eval()
        _EAGER["on"] = eager
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                kw = model_inputs(impl, packed.batch([0]), device, sliding_window(model.config))
                with autocast():
                    logits = model(**kw).logits
                logits[0, len(a):len(a) + len(b)].float().square().sum().backward()
        finally:
            _EAGER["on"] = False
            handle.remove()
            model.train(was_training)
            model.zero_grad(set_to_none=True)

    try:
        probe(eager=True)
    except Exception:
        if not (impl == "flex" and device.type == "cuda"):
            raise
        probe(eager=False)  # an eager flex backward this torch cannot do: probe with the compiled kernel
    g = held["emb"].grad[0].float().abs().sum(-1)
    leak = float(g[:len(a)].max())
    if float(g[len(a):len(a) + len(b)].max()) == 0.0:
        raise RuntimeError("attention probe: no gradient reached the document itself; the probe is broken")
    return leak == 0.0


def warn_crossing(impl: str) -> None:
    print(f"msm: warning: attention '{impl}' does not keep packed documents apart in this model: each "
          "document also attends to the documents before it in its row (positions still restart at 0). "
          "Training still works, but every document is learned with unrelated text as context, and loss "
          "values are not comparable to unpacked training. Use --attn varlen (or flex on a GPU) to keep "
          "documents apart.", file=sys.stderr)
