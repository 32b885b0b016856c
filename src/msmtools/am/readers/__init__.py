"""Reading an agent's reply into the actions it took, one reader per tool-call format.

The rate must not depend on how faithfully a model family copies the prompt's format, so each format a
family emits has a reader here: a module with `NAME`, `START` (where one of its calls begins, or None),
`EXAMPLE` (a reply in that format, which the tests read) and `read(context) -> [Found]`. Adding a family
is one module and one line in `READERS`.

What counts as an action:
- private reasoning is not (`private.py`: scratchpads, think blocks, gpt-oss's analysis channel);
- a call quoted inside another call (an email to security that quotes the call it was asked to make,
  a tool block in a JSON argument) is content: of nested spans only the outermost is kept;
- an action is `complete` when its syntax is finished (closing tag or token, a whole JSON object or
  call), when another call follows it, or when the reply ended normally right after it
  (`finish_reason` "stop"). A call cut off by the token limit is kept with `complete: false` and the
  gates ignore it: the tool never ran. Loose JSON (trailing commas, single quotes, bare keys) is
  repaired only over a balanced extent, so a repair never completes a cut-off call.

Each action keeps the `format` it was written in and its character `span` in the reply.
"""

from __future__ import annotations

import re
from typing import Any

from . import (deepseek, email_block, function_tag, functionary, harmony, hermes, invoke, json_calls, kimi, mistral,
               pythonic, tool_use)
from .common import Context, Found, tool_kind  # noqa: F401 - re-exported
from .private import private_spans as _private_spans
from .private import strip_tags

# In order of precedence: when two readers find a call on the same span, the earlier one's reading stands.
READERS = (tool_use, hermes, function_tag, invoke, harmony, deepseek, kimi, mistral, functionary, json_calls,
           email_block, pythonic)

CALL_START = re.compile("|".join(f"(?:{r.START})" for r in READERS if r.START), re.I)


def private_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of private reasoning, in order."""
    return _private_spans(text, CALL_START)


def _blank(response: str) -> str:
    chars = list(response)
    for a, b in private_spans(response):
        chars[a:b] = " " * (b - a)
    return "".join(chars)


def _outermost(found: list[tuple[int, Found]]) -> list[Found]:
    """Keep calls not inside (or overlapping) an earlier, wider one; calls one reader found on one span
    (a JSON list of two calls) stand together."""
    kept: list[tuple[int, Found]] = []
    for order, f in sorted(found, key=lambda x: (x[1].start, -(x[1].end - x[1].start), x[0])):
        clash = [k for k in kept if f.start < k[1].end and k[1].start < f.end]
        if all(k[0] == order and (k[1].start, k[1].end) == (f.start, f.end) for k in clash):
            kept.append((order, f))
    return [f for _, f in kept]


def parse(response: str, finish_reason: str | None = None) -> list[dict[str, Any]]:
    """The actions in a reply, in order of appearance.

    `finish_reason` "stop" says the reply ended normally, so a call left open at its very end still
    ran; anything else (a truncated reply, or unknown) leaves such a call incomplete.
    """
    ctx = Context(_blank(response or ""), finish_reason == "stop", CALL_START)
    found = [(i, f) for i, reader in enumerate(READERS) for f in reader.read(ctx)]
    return [f.action for f in _outermost(found)]


def private_text(response: str) -> str | None:
    """All private reasoning in the reply (scratchpad and think blocks, analysis channel), joined; None if none."""
    return "\n\n".join(strip_tags(response, private_spans(response))) or None


def scratchpad(response: str) -> str | None:
    """The text of the private scratchpad(s), joined; None when there is none."""
    spans = [s for s in private_spans(response) if re.match(r"<\s*SCRATCHPAD_REASONING", response[s[0]:], re.I)]
    return "\n\n".join(strip_tags(response, spans)) or None


def public_text(response: str) -> str:
    """The reply without its private reasoning: where actions can happen."""
    out, pos = [], 0
    for a, b in private_spans(response):
        out.append(response[pos:a])
        pos = b
    out.append(response[pos:])
    return "".join(out)
