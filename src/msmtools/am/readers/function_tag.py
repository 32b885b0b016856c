"""`<function=NAME>...</function>` outside a `<tool_call>` block: Llama 3.1's custom tool format with a JSON
object inside, or Qwen3-Coder/Seed-OSS `<parameter=KEY>value</parameter>` pairs written bare."""

from __future__ import annotations

import re

from .common import Context, Found, clean, fields_from_mapping, json_at_start
from .hermes import FUNCTION, PARAM

NAME = "llama-function"
START = r"<\s*function\s*=\s*[A-Za-z_]"
EXAMPLE = '<function=cancel_alert>{"code": "HALT-5183"}</function>'


def read(ctx: Context) -> list[Found]:
    out = []
    for m in FUNCTION.finditer(ctx.text):
        closed, body = bool(m.group(3)), m.group(2)
        if re.search(r"<\s*parameter\s*=", body):
            params = {k: clean(v) for k, v in PARAM.findall(body)}
            out.append(ctx.found(m.group(1), fields_from_mapping(params), "qwen-xml", m.start(), m.end(), closed=closed,
                                 complete=ctx.complete(m.end(), closed)))
            continue
        obj = json_at_start(body)
        if isinstance(obj, dict):
            out.append(ctx.found(m.group(1), fields_from_mapping(obj), NAME, m.start(), m.end(), closed=closed,
                                 complete=ctx.complete(m.end(), closed)))
    return out
