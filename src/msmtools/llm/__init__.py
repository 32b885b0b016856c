"""One generation interface, several backends. Import a backend only when it is asked for."""

from __future__ import annotations

from typing import Any

from . import backends
from .base import Backend, Completion, Request, Sampling, Scorer, make_completion, split_reasoning


def get_backend(name: str, model: str, **options: Any) -> Backend:
    """Build a registered backend by name (`backends.register`); options it does not take are ignored, and
    None means the backend's own default. An unknown name is an MsmError listing the registered ones."""
    return backends.create(name, model, **options)


__all__ = ["Backend", "Completion", "Request", "Sampling", "Scorer", "backends", "get_backend", "make_completion",
           "split_reasoning"]
