"""Backends for roles (generator, grader, judge, tagger), built once per (backend, model, settings).

Every command that generates asks `Backends.get(opts, model)`; two roles with the same backend, model and
settings share one backend (one model in memory, one vLLM engine, one connection pool). `release` frees
the ones a run no longer needs (a vLLM engine holds its GPU memory until closed). With `cache` set, each
backend is wrapped in the on-disk call cache. Which backends exist, and what each can do, is `llm.backends`.
"""

from __future__ import annotations

import threading
from typing import Any

from . import backends
from .options import GenOptions


def build(opts: GenOptions, model: str, *, progress: bool = True) -> Any:
    """A new backend (no caching): the registered backend `opts.backend`."""
    return backends.create(opts.backend, model, **opts.backend_kwargs(), progress=progress)


def check_models(pairs: list[tuple[GenOptions, str | None]]) -> None:
    """Check each (options, model) whose backend loads a local model (folder, weights, remote code) before
    a command opens an output or imports torch: a typo fails in a fraction of a second, leaving nothing."""
    from .. import models

    for opts, name in dict.fromkeys(pairs):
        if name is not None and backends.capabilities(opts.backend).local_weights:
            models.resolve(name, trust_remote_code=opts.trust_remote_code, allow_pickle=opts.allow_pickle)


def _key(opts: GenOptions, model: str) -> tuple:
    return (model, *sorted(opts.backend_kwargs().items()), opts.backend)


class Backends:
    """The backends one command uses, each built once; closed together at the end."""

    def __init__(self, *, progress: bool = True, cache: str | None = None, chunk_size: int = 64):
        self.progress = progress
        self.cache = cache
        self.chunk_size = chunk_size
        self._made: dict[tuple, Any] = {}
        self._lock = threading.Lock()

    def get(self, opts: GenOptions, model: str) -> Any:
        key = _key(opts, model)
        with self._lock:  # grading threads may ask for the grader at the same moment
            return self._get(key, opts, model)

    def _get(self, key: tuple, opts: GenOptions, model: str) -> Any:
        if key not in self._made:
            b = build(opts, model, progress=self.progress)
            if self.cache:
                from .cache import CachedBackend

                b = CachedBackend(b, self.cache, chunk_size=max(1, self.chunk_size), progress=False)
            self._made[key] = b
        return self._made[key]

    def release(self, keep: list[Any]) -> None:
        """Close every backend except those in `keep`."""
        for key, b in list(self._made.items()):
            if any(b is k for k in keep):
                continue
            _close(b)
            del self._made[key]

    def close(self) -> None:
        for b in self._made.values():
            _close(b)
        self._made.clear()


def _close(b: Any) -> None:
    close = getattr(b, "close", None)
    if close is not None:
        close()
