"""Keep secrets (API keys) out of every message, record and log line msmtools writes.

A backend that reads a key registers it here; `scrub` replaces the key (and any run of 8 or more of its
leading characters, in case a server echoes it cut short), `Bearer <token>` and `Authorization:` header
values. `clip` scrubs *then* shortens: cutting first could keep a fragment of the key that no longer
matches. Every message that comes from outside (a server's error body, a reply that is not JSON) goes
through `clip` before it is kept anywhere, and the CLI scrubs its own error line as a last guard.
"""

from __future__ import annotations

import re

_SECRETS: set[str] = set()
_BEARER = re.compile(r"(?i)\b(bearer\s+|authorization[\"']?\s*[:=]\s*[\"']?(?:bearer\s+)?|api[_-]?key[\"']?\s*[:=]\s*[\"']?)([^\s\"',;}]+)")
MIN_FRAGMENT = 8
REDACTED = "[redacted]"


def register(secret: str | None) -> None:
    """Remember a secret so that `scrub` removes it; short values are ignored (they would match words)."""
    if secret and len(secret) >= MIN_FRAGMENT:
        _SECRETS.add(secret)


def _strip_secret(text: str, secret: str) -> str:
    head = secret[:MIN_FRAGMENT]
    out, pos = [], 0
    while True:
        i = text.find(head, pos)
        if i < 0:
            out.append(text[pos:])
            return "".join(out)
        j = i + MIN_FRAGMENT
        k = MIN_FRAGMENT
        while j < len(text) and k < len(secret) and text[j] == secret[k]:
            j, k = j + 1, k + 1
        out.append(text[pos:i] + REDACTED)
        pos = j


def scrub(text: str) -> str:
    if not text:
        return text
    for s in _SECRETS:
        text = _strip_secret(text, s)
    return _BEARER.sub(lambda m: m.group(0) if m.group(2) == REDACTED else m.group(1) + REDACTED, text)


def clip(text: str, limit: int) -> str:
    """Scrub, then shorten to `limit` characters (with an ellipsis)."""
    t = scrub(text)
    return t if len(t) <= limit else t[: limit - 3] + "..."
