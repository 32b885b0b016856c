"""Backends by name: how each is built and what it can do, so that no code outside `llm/` asks for a name.

`register(name, factory, capabilities=...)` adds a backend; `create(name, model, **options)` builds one;
`capabilities(name)` answers what the rest of the code asks of it (is it a server whose requests overlap?
can it score given text? does it load local weights?). The built-in backends register factories that
import their module only when called, so `msm --help` and option checks never import torch or vLLM.

Adding a backend is one module with a class that follows `base.Backend` (and `base.Scorer`, if it can
score), plus one `register` call: docs/backends.md, "Adding a backend".
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import MsmError


@dataclass(frozen=True)
class Capabilities:
    """What the code outside `llm/` may rely on; each field answers one question it used to ask of a name."""

    server: bool = False  # remote: requests overlap, so grading can run beside generation
    scores_text: bool = False  # implements `base.Scorer`: log-likelihoods of given continuations
    local_weights: bool = False  # loads a local model, which `models.resolve` checks before a run starts
    fixed_batches: bool = False  # generates in batches of --batch-size: one batch is a full chunk of work


Factory = Callable[..., Any]  # factory(model, **options) -> a backend


@dataclass(frozen=True)
class Entry:
    factory: Factory
    capabilities: Capabilities
    summary: str = ""  # a few words for --backend's help: "transformers", "offline engine"


_REGISTRY: dict[str, Entry] = {}


def register(name: str, factory: Factory, *, capabilities: Capabilities, summary: str = "") -> None:
    """Make `name` a backend: `factory(model, **options)` builds it. A name registered again is replaced."""
    _REGISTRY[name] = Entry(factory, capabilities, summary)


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


@contextlib.contextmanager
def registered(name: str, factory: Factory, *, capabilities: Capabilities, summary: str = "") -> Iterator[None]:
    """`name` is this backend inside the block; what it was before (or nothing) afterwards. For tests."""
    before = _REGISTRY.get(name)
    register(name, factory, capabilities=capabilities, summary=summary)
    try:
        yield
    finally:
        if before is None:
            unregister(name)
        else:
            _REGISTRY[name] = before


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def unknown(name: str, flag: str = "--backend") -> MsmError:
    return MsmError(f"{flag} {name}: expected one of {', '.join(names())}")


def _entry(name: str) -> Entry:
    entry = _REGISTRY.get(name)
    if entry is None:
        raise unknown(name)
    return entry


def capabilities(name: str) -> Capabilities:
    return _entry(name).capabilities


def create(name: str, model: str, **options: Any) -> Any:
    """A new backend; options that are None are left to the backend's own defaults."""
    factory = _entry(name).factory
    return factory(model, **{k: v for k, v in options.items() if v is not None})


def choices_help() -> str:
    """'hf (transformers), vllm (offline engine) or openai (...)': the registered names, for --backend's help."""
    parts = [f"{n} ({e.summary})" if e.summary else n for n, e in _REGISTRY.items()]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def lazy(module: str, cls: str) -> Factory:
    """A factory that imports `module` when called and passes `cls` only the options its constructor takes
    (every backend receives the full set of backend flags; each knows a few)."""
    def factory(model: str, **options: Any) -> Any:
        klass = getattr(importlib.import_module(module), cls)
        params = inspect.signature(klass.__init__).parameters
        return klass(model, **{k: v for k, v in options.items() if k in params})

    factory.__qualname__ = f"lazy({module}:{cls})"
    return factory


register("hf", lazy("msmtools.llm.hf", "HFBackend"), summary="transformers",
         capabilities=Capabilities(scores_text=True, local_weights=True, fixed_batches=True))
register("vllm", lazy("msmtools.llm.vllm", "VLLMBackend"), summary="offline engine",
         capabilities=Capabilities(scores_text=True, local_weights=True))
register("openai", lazy("msmtools.llm.openai", "OpenAIBackend"),
         summary="an OpenAI-compatible server such as vllm serve", capabilities=Capabilities(server=True))
