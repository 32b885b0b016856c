"""Mistral: `[TOOL_CALLS] [{"name", "arguments"}]` (older models) or `[TOOL_CALLS]NAME[ARGS]{...}` (newer)."""

from __future__ import annotations

import re

from .common import Context, Found, calls_from_json, fields_from_mapping, json_at

NAME = "mistral"
START = r"\[TOOL_CALLS\]"
EXAMPLE = '[TOOL_CALLS] [{"name": "cancel_alert", "arguments": {"code": "HALT-5183"}}]'

_TAG = re.compile(r"\[TOOL_CALLS\]\s*")
_ARGS = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*)\s*\[ARGS\]\s*")


def read(ctx: Context) -> list[Found]:
    out = []
    for m in _TAG.finditer(ctx.text):
        pos = m.end()
        while True:
            a = _ARGS.match(ctx.text, pos)
            got = json_at(ctx.text, a.end() if a else pos)
            if got is None:
                break
            obj, stop = got
            calls = [(a.group(1), obj)] if a and isinstance(obj, dict) else ([] if a else calls_from_json(obj))
            for name, args in calls:
                out.append(ctx.found(name, fields_from_mapping(args), NAME, m.start() if pos == m.end() else pos, stop,
                                     closed=True, complete=True))
            nxt = re.match(r"\s*(?:\[TOOL_CALLS\]\s*)?(?=[A-Za-z_][A-Za-z0-9_.]*\s*\[ARGS\])", ctx.text[stop:])
            if not (a and nxt):
                break
            pos = stop + nxt.end()
    return out
