"""Content-derived identifiers and hashes, so reruns and shards agree on what a record is."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical(obj: Any) -> bytes:
    """Key-sorted JSON bytes: the same value always hashes the same."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def stable_id(*parts: Any, length: int = 16) -> str:
    """A short hex id derived from the given parts (any JSON-able values)."""
    return hashlib.sha256(canonical(list(parts))).hexdigest()[:length]
