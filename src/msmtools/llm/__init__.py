"""One generation interface, several backends. Import a backend only when it is asked for."""

from __future__ import annotations

from typing import Any

from ..errors import MsmError
from .base import Backend, Completion, Request, Sampling, make_completion, split_reasoning

BACKENDS = ("hf", "vllm", "openai")


def get_backend(name: str, model: str, **options: Any) -> Backend:
    """Build a backend by name; options that a backend does not take are ignored when None."""
    options = {k: v for k, v in options.items() if v is not None}
    if name == "hf":
        from .hf import HFBackend

        return HFBackend(model, **_only(options, HFBackend))
    if name == "vllm":
        from .vllm import VLLMBackend

        return VLLMBackend(model, **_only(options, VLLMBackend))
    if name == "openai":
        from .openai import OpenAIBackend

        return OpenAIBackend(model, **_only(options, OpenAIBackend))
    raise MsmError(f"--backend {name}: expected one of {', '.join(BACKENDS)}")


def _only(options: dict[str, Any], cls: type) -> dict[str, Any]:
    import inspect

    params = inspect.signature(cls.__init__).parameters
    return {k: v for k, v in options.items() if k in params}


__all__ = ["Backend", "Completion", "Request", "Sampling", "get_backend", "make_completion", "split_reasoning", "BACKENDS"]
