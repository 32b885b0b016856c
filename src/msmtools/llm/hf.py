"""transformers backend: batched `generate` with left padding and a seed per sampled sequence.

Sampling is done by a logits processor that draws each row's token from that row's own
`torch.Generator` (Gumbel-max, with the arithmetic batched), and `generate` itself runs greedily
over the result. So sample j of a request with seed s gets the same random stream (seed s + j)
whatever else is in its batch, which a single global seed cannot give. Batches are formed from requests
of similar prompt length to waste little padding. A request with many samples (at least half a batch,
as am-eval sends them) is batched on its own and its prompt is prefilled once: on a CPU, reading a long
prompt is most of a sample's cost. Its decode steps then attend to that one copy of the prompt's KV
cache (`shared_prefix`) rather than a copy per row.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import models
from ..ids import stable_id
from . import shared_prefix
from .base import (PLAIN, PLAIN_STOPS, Completion, OptionAsk, Request, ScoreItem, make_completion, opens_reasoning,
                   prompt_format, render_prompt)


_LONG = 256  # prompt tokens from which a padded batch is prefilled prompt by prompt


def _row_sampler(seeds: list[int], temperature: float, top_p: float, device: Any):
    import torch
    from transformers import LogitsProcessor

    class RowSampler(LogitsProcessor):
        def __init__(self) -> None:
            self.gens = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]

        def __call__(self, input_ids, scores):
            if temperature <= 0:
                return scores
            logits = scores.float() / temperature
            if top_p < 1.0:
                sorted_logits, idx = torch.sort(logits, descending=True, dim=-1)
                cum = torch.softmax(sorted_logits, dim=-1).cumsum(-1)
                drop = cum - torch.softmax(sorted_logits, dim=-1) > top_p
                sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
                logits = torch.full_like(logits, float("-inf")).scatter(1, idx, sorted_logits)
            # Gumbel-max: argmax(logits + Gumbel noise) is a draw from softmax(logits). Only the
            # uniforms come from each row's generator; the rest is batched. (A per-row
            # torch.multinomial loop cost about 12% of a batch-16 step on CPU.) Inverse-CDF sampling
            # would be cheaper still, but a tiny change in any logit shifts every later CDF boundary,
            # so batched and single runs drifted apart; a race between tokens flips only on near-ties.
            u = torch.stack([torch.rand(logits.shape[-1], generator=g, device=g.device) for g in self.gens])
            picks = logits.sub_(u.log_().neg_().log_()).argmax(dim=-1, keepdim=True)
            out = torch.full_like(scores, float("-inf"))
            out.scatter_(1, picks, 0.0)
            return out

    return RowSampler()


class HFBackend:
    name = "hf"

    def __init__(self, model: str = models.DEFAULT, *, batch_size: int = 16, dtype: str = "auto",
                 device: str | None = None, trust_remote_code: bool = False, progress: bool = True,
                 ignore_eos: bool = False, share_prefix: bool = True, allow_pickle: bool = False):
        self.model = model
        self.batch_size = batch_size
        self.dtype = dtype
        self.device = device
        self.trust_remote_code = trust_remote_code
        self.allow_pickle = allow_pickle
        self.progress = progress
        self.ignore_eos = ignore_eos  # benchmarks only: every sequence runs to max_tokens (equal work)
        self.share_prefix = share_prefix  # benchmarks only: False copies a shared prompt's cache to every row
        self._model: Any = None
        self._tok: Any = None
        self._adapters: dict[str, str] = {}
        self._merged: tuple[str, Any] | None = None  # (adapter path, a copy of the model with it merged in)
        self._warned_template = False
        self._cascade = False  # shared-prefix attention available (set on load)

    # -- loading -------------------------------------------------------------------------------
    def _load(self) -> None:
        if self._model is not None:
            return
        import torch

        dtype = {"auto": None, "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}.get(self.dtype)
        self._model = models.load_model(self.model, dtype=dtype, device=self.device,
                                        trust_remote_code=self.trust_remote_code, allow_pickle=self.allow_pickle).eval()
        self.device = str(self._model.device)
        self._load_tokenizer()
        self._cascade = self.share_prefix and shared_prefix.enable(self._model)

    def _load_tokenizer(self) -> Any:
        if self._tok is None:
            tok = models.load_tokenizer(self.model, trust_remote_code=self.trust_remote_code)
            tok.padding_side = "left"
            self._tok = tok
        return self._tok

    @property
    def prompt_format(self) -> str:
        """How requests' messages become prompt text (`llm.base.prompt_format`): recorded by describe()."""
        return prompt_format(self._load_tokenizer())

    def _use_adapter(self, path: str | None) -> Any:
        """Select an adapter (loading it once); returns a context manager for adapter-free requests."""
        if path is None:
            if self._adapters:
                return self._model.disable_adapter()
            return contextlib.nullcontext()
        name = self._adapters.get(path)
        if name is None:
            from peft import PeftModel

            models.check_folder(Path(path), path, allow_pickle=self.allow_pickle)
            name = "a" + stable_id(path, length=12)
            if not self._adapters:
                self._model = PeftModel.from_pretrained(self._model, path, adapter_name=name).eval()
            else:
                self._model.load_adapter(path, adapter_name=name)
            self._adapters[path] = name
        self._model.set_adapter(name)
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def scoring_model(self, path: str | None) -> Iterator[Any]:
        """A plain forward model for scoring: the base, or a copy with the adapter merged into its weights.

        Unmerged LoRA (r64 on every projection) costs about half again a forward pass on CPU; a merged
        copy costs one model load per adapter and leaves the base weights untouched (merging in place and
        unmerging afterwards would not restore them bit for bit). One copy is kept: value-eval scores one
        variant at a time.
        """
        self._load()
        if path is None:
            with self._use_adapter(None):
                yield self._model
            return
        if self._merged is None or self._merged[0] != path:
            from peft import PeftModel

            models.check_folder(Path(path), path, allow_pickle=self.allow_pickle)
            self._merged = None
            base = models.load_model(self.model, dtype=self._model.dtype, device=self.device,
                                     trust_remote_code=self.trust_remote_code, allow_pickle=self.allow_pickle)
            self._merged = (path, PeftModel.from_pretrained(base, path).merge_and_unload().eval())
        yield self._merged[1]

    def render(self, messages: list[dict[str, str]]) -> str:
        """The prompt text: the tokenizer's chat template (a system turn folded into the first user turn when
        the template has no system role), or a plain transcript for base models (`llm.base.render_prompt`)."""
        self._load()
        prompt, fmt = render_prompt(self._tok, messages)
        if fmt == PLAIN and not self._warned_template:
            print(f"msm: warning: {self.model} has no chat template; using a plain 'Role: text' transcript", file=sys.stderr)
            self._warned_template = True
        return prompt

    # -- scoring (base.Scorer) -----------------------------------------------------------------
    def continuation_logprobs(self, items: list[ScoreItem], *, batch_size: int | None = None
                              ) -> list[tuple[float, int]]:
        from .logprobs import hf_continuations

        self._load()
        return hf_continuations(self._tok, self.render, self.scoring_model, items, batch_size or self.batch_size)

    def option_logprobs(self, asks: list[OptionAsk], *, batch_size: int | None = None
                        ) -> list[tuple[list[float], list[tuple[float, int]]]]:
        from .logprobs import hf_options

        self._load()
        return hf_options(self._tok, self.render, self.scoring_model, asks, batch_size or self.batch_size)

    # -- generation ----------------------------------------------------------------------------
    def _check_context(self, requests: list[Request], lengths: dict[int, int]) -> None:
        """Refuse a token limit the model cannot reach before any memory is set aside for it."""
        from ..errors import MsmError

        limit = getattr(self._model.config, "max_position_embeddings", None)
        if not limit:
            return
        for ri, r in enumerate(requests):
            if r.sampling.max_tokens < 1:
                raise MsmError(f"--max-tokens {r.sampling.max_tokens}: must be at least 1")
            if lengths[ri] + r.sampling.max_tokens > limit:
                raise MsmError(f"--max-tokens {r.sampling.max_tokens}: a {lengths[ri]}-token prompt plus that many "
                               f"new tokens exceeds {models.label(self.model)}'s context of {limit} positions; "
                               f"use at most {max(1, limit - lengths[ri])}")

    def generate(self, requests: list[Request], *, desc: str | None = None) -> list[list[Completion]]:
        import torch
        from tqdm import tqdm
        from transformers import GenerationConfig

        self._load()
        prompts = [self.render(r.messages) for r in requests]
        # A base model (plain prompt format) writes the next turn after its answer: end it at the turn marker.
        extra_stops = PLAIN_STOPS if self.prompt_format == PLAIN and not self.ignore_eos else ()
        opened = [opens_reasoning(p) for p in prompts]  # the template opened <think>: output starts as reasoning
        items = [(ri, j) for ri, r in enumerate(requests) for j in range(r.sampling.n)]
        lengths = {ri: len(self._tok(p, add_special_tokens=False)["input_ids"]) for ri, p in enumerate(prompts)}
        self._check_context(requests, lengths)

        def group_key(it: tuple[int, int]) -> tuple:
            s = requests[it[0]].sampling
            return (requests[it[0]].adapter or "", s.temperature, s.top_p, s.max_tokens)

        items.sort(key=lambda it: (group_key(it), -lengths[it[0]], it))
        results: list[list[Completion | None]] = [[None] * r.sampling.n for r in requests]
        eos = self._model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) | {self._tok.eos_token_id}
        eos_ids.discard(None)
        bar = tqdm(total=len(items), desc=desc or "generate", unit="seq", file=sys.stderr,
                   disable=not self.progress, leave=False)
        i = 0
        while i < len(items):
            key = group_key(items[i])
            chunk = [items[i]]
            # A request whose samples fill at least half a batch gets chunks of its own, so its prompt is
            # read once; smaller ones share chunks with other requests, so decode steps are shared instead.
            own = self._own_chunks(requests[items[i][0]])
            while len(chunk) < self.batch_size and i + len(chunk) < len(items) and group_key(items[i + len(chunk)]) == key:
                nxt = items[i + len(chunk)]
                if (own or self._own_chunks(requests[nxt[0]])) and nxt[0] != chunk[0][0]:
                    break
                if nxt[0] != chunk[-1][0] and len(chunk) + requests[nxt[0]].sampling.n > self.batch_size:
                    break  # a request's samples stay in one batch when they fit: its prompt is read once
                chunk.append(nxt)
            i += len(chunk)
            req0 = requests[chunk[0][0]]
            s = req0.sampling
            seeds = [requests[ri].sampling.seed + j for ri, j in chunk]
            enc = self._tok([prompts[ri] for ri, _ in chunk], return_tensors="pt", padding=True,
                            add_special_tokens=False).to(self.device)
            cfg = GenerationConfig(max_new_tokens=s.max_tokens, do_sample=False, num_beams=1,
                                   min_new_tokens=s.max_tokens if self.ignore_eos else None,
                                   pad_token_id=self._tok.pad_token_id, eos_token_id=sorted(eos_ids),
                                   stop_strings=list(extra_stops) or None)
            with self._use_adapter(req0.adapter), torch.inference_mode():
                kw: dict[str, Any] = dict(enc)
                cache, one_copy = self._prefill(enc, [ri for ri, _ in chunk], s.max_tokens)
                if cache is not None:
                    kw["past_key_values"] = cache
                with shared_prefix.active(one_copy):
                    if extra_stops:
                        kw["tokenizer"] = self._tok  # for stop_strings
                    out = self._model.generate(**kw, generation_config=cfg, logits_processor=[
                        _row_sampler(seeds, s.temperature, s.top_p, self.device)])
            new = out[:, enc["input_ids"].shape[1]:].tolist()
            for (ri, j), toks, seed in zip(chunk, new, seeds):
                n_gen = len(toks)
                for k, t in enumerate(toks):
                    if t in eos_ids:
                        n_gen = k
                        break
                raw = self._tok.decode(toks[:n_gen], skip_special_tokens=True)
                raw, stopped = _apply_stop(raw, requests[ri].sampling.stop + extra_stops)
                if stopped and extra_stops:  # a row ended by a stop string is padded to the batch's length
                    while n_gen and toks[n_gen - 1] == self._tok.pad_token_id:
                        n_gen -= 1
                hit_limit = n_gen >= s.max_tokens
                results[ri][j] = make_completion(raw, hit_limit=hit_limit and not stopped, index=j, seed=seed,
                                                 prompt_tokens=lengths[ri], completion_tokens=n_gen,
                                                 opened=opened[ri])
            bar.update(len(chunk))
        bar.close()
        return [[c for c in row if c is not None] for row in results]

    def _prefill(self, enc: Any, rows: list[int], max_tokens: int) -> tuple[Any, Any]:
        """Read each distinct prompt of a batch once (all but its last token), before `generate` decodes.

        Rows come as k samples of each of R prompts in turn. With shared-prefix attention the cache
        keeps one copy per prompt (returned twice: as the cache and as the one to attend to); without
        it, a single prompt's cache is copied to its rows. Otherwise (None, None): `generate` prefills.
        """
        ids, mask = enc["input_ids"], enc["attention_mask"]
        prompts = len(dict.fromkeys(rows))
        k = len(rows) // prompts
        if ids.shape[1] < 2 or any(rows[i] != rows[i - i % k] for i in range(len(rows))):
            return None, None  # nothing to prefill, or unequal sample counts
        if not self._cascade and (prompts > 1 or k < 2):
            return None, None
        ids, mask = ids[::k, :-1], mask[::k, :-1]
        cache = None
        if ids.shape[1] >= _LONG and not bool(mask.all()):
            # Padded long prompts are read one at a time: sdpa's causal kernel runs only without a mask,
            # and a masked batch of three 2k-token prompts took longer than the three alone (CPU).
            cache = shared_prefix.stack([self._model(input_ids=row[m.bool()][None], use_cache=True).past_key_values
                                         for row, m in zip(ids, mask)], ids.shape[1])
        if cache is None:
            positions = (mask.long().cumsum(-1) - 1).masked_fill_(mask == 0, 1)  # as `generate` numbers padded rows
            cache = self._model(input_ids=ids, attention_mask=mask, position_ids=positions,
                                use_cache=True).past_key_values
        one_copy = shared_prefix.share(cache, k, max_tokens + 1, mask) if self._cascade else None
        if one_copy is None:
            cache.batch_repeat_interleave(k)
        return cache, one_copy

    def _own_chunks(self, r: Request) -> bool:
        return r.sampling.n > 1 and 2 * r.sampling.n >= self.batch_size

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": models.label(self.model), "model_path": self.model,
                "dtype": self.dtype, "prompt_format": self.prompt_format}

    def close(self) -> None:
        self._model = None


def _apply_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    cut = min((text.find(s) for s in stops if s and s in text), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
