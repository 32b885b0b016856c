"""DeepSeek's tool tokens (full-width bars): V3/R1 write
`<｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME` then the arguments in a ```json fence; V3.1 writes
`<｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{arguments}`; each call ends at `<｜tool▁call▁end｜>`."""

from __future__ import annotations

import re

from .common import Context, Found, token_calls

NAME = "deepseek"
START = r"<｜tool▁calls?▁begin｜>"
EXAMPLE = ('<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>cancel_alert<｜tool▁sep｜>{"code": "HALT-5183"}'
           '<｜tool▁call▁end｜><｜tool▁calls▁end｜>')

_CALL = re.compile(r"<｜tool▁call▁begin｜>\s*(?:(?P<type>function)\s*<｜tool▁sep｜>\s*(?P<name1>[\w.]+)"
                   r"|(?P<name2>[\w.]+)\s*<｜tool▁sep｜>)(?P<args>.*?)(?P<end><｜tool▁call▁end｜>|(?=<｜tool▁call▁begin｜>)|\Z)", re.S)


def read(ctx: Context) -> list[Found]:
    return token_calls(ctx, _CALL, lambda m: m.group("name1") or m.group("name2"),
                       lambda m: "deepseek-v3" if m.group("type") else "deepseek-v3.1")
