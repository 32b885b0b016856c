"""Token counting with a named tokenizer (default: the embedded model's), without loading any model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import models


def counter(name: str = models.DEFAULT, *, trust_remote_code: bool = False) -> Callable[[str], int]:
    """A function text -> number of tokens (no BOS/EOS added)."""
    path = Path(models.resolve(name))
    if (path / "tokenizer.json").exists():
        # The bare `tokenizers` library: fast, and no transformers import.
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        return lambda text: len(tok.encode(text, add_special_tokens=False).ids)
    hf = models.load_tokenizer(name, trust_remote_code=trust_remote_code)
    return lambda text: len(hf(text, add_special_tokens=False)["input_ids"])
