from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import make_tiny_model  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random Llama model with the embedded tokenizer (fast unit tests)."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def default_model() -> Path:
    """The embedded SmolLM2-135M-Instruct converted to safetensors (end-to-end tests)."""
    from msmtools import models

    return models.ensure_default_model()
