"""Log-likelihood passes for the local backends (`base.Scorer`): the arithmetic on token ids, and hf's forward passes.

`HFBackend.option_logprobs` scores a prompt's answer options in one pass over the prompt: the
log-probability of each letter as the next token (from the prompt's last position) and, for each
option text, its summed log-probability as the continuation, the continuations reusing the prompt's
KV cache. That is the same number as scoring each (prompt + text) sequence alone, at about a third of
the cost. The prefix a batch's prompts share (the chat template's system turn) is also read once, and
an adapter is scored merged into a copy of the weights (`HFBackend.scoring_model`). vLLM's prefix cache
does the prompt sharing itself: it scores the flat list of continuations (`options_from_continuations`).

Continuations: the continuation is tokenized on its own and appended to the prompt's tokens, so the
split between prompt and answer is exact. hf runs padded forward passes; vLLM reads `prompt_logprobs`
of the whole sequence (one generated token, discarded).

The functions here take what a backend passes them (its tokenizer, its prompt renderer, its scoring
model); they never reach into a backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import MsmError
from .base import OptionAsk as Ask
from .base import ScoreItem as Item


def sequence_ids(tok: Any, prompt: str, continuation: str) -> tuple[list[int], int]:
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    c = tok(continuation, add_special_tokens=False)["input_ids"]
    if not c:
        raise MsmError(f"value-eval: the continuation {continuation[:40]!r} has no tokens")
    return p + c, len(c)


def hf_continuations(tok: Any, render: Callable[[list[dict[str, str]]], str], scoring_model: Callable[[str | None], Any],
                     items: list[Item], batch_size: int) -> list[tuple[float, int]]:
    """Padded forward passes over (prompt + continuation), grouped by adapter; `scoring_model(adapter)` is a
    context manager giving the model to run."""
    import torch

    out: list[tuple[float, int] | None] = [None] * len(items)
    order = sorted(range(len(items)), key=lambda i: (items[i][2] or "", i))
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    start = 0
    while start < len(order):
        adapter = items[order[start]][2]
        group = [i for i in order[start:start + batch_size] if items[i][2] == adapter]
        start += len(group)
        seqs = [sequence_ids(tok, render(items[i][0]), items[i][1]) for i in group]
        width = max(len(s) for s, _ in seqs)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, (s, _) in enumerate(seqs):  # right padding: positions stay 0.. for every row
            ids[r, :len(s)] = torch.tensor(s)
            mask[r, :len(s)] = 1
        with scoring_model(adapter) as model, torch.no_grad():
            logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        target = ids[:, 1:].to(logp.device)
        tok_lp = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        for r, (i, (s, n)) in enumerate(zip(group, seqs)):
            out[i] = (float(tok_lp[r, len(s) - 1 - n:len(s) - 1].sum()), n)
    return [x for x in out if x is not None]


def options_from_continuations(score: Callable[[list[Item]], list[tuple[float, int]]], asks: list[Ask]
                               ) -> list[tuple[list[float], list[tuple[float, int]]]]:
    """Options scored as plain continuations (each letter and each text after the prompt), for a backend
    without a one-pass option scorer."""
    flat: list[Item] = []
    for messages, letters, texts, adapter in asks:
        flat += [(messages, x, adapter) for x in (*letters, *texts)]
    scores = score(flat)
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


def hf_options(tok: Any, render: Callable[[list[dict[str, str]]], str], scoring_model: Callable[[str | None], Any],
               asks: list[Ask], batch_size: int, share_prefix: bool = True
               ) -> list[tuple[list[float], list[tuple[float, int]]]]:
    """One pass over each batch's prompts (their shared prefix read once), then every option text as a
    continuation reusing the prompts' KV cache."""
    import torch

    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    out: list[Any] = [None] * len(asks)
    order = sorted(range(len(asks)), key=lambda i: (asks[i][3] or "", i))
    start = 0
    while start < len(order):
        adapter = asks[order[start]][3]
        group = [i for i in order[start:start + batch_size] if asks[i][3] == adapter]
        start += len(group)
        prompts = [tok(render(asks[i][0]), add_special_tokens=False)["input_ids"] for i in group]
        shared = _shared_prefix(prompts) if share_prefix else 0
        suffixes = [p[shared:] for p in prompts]
        width = max(map(len, suffixes))
        ids = torch.full((len(group), width), pad, dtype=torch.long)
        smask = torch.zeros((len(group), width), dtype=torch.long)
        for r, p in enumerate(suffixes):  # left padding: every prompt ends in the last column
            ids[r, width - len(p):] = torch.tensor(p)
            smask[r, width - len(p):] = 1
        mask = torch.cat([torch.ones((len(group), shared), dtype=torch.long), smask], dim=1)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]
        with scoring_model(adapter) as model, torch.no_grad():
            dev = model.device
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
            letters = [float(last[r, first_token(tok, x)]) for x in asks[i][1]]
            scores = []
            for j in range(per):
                row, c = r * per + j, conts[r * per + j]
                lp = float(last[r, c[0]]) + sum(float(logp[row, t - 1, c[t]]) for t in range(1, len(c)))
                scores.append((lp, len(c)))
            out[i] = (letters, scores)
    return out


def first_token(tok: Any, text: str) -> int:
    ids = tok(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise MsmError(f"value-eval: {text!r} has no tokens")
    return ids[0]
