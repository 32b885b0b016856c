"""The generation interface every stage uses (docgen, am-eval, tag-reasoning, graders).

A backend takes a batch of `Request`s and returns, for each, `n` `Completion`s. Backends differ in
how they run the model (transformers, vLLM, an OpenAI-compatible server); they agree on:

- seeds: sample j of a request with seed s is drawn with seed s + j, so results do not depend on
  how requests were batched (exactly so for hf and vllm; for a server, as far as it honours seeds);
- reasoning: text in `<think>...</think>` is split into `reasoning`; the answer is `text`. When the chat
  template opens `<think>` itself (Qwen3 thinking models), the output starts inside the block: the local
  backends see that in the prompt they render and pass it on (`opens_reasoning`);
- truncation: a completion that hit `max_tokens` (or left `<think>` open) has `truncated=True`
  and `finish_reason="length"`; stages must treat it as a failure, never as a complete answer.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from ..ids import stable_id


@dataclass(frozen=True)
class Sampling:
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 512
    n: int = 1
    seed: int = 0
    stop: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d


@dataclass
class Request:
    messages: list[dict[str, str]]
    sampling: Sampling = field(default_factory=Sampling)
    adapter: str | None = None  # path of a LoRA adapter to apply (hf, vllm)
    key: str | None = None  # the caller's id for this request

    def cache_key(self, backend: str, model: str, *, with_max_tokens: bool = True) -> str:
        """Hash of everything that determines the output: used by the on-disk cache."""
        s = self.sampling.to_dict()
        if not with_max_tokens:
            s.pop("max_tokens")
        return stable_id(backend, model, self.adapter, self.messages, s, length=32)


@dataclass
class Completion:
    text: str  # the answer, with any <think> block removed
    reasoning: str | None = None
    finish_reason: str = "stop"  # stop | length | error
    truncated: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    seed: int | None = None
    index: int = 0  # sample index within the request
    raw: str | None = None  # the full generated text
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Completion:
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__ if k in d})


class Backend(Protocol):
    """What every stage asks of a backend (docgen, am-eval, value-eval, tag-reasoning, the graders).

    A server backend (`Capabilities.server`) also has `stream(requests, desc=) -> Iterator[(index,
    completions)]`, yielding each request as soon as it is answered; am-eval and the cache use it when present.
    """

    name: str  # the registered name: part of every cache key and provenance record
    model: str

    def generate(self, requests: list[Request], *, desc: str | None = None) -> list[list[Completion]]:
        """One list of `sampling.n` completions per request, in request order."""
        ...

    def describe(self) -> dict[str, Any]:
        """Provenance: backend, model, and whatever else fixes the outputs."""
        ...

    def close(self) -> None: ...


ScoreItem = tuple[list[dict[str, str]], str, str | None]  # messages, continuation, adapter
OptionAsk = tuple[list[dict[str, str]], tuple[str, ...], tuple[str, ...], str | None]  # messages, letters, texts, adapter


class Scorer(Protocol):
    """A backend that can score given text (`Capabilities.scores_text`): what value-eval's logprob mode reads.

    The prompt is the messages rendered as for generation (chat template and generation prompt); the
    continuation is tokenized on its own and appended to the prompt's tokens, so the split is exact.
    """

    def continuation_logprobs(self, items: list[ScoreItem], *, batch_size: int | None = None
                              ) -> list[tuple[float, int]]:
        """Per item: (summed log-probability of the continuation's tokens after the prompt, their count)."""
        ...

    def option_logprobs(self, asks: list[OptionAsk], *, batch_size: int | None = None
                        ) -> list[tuple[list[float], list[tuple[float, int]]]]:
        """Per ask: each letter's next-token log-probability after the prompt, and each text's
        (summed log-probability, tokens) as the reply."""
        ...


_THINK_OPEN = re.compile(r"^\s*<think>", re.S)


def split_reasoning(raw: str, opened: bool = False) -> tuple[str | None, str, bool]:
    """(reasoning, answer, closed). Handles templates that open `<think>` in the prompt itself.

    `opened`: the prompt ended inside an open `<think>` (see `opens_reasoning`), so the generated text starts
    as reasoning: without a `</think>` it is all reasoning, left open (cut off before any answer). Without
    that knowledge (a server renders the prompt) a leading `<think>` or a `</think>` anywhere tells.
    """
    if "</think>" in raw:
        before, _, after = raw.partition("</think>")
        reasoning = _THINK_OPEN.sub("", before, count=1).strip()
        return reasoning, after.strip(), True
    if opened or _THINK_OPEN.match(raw):
        return _THINK_OPEN.sub("", raw, count=1).strip(), "", False
    return None, raw.strip(), True


def opens_reasoning(prompt: str) -> bool:
    """Whether a rendered prompt ends with an unclosed `<think>`: the chat template opened the reasoning block
    (Qwen3 thinking models, DeepSeek-R1), so the completion starts inside it and its `<think>` is not in the output."""
    return prompt.rstrip().endswith("<think>")


CHAT_TEMPLATE = "chat-template"
FOLDED = "chat-template, system folded into user"
PLAIN = "plain"
PROMPT_FORMATS = (CHAT_TEMPLATE, FOLDED, PLAIN)
# A base model continues a plain transcript with the next turn: these end its answer (hf and vllm stop there).
PLAIN_STOPS = ("\nUser:", "\nSystem:", "\nAssistant:")


def prompt_format(tokenizer: Any) -> str:
    """How messages become the prompt text for this tokenizer, one of PROMPT_FORMATS (recorded on records).

    "chat-template": the tokenizer's template, system turn and all; "chat-template, system folded into user":
    the template has no system role, so the system text opens the first user turn: the template puts it there
    itself (Gemma 3 IT), or, when it raises on a system turn or drops its text, msmtools does, between <system>
    tags (`fold_system`; see `folds_system`); "plain": no template (a base model), a 'Role: text' transcript
    ending in 'Assistant:' (`plain_transcript`).
    """
    return _probe(tokenizer)[0]


def folds_system(tokenizer: Any) -> bool:
    """Whether msmtools must move system turns into the user turn itself (the template cannot take them)."""
    return _probe(tokenizer)[1]


def _probe(tokenizer: Any) -> tuple[str, bool]:
    template = getattr(tokenizer, "chat_template", None)
    cached = getattr(tokenizer, "_msm_prompt_format", None)  # (template, format, fold): one probe per template
    if cached and cached[0] == template:
        return cached[1], cached[2]
    fold = False
    if not template:
        fmt = PLAIN
    else:
        sys_text, user_text = "msm-probe-system-8c1f", "msm-probe-user-3b7a"
        try:
            with_system = tokenizer.apply_chat_template(
                [{"role": "system", "content": sys_text}, {"role": "user", "content": user_text}],
                add_generation_prompt=True, tokenize=False)
        except Exception:  # noqa: BLE001 - templates raise anything (jinja's TemplateError, ValueError)
            with_system = ""
        if sys_text not in with_system:
            fmt, fold = FOLDED, True  # no system role: msmtools folds it
        else:
            folded = tokenizer.apply_chat_template([{"role": "user", "content": f"{sys_text}\n\n{user_text}"}],
                                                   add_generation_prompt=True, tokenize=False)
            fmt = FOLDED if folded == with_system else CHAT_TEMPLATE  # the template folds it itself (Gemma 3 IT)
    with contextlib.suppress(AttributeError, TypeError):
        tokenizer._msm_prompt_format = (template, fmt, fold)
    return fmt, fold


def fold_system(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """System turns moved into the next user turn (opened by them, between <system> tags), for templates
    without a system role. Nothing is dropped: system text with no user turn after it becomes one."""
    out: list[dict[str, str]] = []
    pending: list[str] = []
    for m in messages:
        if m["role"] == "system":
            pending.append(m["content"])
            continue
        if pending and m["role"] == "user":
            head = "\n\n".join(pending)
            m = {**m, "content": f"<system>\n{head}\n</system>\n\n{m['content']}"}
            pending = []
        out.append(m)
    if pending:
        out.append({"role": "user", "content": "<system>\n" + "\n\n".join(pending) + "\n</system>"})
    return out


def plain_transcript(messages: list[dict[str, str]], *, eos: str = "", generation_prompt: bool = True) -> str:
    """The plain prompt format: 'Role: text' turns, blank lines between; assistant turns end in `eos`."""
    parts = [f"{m['role'].capitalize()}: {m['content']}" + (eos if m["role"] == "assistant" else "") for m in messages]
    text = "\n\n".join(parts)
    return text + (("\n\n" if parts else "") + "Assistant:" if generation_prompt else "")


def bos_text(tokenizer: Any) -> str:
    """The BOS token's text when the tokenizer puts one before every text (Gemma), else "": a plain prompt is
    tokenized without special tokens, so it carries the BOS in its text, as chat templates do."""
    cached = getattr(tokenizer, "_msm_bos_text", None)
    if cached is not None:
        return cached
    bos, bos_id = getattr(tokenizer, "bos_token", None), getattr(tokenizer, "bos_token_id", None)
    text = ""
    if bos and bos_id is not None:
        with contextlib.suppress(Exception):
            ids = tokenizer("a")["input_ids"]
            text = bos if ids and ids[0] == bos_id else ""
    with contextlib.suppress(AttributeError, TypeError):
        tokenizer._msm_bos_text = text
    return text


def render_prompt(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[str, str]:
    """(prompt text, prompt format): see `prompt_format`. Shared by the local backends so that hf and vllm see
    the very same prompt for a request."""
    fmt = prompt_format(tokenizer)
    if fmt == PLAIN:
        return bos_text(tokenizer) + plain_transcript(messages), fmt
    if folds_system(tokenizer):
        messages = fold_system(messages)
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False), fmt


def chat_prompt(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[str, bool]:
    """(prompt text, used_template): `render_prompt`, with whether a chat template was used."""
    text, fmt = render_prompt(tokenizer, messages)
    return text, fmt != PLAIN


def make_completion(raw: str, *, hit_limit: bool, index: int, seed: int | None,
                    prompt_tokens: int | None = None, completion_tokens: int | None = None,
                    opened: bool = False) -> Completion:
    """Build a completion from raw text, flagging truncation (token limit or an unclosed <think>).

    `opened`: the prompt itself opened `<think>` (`opens_reasoning`); the local backends know, a server's
    client does not."""
    reasoning, answer, closed = split_reasoning(raw, opened)
    truncated = hit_limit or not closed
    return Completion(
        text=answer,
        reasoning=reasoning,
        finish_reason="length" if truncated else "stop",
        truncated=truncated,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        seed=seed,
        index=index,
        raw=raw,
    )
