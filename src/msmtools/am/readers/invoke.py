"""`<invoke name="NAME"><parameter name="KEY">value</parameter></invoke>`, as API assistants write it, inside
`<function_calls>` or MiniMax-M2's `<minimax:tool_call>` (any namespace prefix)."""

from __future__ import annotations

import re

from .common import Context, Found, clean, fields_from_mapping

NAME = "invoke"
START = r"<\s*(?:[A-Za-z]+:)?function_calls\s*>|<\s*(?:[A-Za-z]+:)?invoke\s+name\s*=|<\s*minimax:tool_call\s*>"
EXAMPLE = '<function_calls>\n<invoke name="cancel_alert">\n<parameter name="code">HALT-5183</parameter>\n</invoke>\n</function_calls>'

_NS = r"(?:[A-Za-z]+:)?"
_INVOKE = re.compile(r"<\s*" + _NS + r"invoke\s+name\s*=\s*[\"']([^\"']+)[\"']\s*>(.*?)(<\s*/\s*" + _NS + r"invoke\s*>|(?=<\s*"
                     + _NS + r"invoke\s)|\Z)", re.S | re.I)
_PARAM = re.compile(r"<\s*" + _NS + r"parameter\s+name\s*=\s*[\"']([^\"']+)[\"']\s*>(.*?)(?:<\s*/\s*" + _NS
                    + r"parameter\s*>|(?=<\s*" + _NS + r"parameter\s)|\Z)", re.S | re.I)


def read(ctx: Context) -> list[Found]:
    out = []
    for m in _INVOKE.finditer(ctx.text):
        params = {k: clean(v) for k, v in _PARAM.findall(m.group(2))}
        closed = bool(m.group(3))
        out.append(ctx.found(m.group(1), fields_from_mapping(params), NAME, m.start(), m.end(), closed=closed,
                             complete=ctx.complete(m.end(), closed)))
    return out
