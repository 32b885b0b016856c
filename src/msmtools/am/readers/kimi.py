"""Kimi K2: `<|tool_call_begin|>functions.NAME:INDEX<|tool_call_argument_begin|>{...}<|tool_call_end|>`
inside a `<|tool_calls_section_begin|>` section."""

from __future__ import annotations

import re

from .common import Context, Found, token_calls

NAME = "kimi"
START = r"<\|tool_calls_section_begin\|>|<\|tool_call_begin\|>"
EXAMPLE = ('<|tool_calls_section_begin|><|tool_call_begin|>functions.cancel_alert:0<|tool_call_argument_begin|>'
           '{"code": "HALT-5183"}<|tool_call_end|><|tool_calls_section_end|>')

_CALL = re.compile(r"<\|tool_call_begin\|>\s*(?P<name>[\w.:-]+)\s*<\|tool_call_argument_begin\|>(?P<args>.*?)"
                   r"(?P<end><\|tool_call_end\|>|(?=<\|tool_call_begin\|>)|\Z)", re.S)


def read(ctx: Context) -> list[Found]:
    return token_calls(ctx, _CALL, lambda m: m.group("name"), lambda m: NAME)
