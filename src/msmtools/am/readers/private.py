"""Private reasoning, which is never an action: scratchpad, think blocks, and gpt-oss's analysis channel.

- `<SCRATCHPAD_REASONING>`, `<think>` and `<thinking>` blocks, and everything before a `</think>` that
  has no opening tag (a chat template that opened the think block in the prompt). A block that is
  never closed ends where the first tool call after it begins: the model forgot to close it, and the
  call is what it did;
- a harmony (gpt-oss) message on the `analysis` channel, up to its `<|end|>` (or the next message).
"""

from __future__ import annotations

import re

_OPEN = re.compile(r"<\s*(SCRATCHPAD_REASONING|think|thinking)\s*>", re.I)
_LONE_THINK_CLOSE = re.compile(r"<\s*/\s*think\s*>", re.I)
_HARMONY_ANALYSIS = re.compile(r"(?:<\|start\|>\s*assistant\s*)?<\|channel\|>\s*analysis\s*<\|message\|>.*?"
                               r"(?:<\|end\|>|(?=<\|start\|>)|(?=<\|channel\|>)|\Z)", re.S)


def private_spans(text: str, call_start: re.Pattern) -> list[tuple[int, int]]:
    """Character spans of private reasoning, in order."""
    spans: list[tuple[int, int]] = []
    pos = 0
    first_open = _OPEN.search(text)
    lone = _LONE_THINK_CLOSE.search(text)
    if lone and (first_open is None or lone.start() < first_open.start()):
        spans.append((0, lone.end()))
        pos = lone.end()
    while True:
        m = _OPEN.search(text, pos)
        if not m:
            break
        tag = m.group(1)
        close = re.compile(r"<\s*/\s*" + re.escape(tag) + r"\s*>", re.I).search(text, m.end())
        if close:
            spans.append((m.start(), close.end()))
            pos = close.end()
            continue
        start = call_start.search(text, m.end())
        end = start.start() if start else len(text)
        spans.append((m.start(), end))
        pos = end
        if not start:
            break
    for m in _HARMONY_ANALYSIS.finditer(text):
        if not any(a <= m.start() < b for a, b in spans):
            spans.append(m.span())
    return sorted(spans)


def strip_tags(text: str, spans: list[tuple[int, int]]) -> list[str]:
    """The text inside each private span, without its tags."""
    out = []
    for a, b in spans:
        inner = text[a:b].strip()
        inner = re.sub(r"^(?:<\|start\|>\s*assistant\s*)?<\|channel\|>\s*analysis\s*<\|message\|>|<\|end\|>$", "", inner)
        inner = re.sub(r"^<\s*/?\s*[A-Za-z_]+\s*>|<\s*/\s*[A-Za-z_]+\s*>$", "", inner.strip()).strip()
        if inner:
            out.append(inner)
    return out
