"""JSON calls with no tags of their own: Llama 3 `{"name", "parameters"}` (bare or after `<|python_tag|>`),
OpenAI-style `{"tool_calls": [...]}`, lists of calls (xLAM, Granite's `<|tool_call|>[...]`, Phi-4,
Command-R's `Action: ```json [...]````), InternLM's plugin actions, fenced JSON. Loose JSON is repaired
over its balanced extent. Only calls naming a scenario tool are read here: prose full of braces is not a call."""

from __future__ import annotations

import re

import json

from .common import Context, Found, calls_from_json, fields_from_mapping, json_extent, loads, tool_kind

NAME = "json"
START = r"<\|python_tag\|>|<\|tool_call\|>|<\|action_start\|>"
EXAMPLE = '{"name": "cancel_alert", "parameters": {"code": "HALT-5183"}}'

_OPENER = re.compile(r"[\[{]")
_DECODER = json.JSONDecoder()
_CALLISH = re.compile(r"name|tool|function", re.I)  # a call names its tool; other brace runs are not repaired
_PREFIX = {"<|python_tag|>": "python_tag", "<|tool_call|>": "granite", "<|plugin|>": "internlm"}


def read(ctx: Context) -> list[Found]:
    out, pos = [], 0
    text = ctx.text
    while True:
        m = _OPENER.search(text, pos)
        if not m:
            return out
        got = _strict(text, m.start()) or _repaired(text, m.start())
        if got is None:
            pos = m.start() + 1
            continue
        obj, stop = got
        calls = [c for c in calls_from_json(obj) if tool_kind(c[0]) != "unknown"]
        if not calls:
            pos = m.start() + 1  # look inside: a list or object may hold a call further in
            continue
        before = text[max(0, m.start() - 24):m.start()].rstrip()
        fmt = next((f for tok, f in _PREFIX.items() if before.endswith(tok)), NAME)
        for name, args in calls:
            out.append(ctx.found(name, fields_from_mapping(args), fmt, m.start(), stop, closed=True, complete=True))
        pos = stop



def _strict(text: str, start: int):
    try:
        return _DECODER.raw_decode(text, start)
    except ValueError:
        return None


def _repaired(text: str, start: int):
    """Loose JSON over its balanced extent, tried only where a call could be (this reader scans every brace
    of a reply, so a repair of every brace run in prose would be work done for nothing)."""
    end = json_extent(text, start)
    if end is None or not _CALLISH.search(text, start, end):
        return None
    obj = loads(text[start:end])
    return (obj, end) if obj is not None else None
