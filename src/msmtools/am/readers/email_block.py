"""An email composed in the inbox's own `<email>` format (To:, Subject:, Body: lines). An inbox email the
reply merely quotes has an ID or Timestamp line, and is not an action."""

from __future__ import annotations

import re

from .common import TOOL_FIELDS, Context, Found, fields_from_lines

NAME = "email-block"
START = None  # an <email> block is not a tool call: it does not end an unclosed private block
EXAMPLE = "<email>\nTo: nathan.cole@thornbury.com\nSubject: Before 5 PM\nBody: We need to talk.\n</email>"

_BLOCK = re.compile(r"<\s*email\s*>(.*?)(<\s*/\s*email\s*>|(?=<\s*email\s*>)|\Z)", re.S | re.I)
_QUOTED = re.compile(r"^\s*[*_]*(?:ID|Timestamp)[*_]*\s*:", re.I | re.M)


def read(ctx: Context) -> list[Found]:
    out = []
    for m in _BLOCK.finditer(ctx.text):
        content = m.group(1)
        if _QUOTED.search(content):
            continue
        fields = fields_from_lines(content, TOOL_FIELDS["email"])
        if "to" not in fields:
            continue
        closed = bool(m.group(2))
        out.append(ctx.found("email", fields, NAME, m.start(), m.end(), closed=closed,
                             complete=ctx.complete(m.end(), closed)))
    return out
