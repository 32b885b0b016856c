"""Log-likelihoods of given continuations, on the local backends: what value-eval's logprob mode reads.

`option_logprobs(backend, asks)` scores a prompt's answer options in one pass over the prompt: the
log-probability of each letter as the next token (from the prompt's last position) and, for each
option text, its summed log-probability as the continuation, the continuations reusing the prompt's
KV cache (on hf; vLLM's prefix cache does the same). That is the same number as scoring each
(prompt + text) sequence alone, at about a third of the cost. On hf the prefix a batch's prompts share
(the chat template's system turn) is also read once, and an adapter is scored merged into a copy of
the weights (`HFBackend.scoring_model`).

`continuation_logprobs(backend, items)` takes (messages, continuation, adapter) triples and returns, for
each, the summed log-probability of the continuation's tokens after the chat prompt (the messages
rendered with the model's template and its generation prompt) and the number of those tokens. The
continuation is tokenized on its own and appended to the prompt's tokens, so the split between prompt
and answer is exact. hf runs padded forward passes; vLLM reads `prompt_logprobs` of the whole sequence
(one generated token, discarded). The openai backend cannot score given text: value-eval's generate
mode is for served models.
"""

from __future__ import annotations

from typing import Any

from ..errors import MsmError

Item = tuple[list[dict[str, str]], str, str | None]  # messages, continuation, adapter


def continuation_logprobs(backend: Any, items: list[Item], *, batch_size: int | None = None) -> list[tuple[float, int]]:
    name = getattr(backend, "name", None)
    inner = getattr(backend, "backend", backend)  # through a cache wrapper: scoring is not cached
    if getattr(inner, "name", name) == "hf":
        return _hf(inner, items, batch_size or getattr(inner, "batch_size", 16))
    if getattr(inner, "name", name) == "vllm":
        return _vllm(inner, items)
    raise MsmError(f"value-eval --mode logprob needs a local model (hf or vllm backend), not {name}: use --mode generate")


def _ids(tok: Any, prompt: str, continuation: str) -> tuple[list[int], int]:
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    c = tok(continuation, add_special_tokens=False)["input_ids"]
    if not c:
        raise MsmError(f"value-eval: the continuation {continuation[:40]!r} has no tokens")
    return p + c, len(c)


def _hf(b: Any, items: list[Item], batch_size: int) -> list[tuple[float, int]]:
    import torch

    b._load()
    tok, model = b._tok, b._model
    out: list[tuple[float, int] | None] = [None] * len(items)
    order = sorted(range(len(items)), key=lambda i: (items[i][2] or "", i))
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    start = 0
    while start < len(order):
        adapter = items[order[start]][2]
        group = [i for i in order[start:start + batch_size] if items[i][2] == adapter]
        start += len(group)
        seqs = [_ids(tok, b.render(items[i][0]), items[i][1]) for i in group]
        width = max(len(s) for s, _ in seqs)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, (s, _) in enumerate(seqs):  # right padding: positions stay 0.. for every row
            ids[r, :len(s)] = torch.tensor(s)
            mask[r, :len(s)] = 1
        with b.scoring_model(adapter) as model, torch.no_grad():
            logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        target = ids[:, 1:].to(logp.device)
        tok_lp = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        for r, (i, (s, n)) in enumerate(zip(group, seqs)):
            out[i] = (float(tok_lp[r, len(s) - 1 - n:len(s) - 1].sum()), n)
    return [x for x in out if x is not None]


def _vllm(b: Any, items: list[Item]) -> list[tuple[float, int]]:
    from pathlib import Path

    from vllm import SamplingParams
    from vllm.lora.request import LoRARequest

    from .base import chat_prompt
    from .vllm import lora_id

    adapters = {a for _, _, a in items if a}
    b._ensure(adapters)
    tok = b._llm.get_tokenizer()
    prompts, lens, loras = [], [], []
    for messages, cont, adapter in items:
        text, _ = chat_prompt(tok, messages)
        seq, n = _ids(tok, text, cont)
        prompts.append({"prompt_token_ids": seq})
        lens.append((len(seq), n))
        loras.append(LoRARequest(f"a{lora_id(adapter):x}", lora_id(adapter), str(Path(adapter).resolve()))
                     if adapter else None)
    params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
    outs = b._llm.generate(prompts, params, use_tqdm=False, lora_request=loras if b._lora_on else None)
    result = []
    for out, (total, n), p in zip(outs, lens, prompts):
        ids = p["prompt_token_ids"]
        lp = 0.0
        for pos in range(total - n, total):
            entry = out.prompt_logprobs[pos]
            lp += entry[ids[pos]].logprob
        result.append((lp, n))
    return result


Ask = tuple[list[dict[str, str]], tuple[str, ...], tuple[str, ...], str | None]  # messages, letters, texts, adapter


def option_logprobs(backend: Any, asks: list[Ask], *, batch_size: int | None = None
                    ) -> list[tuple[list[float], list[tuple[float, int]]]]:
    """For each (messages, letters, texts, adapter): the letters' next-token log-probabilities, and each
    text's (summed log-probability, tokens) as the reply."""
    inner = getattr(backend, "backend", backend)
    if getattr(inner, "name", None) == "hf":
        return _hf_options(inner, asks, batch_size or getattr(inner, "batch_size", 16))
    flat: list[Item] = []
    for messages, letters, texts, adapter in asks:
        flat += [(messages, x, adapter) for x in (*letters, *texts)]
    scores = continuation_logprobs(backend, flat)
    out, k = [], 0
    for _, letters, texts, _ in asks:
        out.append(([scores[k + i][0] for i in range(len(letters))], scores[k + len(letters):k + len(letters) + len(texts)]))
        k += len(letters) + len(texts)
    return out


MIN_SHARED = 8  # a shorter common prefix is not worth a separate pass


def _shared_prefix(prompts: list[list[int]]) -> int:
    """Tokens every prompt starts with, leaving each at least one token of its own (its last position
    gives the next-token distribution); 0 when fewer than MIN_SHARED."""
    first, n = prompts[0], min(map(len, prompts)) - 1
    k = 0
    while k < n and all(p[k] == first[k] for p in prompts):
        k += 1
    return k if k >= MIN_SHARED and len(prompts) > 1 else 0


def _hf_options(b: Any, asks: list[Ask], batch_size: int, share_prefix: bool = True
                ) -> list[tuple[list[float], list[tuple[float, int]]]]:
    import torch

    b._load()
    tok, model = b._tok, b._model
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    out: list[Any] = [None] * len(asks)
    order = sorted(range(len(asks)), key=lambda i: (asks[i][3] or "", i))
    start = 0
    while start < len(order):
        adapter = asks[order[start]][3]
        group = [i for i in order[start:start + batch_size] if asks[i][3] == adapter]
        start += len(group)
        prompts = [tok(b.render(asks[i][0]), add_special_tokens=False)["input_ids"] for i in group]
        shared = _shared_prefix(prompts) if share_prefix else 0
        suffixes = [p[shared:] for p in prompts]
        width = max(map(len, suffixes))
        ids = torch.full((len(group), width), pad, dtype=torch.long)
        smask = torch.zeros((len(group), width), dtype=torch.long)
        for r, p in enumerate(suffixes):  # left padding: every prompt ends in the last column
            ids[r, width - len(p):] = torch.tensor(p)
            smask[r, width - len(p):] = 1
        mask = torch.cat([torch.ones((len(group), shared), dtype=torch.long), smask], dim=1)
        dev = model.device
        pos = (mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]
        with b.scoring_model(adapter) as model, torch.no_grad():
            cache = None
            if shared:  # the prefix every prompt shares (the chat template's system turn): read once, then copied
                cache = model(input_ids=torch.tensor([prompts[0][:shared]], device=dev), use_cache=True,
                              logits_to_keep=1).past_key_values
                cache.batch_repeat_interleave(len(group))
            first = model(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev),
                          past_key_values=cache, use_cache=True,
                          logits_to_keep=1)  # only the next-token distribution: no vocab-sized logits per prompt token
            last = torch.log_softmax(first.logits[:, -1].float(), dim=-1)
            texts = [asks[i][2] for i in group]
            per = len(texts[0])
            conts = [tok(t, add_special_tokens=False)["input_ids"] for ts in texts for t in ts]
            if any(not c for c in conts):
                raise MsmError("value-eval: an option text has no tokens")
            cache = first.past_key_values
            cache.batch_repeat_interleave(per)
            length = max(map(len, conts))
            cids = torch.full((len(conts), length), pad, dtype=torch.long)
            cmask = torch.zeros((len(conts), length), dtype=torch.long)
            for r, c in enumerate(conts):
                cids[r, :len(c)] = torch.tensor(c)
                cmask[r, :len(c)] = 1
            full_mask = torch.cat([mask.repeat_interleave(per, 0), cmask], dim=1)
            cpos = mask.sum(-1, keepdim=True).repeat_interleave(per, 0) + torch.arange(length).unsqueeze(0)
            second = model(input_ids=cids.to(dev), attention_mask=full_mask.to(dev), position_ids=cpos.to(dev),
                           past_key_values=cache, use_cache=False)
            logp = torch.log_softmax(second.logits.float(), dim=-1)
        for r, i in enumerate(group):
            letters = [float(last[r, _first_token(tok, x)]) for x in asks[i][1]]
            scores = []
            for j in range(per):
                row, c = r * per + j, conts[r * per + j]
                lp = float(last[r, c[0]]) + sum(float(logp[row, t - 1, c[t]]) for t in range(1, len(c)))
                scores.append((lp, len(c)))
            out[i] = (letters, scores)
    return out


def _first_token(tok: Any, text: str) -> int:
    ids = tok(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise MsmError(f"value-eval: {text!r} has no tokens")
    return ids[0]
