"""Training data: documents and chats -> token items -> best-fit packed rows of fixed length.

Why packing: padding every batch to its longest member wastes about half the compute on a corpus
whose lengths spread like ours (lognormal, median ~600 tokens: 54% padding measured in the anchor
benchmark). Best-fit decreasing puts each item, longest first, into the row with the least room left
that still fits it; on that corpus over 99% of row tokens are real (benchmarks/train_packing.py).

What packing costs, stated plainly:
- an item longer than `seq_len` is cut to `seq_len` (its tail and EOS are lost; the count is reported
  as `truncated_tokens`); a chat that does not fit is dropped instead, since cutting it would train a
  reply without its end-of-turn token (`dropped_items`);
- positions restart at 0 for every item, and the attention layer keeps each item to itself
  (`attention.py`); the first token of an item is never a target, since nothing before it in the row
  belongs to it.

Targets are precomputed: `targets[p]` is the token at p+1 when that token belongs to the same item
and is trainable (every document token; assistant tokens of chats), else -100.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import jsonl
from ..errors import MsmError, at
from ..ids import canonical

IGNORE = -100


# --- items ------------------------------------------------------------------------------------


@dataclass
class Corpus:
    """Tokenized items, concatenated: item i is ids[offsets[i]:offsets[i+1]]."""

    ids: np.ndarray  # int32
    offsets: np.ndarray  # int64, n+1
    train: np.ndarray | None = None  # bool per token: token is a target; None = every token but each item's first
    truncated_tokens: int = 0
    dropped_items: int = 0
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def tokens(self) -> int:
        return int(self.offsets[-1])

    @classmethod
    def build(cls, items: Sequence[Sequence[int]], masks: Sequence[Sequence[bool]] | None = None, **kw: Any) -> Corpus:
        lens = np.fromiter((len(x) for x in items), dtype=np.int64, count=len(items))
        offsets = np.zeros(len(items) + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        ids = np.fromiter((t for x in items for t in x), dtype=np.int32, count=int(offsets[-1]))
        train = None
        if masks is not None:
            train = np.fromiter((bool(t) for m in masks for t in m), dtype=bool, count=int(offsets[-1]))
        return cls(ids, offsets, train, **kw)


def data_sha(records: Iterable[Any]) -> str:
    """sha256 over the canonical JSON of the training items, in input order."""
    h = hashlib.sha256()
    for r in records:
        h.update(canonical(r))
        h.update(b"\n")
    return h.hexdigest()


# --- midtrain: documents ----------------------------------------------------------------------


def read_docs(paths: Sequence[str]) -> list[str]:
    """The `text` of every record (any `kind` but errors; other fields ignored)."""
    texts: list[str] = []
    cut = 0
    for name, line, rec in jsonl.read_many(paths):
        if rec.get("kind") == "error":
            continue
        text = jsonl.field(rec, "text", str, (name, line))
        if not text.strip():
            raise at(name, line, "text", "empty document")
        texts.append(text)
        cut += rec.get("truncated") is True
    if not texts:
        raise MsmError(f"{', '.join(map(jsonl.display_name, paths))}: no documents (empty corpus)")
    _warn_cut(cut, len(texts), "documents")
    return texts


def _warn_cut(cut: int, total: int, what: str) -> None:
    if cut:
        print(f"msm: warning: {cut} of {total} {what} are marked truncated (cut off by the generator's token limit)",
              file=sys.stderr)


def tokenize_docs(tok: Any, texts: Sequence[str], seq_len: int, *, progress: bool = True) -> Corpus:
    """Tokenize (with the tokenizer's own BOS if it adds one), append EOS, cut at seq_len."""
    from tqdm import tqdm

    eos = tok.eos_token_id
    if eos is None:
        raise MsmError("tokenizer has no EOS token; cannot separate documents")
    items: list[list[int]] = []
    truncated = 0
    step = 512
    with tqdm(total=len(texts), desc="tokenize", unit="doc", file=sys.stderr, disable=not progress, leave=False) as bar:
        for i in range(0, len(texts), step):
            for ids in tok(list(texts[i:i + step]), add_special_tokens=True)["input_ids"]:
                if not ids or ids[-1] != eos:
                    ids.append(eos)
                if len(ids) > seq_len:
                    truncated += len(ids) - seq_len
                    ids = ids[:seq_len]
                items.append(ids)
            bar.update(min(step, len(texts) - i))
    return Corpus.build(items, truncated_tokens=truncated)


def token_budget(corpus: Corpus, max_tokens: int, seed: int) -> Corpus:
    """Exactly `max_tokens` tokens: items in seeded random order, the last one cut to fit."""
    if max_tokens <= 0:
        raise MsmError(f"--train-tokens {max_tokens}: must be positive")
    if corpus.tokens < max_tokens:
        raise MsmError(f"--train-tokens {max_tokens}: the corpus has only {corpus.tokens} tokens")
    order = np.random.default_rng(seed).permutation(corpus.n)
    lens = corpus.lengths()
    items, masks, total = [], [], 0
    for i in order:
        a, b = int(corpus.offsets[i]), int(corpus.offsets[i + 1])
        take = min(b - a, max_tokens - total)
        items.append(corpus.ids[a:a + take].tolist())
        if corpus.train is not None:
            masks.append(corpus.train[a:a + take].tolist())
        total += take
        if total == max_tokens:
            break
    out = Corpus.build(items, masks if corpus.train is not None else None,
                       truncated_tokens=corpus.truncated_tokens, dropped_items=corpus.dropped_items,
                       stats=dict(corpus.stats))
    out.stats["budget_items"] = len(items)
    out.stats["budget_cut_tokens"] = int(lens[order[len(items) - 1]]) - len(items[-1])
    return out


# --- aft: chats -------------------------------------------------------------------------------

_THINK = re.compile(r"<think>.*?</think>\s*", re.S)
ROLES = ("system", "user", "assistant")


def parse_chat(rec: dict, where: tuple[str, int], reasoning: str) -> list[dict[str, str]]:
    """Validated messages with the reasoning kept in (or stripped from) the last assistant turn."""
    msgs = jsonl.field(rec, "messages", list, where)
    out = []
    for k, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise at(where[0], where[1], f"messages[{k}]", "expected an object with role and content")
        role = jsonl.field(m, "role", str, where, parent=f"messages[{k}]")
        content = jsonl.field(m, "content", str, where, parent=f"messages[{k}]")
        if role not in ROLES:
            raise at(where[0], where[1], f"messages[{k}].role", f"{role!r}: expected one of {', '.join(ROLES)}")
        out.append({"role": role, "content": content})
    last = max((k for k, m in enumerate(out) if m["role"] == "assistant"), default=None)
    if last is None:
        raise at(where[0], where[1], "messages", "no assistant turn (nothing to train on)")
    thought = rec.get("reasoning")
    if thought is not None and not isinstance(thought, str):
        raise at(where[0], where[1], "reasoning", f"expected str, got {type(thought).__name__}")
    if reasoning == "strip":
        for m in out:
            if m["role"] == "assistant":
                m["content"] = _THINK.sub("", m["content"]).lstrip()
    elif thought and thought.strip() and "<think>" not in out[last]["content"]:
        out[last]["content"] = f"<think>\n{thought.strip()}\n</think>\n\n{out[last]['content']}"
    return out


def read_chats(paths: Sequence[str], reasoning: str) -> list[tuple[str, int, list[dict[str, str]]]]:
    chats = []
    cut = 0
    for name, line, rec in jsonl.read_many(paths):
        if rec.get("kind") == "error":
            continue
        chats.append((name, line, parse_chat(rec, (name, line), reasoning)))
        cut += rec.get("truncated") is True
    if not chats:
        raise MsmError(f"{', '.join(map(jsonl.display_name, paths))}: no chats (empty input)")
    _warn_cut(cut, len(chats), "chats")
    return chats


def parse_mix(specs: Sequence[str]) -> list[tuple[str, float]]:
    out = []
    for s in specs:
        path, sep, frac = s.rpartition(":")
        try:
            f = float(frac)
        except ValueError:
            f = -1.0
        if not sep or not path or not 0.0 < f < 1.0:
            raise MsmError(f"--mix {s!r}: expected FILE:fraction with 0 < fraction < 1, e.g. generic.jsonl:0.5")
        out.append((path, f))
    if sum(f for _, f in out) >= 1.0:
        raise MsmError("--mix: the fractions must add up to less than 1 (the rest is the main data)")
    return out


def mix_in(chats: list, mixes: list[tuple[str, float]], reasoning: str, seed: int) -> tuple[list, dict[str, int]]:
    """Add generic chats so that file i makes up fraction f_i of the final set (seeded sample)."""
    n_main = len(chats)
    rest = 1.0 - sum(f for _, f in mixes)
    counts = {}
    out = list(chats)
    for k, (path, f) in enumerate(mixes):
        pool = read_chats([path], reasoning)
        want = round(f / rest * n_main)
        if want > len(pool):
            print(f"msm: warning: --mix {path}: wanted {want} chats, the file has {len(pool)}; using all", file=sys.stderr)
            want = len(pool)
        idx = np.random.default_rng([seed, k]).permutation(len(pool))[:want]
        out.extend(pool[i] for i in sorted(idx))
        counts[path] = want
    return out, counts


class ChatRenderer:
    """Token ids and the assistant-only target mask of a chat, from the tokenizer's own chat template.

    Assistant spans are found by rendering prefixes: the text a turn adds after the generation prompt
    is the assistant's (its content and the template's end-of-turn marker). The text is tokenized in
    pieces cut at those spans, so a turn's prompt tokenizes as the generation prompt does at inference;
    characters map to tokens through the fast tokenizer's offsets. Models without a template get the
    plain transcript the hf backend prompts them with ("User: ...\\n\\nAssistant: ...") followed by EOS.
    """

    def __init__(self, tok: Any, stop_ids: Iterable[int]):
        self.tok = tok
        from ..llm.base import PLAIN, prompt_format

        self.stop_ids = {int(i) for i in stop_ids if i is not None}
        self.prompt_format = prompt_format(tok)  # as the backends prompt this model (recorded on the checkpoint)
        self.templated = self.prompt_format != PLAIN
        if not getattr(tok, "is_fast", False):
            raise MsmError("aft needs a fast (Rust) tokenizer for character offsets; this model has a slow one")

    def _render(self, msgs: list[dict], gen: bool) -> str:
        from ..llm.base import bos_text, fold_system, folds_system, plain_transcript

        if self.templated:
            if folds_system(self.tok):
                msgs = fold_system(msgs)
            return self.tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)
        return bos_text(self.tok) + plain_transcript(msgs, eos=self.tok.eos_token or "", generation_prompt=gen)

    def spans(self, msgs: list[dict]) -> tuple[str, list[tuple[int, int]]]:
        """The full text and the character spans of the assistant turns."""
        full = self._render(msgs, False)
        spans = []
        for k, m in enumerate(msgs):
            if m["role"] != "assistant" or k == 0:
                continue  # an opening assistant turn has no prompt to answer: not trained
            a = self._render(msgs[:k], True)
            b = full if k == len(msgs) - 1 else self._render(msgs[:k + 1], False)
            if not (b.startswith(a) and full.startswith(b)):
                continue  # this template rewrites earlier turns (e.g. drops their reasoning): train later turns only
            spans.append((len(a), len(b)))
        return full, spans

    def __call__(self, msgs: list[dict], where: tuple[str, int]) -> tuple[list[int], list[bool]]:
        full, spans = self.spans(msgs)
        # Tokenized piece by piece, cut where each assistant turn starts and ends: the prompt before a turn then
        # ends in the tokens the backends feed at inference, and no token straddles prompt and reply (a template
        # whose generation prompt opens `<think>\n` followed by a turn starting "\n</think>" would otherwise
        # train a merged "\n\n" token the model never sees after that prompt).
        cuts = sorted({0, len(full), *(c for span in spans for c in span)})
        ids, offs = [], []
        for a, b in zip(cuts, cuts[1:]):
            enc = self.tok(full[a:b], add_special_tokens=False, return_offsets_mapping=True)
            ids += enc["input_ids"]
            offs += [(x + a, y + a) for x, y in enc["offset_mapping"]]
        mask = [False] * len(ids)
        for s, e in spans:
            turn = [j for j, (a, b) in enumerate(offs) if b > s and a < e and b > a]
            if self.stop_ids:
                stops = [j for j in turn if ids[j] in self.stop_ids]
                if not stops:
                    raise at(where[0], where[1], "messages",
                             "the assistant turn's end-of-turn token is not inside the trained span "
                             f"(stop ids {sorted(self.stop_ids)}): the model would not learn to stop")
                turn = [j for j in turn if j <= stops[-1]]  # not the template's whitespace after it
            for j in turn:
                mask[j] = True
        if len(mask) > 0:
            mask[0] = False  # nothing predicts the first token of an item
        if not any(mask):
            raise at(where[0], where[1], "messages", "no assistant tokens in the rendered chat (empty loss mask)")
        return ids, mask


def tokenize_chats(renderer: ChatRenderer, chats: Sequence[tuple[str, int, list[dict]]], seq_len: int,
                   *, progress: bool = True) -> Corpus:
    from tqdm import tqdm

    items, masks, dropped = [], [], 0
    for name, line, msgs in tqdm(chats, desc="render chats", unit="chat", file=sys.stderr, disable=not progress, leave=False):
        ids, mask = renderer(msgs, (name, line))
        if len(ids) > seq_len:
            dropped += 1
            continue
        items.append(ids)
        masks.append(mask)
    if not items:
        raise MsmError(f"every chat is longer than --seq-len {seq_len} tokens; nothing left to train on")
    if dropped:
        print(f"msm: warning: dropped {dropped} of {len(chats)} chats longer than --seq-len {seq_len}", file=sys.stderr)
    return Corpus.build(items, masks, dropped_items=dropped)


def show_mask(tok: Any, ids: Sequence[int], mask: Sequence[bool], open_: str = "⟦", close: str = "⟧") -> str:
    """The rendered chat with trained tokens between markers."""
    out, run, state = [], [], None
    for t, m in zip(ids, mask):
        if state is not None and m != state:
            text = tok.decode(run)
            out.append(f"{open_}{text}{close}" if state else text)
            run = []
        run.append(t)
        state = m
    if run:
        text = tok.decode(run)
        out.append(f"{open_}{text}{close}" if state else text)
    return "".join(out)


# --- packing ----------------------------------------------------------------------------------


def best_fit(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Best-fit decreasing bin packing: item indices per bin, every bin's total <= capacity."""
    order = sorted(range(len(lengths)), key=lambda i: (-int(lengths[i]), i))
    room: list[tuple[int, int]] = []  # sorted (space left, bin)
    bins: list[list[int]] = []
    for i in order:
        n = int(lengths[i])
        if n > capacity:
            raise ValueError(f"item {i} has {n} tokens, more than the row length {capacity}")
        j = bisect.bisect_left(room, (n, -1))
        if j < len(room):
            left, b = room.pop(j)
        else:
            b, left = len(bins), capacity
            bins.append([])
        bins[b].append(i)
        if left - n > 0:
            bisect.insort(room, (left - n, b))
    return bins


@dataclass
class Packed:
    """A corpus packed into rows of `seq_len` tokens (the rows are not materialised until needed)."""

    corpus: Corpus
    bins: list[list[int]]
    seq_len: int
    pad_id: int

    @classmethod
    def pack(cls, corpus: Corpus, seq_len: int, pad_id: int) -> Packed:
        return cls(corpus, best_fit(corpus.lengths().tolist(), seq_len), seq_len, pad_id)

    @property
    def rows(self) -> int:
        return len(self.bins)

    def stats(self) -> dict[str, Any]:
        real = self.corpus.tokens
        slots = self.rows * self.seq_len
        return {"items": self.corpus.n, "rows": self.rows, "seq_len": self.seq_len, "real_tokens": real,
                "target_tokens": self.target_tokens(), "padding_fraction": 1 - real / slots if slots else 0.0,
                "truncated_tokens": self.corpus.truncated_tokens, "dropped_items": self.corpus.dropped_items}

    def target_tokens(self) -> int:
        if self.corpus.train is None:
            return self.corpus.tokens - self.corpus.n
        return int(self.corpus.train.sum())

    def batch(self, rows: Sequence[int | None]) -> dict[str, np.ndarray]:
        """Arrays for these rows (None = an all-padding row): input_ids, position_ids, targets,
        seg_ids (item number within the row; the padding tail is one more segment) and cu_seqlens
        (segment boundaries over the flattened batch, for variable-length attention)."""
        S, c = self.seq_len, self.corpus
        B = len(rows)
        inp = np.full((B, S), self.pad_id, dtype=np.int64)
        pos = np.zeros((B, S), dtype=np.int64)
        tgt = np.full((B, S), IGNORE, dtype=np.int64)
        seg = np.zeros((B, S), dtype=np.int32)
        cu = [0]
        for r, b in enumerate(rows):
            p = 0
            for k, i in enumerate(self.bins[b] if b is not None else ()):
                a, e = int(c.offsets[i]), int(c.offsets[i + 1])
                n = e - a
                ids = c.ids[a:e]
                inp[r, p:p + n] = ids
                pos[r, p:p + n] = np.arange(n)
                seg[r, p:p + n] = k
                if n > 1:
                    nxt = ids[1:]
                    keep = c.train[a + 1:e] if c.train is not None else True
                    tgt[r, p:p + n - 1] = np.where(keep, nxt, IGNORE)
                p += n
                cu.append(r * S + p)
            if p < S:
                pos[r, p:] = np.arange(S - p)
                seg[r, p:] = seg[r, p - 1] + 1 if p else 0
                cu.append((r + 1) * S)
        return {"input_ids": inp, "position_ids": pos, "targets": tgt, "seg_ids": seg,
                "cu_seqlens": np.asarray(cu, dtype=np.int32)}
