"""gpt-oss "harmony" messages: a tool call is a commentary-channel message addressed to `functions.NAME`,
its arguments after `<|message|>` and its end at the `<|call|>` token. The recipient may stand before the
channel (`<|start|>assistant to=functions.NAME<|channel|>commentary json<|message|>`) or after it
(`<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>`). Analysis-channel messages are
private reasoning (`private.py`); `final` messages hold no calls.

Read here from the decoded text. OpenAI's `openai-harmony` parses token ids, not text, and loads its
tokenizer's vocabulary from the network on first use, which a cluster node or a laptop offline cannot
do; the message grammar is small enough to read directly.
"""

from __future__ import annotations

import re

from .common import Context, Found, fields_from_mapping, json_at_start

NAME = "harmony"
START = r"<\|start\|>\s*assistant\s+to=|<\|channel\|>\s*commentary\s+to="
EXAMPLE = ('<|channel|>analysis<|message|>Thinking.<|end|><|start|>assistant<|channel|>commentary '
           'to=functions.cancel_alert <|constrain|>json<|message|>{"code": "HALT-5183"}<|call|>')

_HEADER = re.compile(
    r"(?:<\|start\|>\s*assistant(?:\s+to=(?P<to1>[A-Za-z_][\w.]*))?\s*)?<\|channel\|>\s*commentary"
    r"(?:\s+to=(?P<to2>[A-Za-z_][\w.]*))?(?:\s*<\|constrain\|>\s*\w+|\s+\w+)?\s*<\|message\|>")
_END = re.compile(r"<\|call\|>|<\|end\|>|<\|return\|>|(?=<\|start\|>)|(?=<\|channel\|>)")


def read(ctx: Context) -> list[Found]:
    out = []
    for m in _HEADER.finditer(ctx.text):
        name = m.group("to1") or m.group("to2")
        if not name:
            continue  # a commentary message with no recipient is a preamble, not a call
        end = _END.search(ctx.text, m.end())
        stop = end.start() if end else len(ctx.text)
        closed = bool(end and end.group(0) == "<|call|>")
        obj = json_at_start(ctx.text[m.end():stop])
        if not isinstance(obj, dict):
            continue
        # vLLM stops at <|call|> and may leave the token out of the text: a call the reply ended on, or that
        # another message follows, ran; one closed by <|end|> or <|return|> was not a call
        complete = closed or ((end is None or end.group(0) == "") and ctx.complete(stop, False))
        out.append(ctx.found(name, fields_from_mapping(obj), NAME, m.start(), end.end() if end else stop, closed=closed,
                             complete=complete))
    return out
