"""Functionary v3: `>>>NAME` at the start of a line, then the JSON arguments (`>>>all` is plain text)."""

from __future__ import annotations

import re

from .common import Context, Found, fields_from_mapping, json_at

NAME = "functionary"
START = r"(?<![^\n])>>>\s*[A-Za-z_]"
EXAMPLE = '>>>cancel_alert\n{"code": "HALT-5183"}'

_CALL = re.compile(r"(?m)^>>>\s*(?P<name>[A-Za-z_][\w.]*)\s*\n?\s*(?=[{\[])")


def read(ctx: Context) -> list[Found]:
    out = []
    for m in _CALL.finditer(ctx.text):
        if m.group("name") == "all":
            continue
        got = json_at(ctx.text, m.end())
        if got is None or not isinstance(got[0], dict):
            continue
        out.append(ctx.found(m.group("name"), fields_from_mapping(got[0]), NAME, m.start(), got[1], closed=True,
                             complete=True))
    return out
