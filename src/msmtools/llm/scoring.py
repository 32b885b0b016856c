"""Log-likelihoods of given continuations: what value-eval's logprob mode reads.

Only a backend whose capabilities say `scores_text` can do it (it implements `base.Scorer`: the local
backends, hf and vllm; how each does it is in `llm/logprobs.py`). A server backend cannot score given
text: value-eval's generate mode is for served models. Through the call cache the wrapped backend
scores (scores are not cached).
"""

from __future__ import annotations

from typing import Any

from ..errors import MsmError
from . import backends
from .base import OptionAsk, ScoreItem, Scorer


def continuation_logprobs(backend: Any, items: list[ScoreItem], *, batch_size: int | None = None
                          ) -> list[tuple[float, int]]:
    """For each (messages, continuation, adapter): (summed log-probability of the continuation after the
    chat prompt, its token count)."""
    return _scorer(backend).continuation_logprobs(items, batch_size=batch_size)


def option_logprobs(backend: Any, asks: list[OptionAsk], *, batch_size: int | None = None
                    ) -> list[tuple[list[float], list[tuple[float, int]]]]:
    """For each (messages, letters, texts, adapter): the letters' next-token log-probabilities, and each
    text's (summed log-probability, tokens) as the reply."""
    return _scorer(backend).option_logprobs(asks, batch_size=batch_size)


def _scorer(backend: Any) -> Scorer:
    name = getattr(backend, "name", None)
    if name in backends.names() and backends.capabilities(name).scores_text:
        return backend
    local = " or ".join(n for n in backends.names() if backends.capabilities(n).scores_text)
    raise MsmError(f"value-eval --mode logprob needs a local model ({local} backend), not {name}: use --mode generate")
