"""`<tool_call> ... </tool_call>` as Qwen2.5/Qwen3 and Hermes write it: a JSON call (`arguments` an object or
a JSON string; loose JSON repaired), Qwen3-Coder's `<function=NAME><parameter=KEY>` inside, or GLM-4.5's
name line followed by `<arg_key>`/`<arg_value>` pairs. Seed-OSS's `<seed:tool_call>` is the same block."""

from __future__ import annotations

import re

from .common import Context, Found, calls_from_json, clean, fields_from_mapping, json_at_start

NAME = "tool_call"
START = r"<\s*(?:seed:)?tool_call\s*>"
EXAMPLE = '<tool_call>\n{"name": "cancel_alert", "arguments": {"code": "HALT-5183"}}\n</tool_call>'

_BLOCK = re.compile(r"<\s*(?P<ns>seed:)?tool_call\s*>(.*?)(<\s*/\s*(?:seed:)?tool_call\s*>|(?=<\s*(?:seed:)?tool_call\s*>)"
                    r"|(?=<\s*tool_use\b)|\Z)", re.S | re.I)
FUNCTION = re.compile(r"<\s*function\s*=\s*([A-Za-z_][A-Za-z0-9_.]*)\s*>(.*?)(<\s*/\s*function\s*>|\Z)", re.S | re.I)
PARAM = re.compile(r"<\s*parameter\s*=\s*([A-Za-z_][A-Za-z0-9_]*)\s*>(.*?)(?:<\s*/\s*parameter\s*>|(?=<\s*parameter\s*=)|\Z)",
                   re.S | re.I)
_GLM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\n?\s*(?=<\s*arg_key\s*>)", re.S)
_GLM_PAIR = re.compile(r"<\s*arg_key\s*>(.*?)<\s*/\s*arg_key\s*>\s*<\s*arg_value\s*>(.*?)(?:<\s*/\s*arg_value\s*>|\Z)", re.S)


def read(ctx: Context) -> list[Found]:
    out = []
    for m in _BLOCK.finditer(ctx.text):
        closed, body = bool(m.group(3)), m.group(2)
        fmt = "seed-oss" if m.group("ns") else NAME
        fn = FUNCTION.search(body)
        if fn:
            params = {k: clean(v) for k, v in PARAM.findall(fn.group(2))}
            complete = bool(fn.group(3)) or ctx.complete(m.end(), closed)
            out.append(ctx.found(fn.group(1), fields_from_mapping(params), fmt if fmt != NAME else "qwen-xml",
                                 m.start(), m.end(), closed=closed, complete=complete))
            continue
        glm = _GLM.match(body)
        if glm:
            params = {clean(k): clean(v) for k, v in _GLM_PAIR.findall(body)}
            out.append(ctx.found(glm.group(1), fields_from_mapping(params), "glm", m.start(), m.end(), closed=closed,
                                 complete=closed or ctx.complete(m.end(), False)))
            continue
        obj = json_at_start(body)  # repaired only over a balanced extent: a cut-off call stays unread
        for name, args in calls_from_json(obj):
            out.append(ctx.found(name, fields_from_mapping(args), fmt, m.start(), m.end(), closed=closed, complete=True))
    return out

