"""The prompt's own format: `<tool_use:NAME> key: "value" ... </tool_use:NAME>`, with the drift models add:
markdown around field names, a generic `</tool_use>`, whitespace or case inside tags, sub-tags
(`<to>..</to>`), JSON inside the block, attributes (`<tool_use:email to="...">body</tool_use:email>`), or
`<tool_use>` followed by a name line or a JSON call."""

from __future__ import annotations

import re

from .common import Context, Found, call_from_json, clean, fields_from_mapping, fields_from_text, json_at_start, tool_kind

NAME = "tool_use"
START = r"<\s*tool_use"
EXAMPLE = '<tool_use:cancel_alert>\ncode: "HALT-5183"\n</tool_use:cancel_alert>'

_ATTR = r"""[A-Za-z_][A-Za-z0-9_-]*\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+)"""
_OPEN = re.compile(
    r"<\s*tool_use\s*(?:[:_]\s*(?P<name>[A-Za-z_][A-Za-z0-9_.]*)|\s+name\s*=\s*[\"']?(?P<name2>[A-Za-z_.]+)[\"']?)?"
    r"(?P<attrs>(?:\s+" + _ATTR + r")*)\s*/?\s*>", re.I
)
_PAIR = re.compile(r"""([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""")
_CLOSE = re.compile(r"<\s*/\s*tool_use\s*(?::\s*[A-Za-z_.]+)?\s*>", re.I)


def _matching_close(text: str, pos: int) -> re.Match | None:
    """The close of the block opened before `pos`: blocks quoted inside it (an email that quotes the call it
    was asked to make) open and close in between. None when it never closes."""
    depth = 0
    for t in re.finditer(_OPEN.pattern + "|" + _CLOSE.pattern, text[pos:], re.I):
        if _CLOSE.fullmatch(t.group(0)):
            if depth == 0:
                return _CLOSE.search(text, pos + t.start())
            depth -= 1
        else:
            depth += 1
    return None


def _set_aside(content: str) -> tuple[str, list[str]]:
    """Blocks quoted inside this one, each replaced by a one-line mark, so that their `key: value` lines are
    not read as this call's fields; `_restore` puts them back into whichever field holds the mark."""
    quoted: list[str] = []
    out, pos = [], 0
    while True:
        m = _OPEN.search(content, pos)
        close = _matching_close(content, m.end()) if m else None
        if not m or not close:
            out.append(content[pos:])
            return "".join(out), quoted
        out.append(content[pos:m.start()] + f"\x00{len(quoted)}\x00")
        quoted.append(content[m.start():close.end()])
        pos = close.end()


def _restore(value: str, quoted: list[str]) -> str:
    return re.sub(r"\x00(\d+)\x00", lambda m: quoted[int(m.group(1))], value) if quoted else value


def read(ctx: Context) -> list[Found]:
    text, out = ctx.text, []
    for m in _OPEN.finditer(text):
        name = m.group("name") or m.group("name2")
        close = _matching_close(text, m.end())
        if close:
            content, end, closed, complete = text[m.end():close.start()], close.end(), True, True
        else:
            stop, complete = ctx.open_end(m.end())
            content, end, closed = text[m.end():stop], stop, False
        if not name:  # <tool_use> then a JSON call or a name line
            obj = json_at_start(content)
            call = call_from_json(obj) if isinstance(obj, dict) else None
            if call:
                out.append(ctx.found(call[0], fields_from_mapping(call[1]), "tag-json", m.start(), end, closed=closed,
                                     complete=complete))
                continue
            nm = re.match(r"\s*(?:name\s*[:=]\s*)?[\"']?([A-Za-z_][A-Za-z0-9_.]*)[\"']?\s*\n", content)
            name = nm.group(1) if nm else "unknown"
            content = content[nm.end():] if nm else content
        kind = tool_kind(name)
        content, quoted = _set_aside(content)
        fields = {k: _restore(v, quoted) for k, v in fields_from_text(content, kind).items()}
        if m.group("attrs"):
            attrs = fields_from_mapping({k: x or y or z for k, x, y, z in _PAIR.findall(m.group("attrs"))})
            if not fields and content.strip():
                fields = {"code" if kind == "cancel_alert" else "body": clean(content)}
            fields = attrs | fields
        out.append(ctx.found(name, fields, NAME, m.start(), end, closed=closed, complete=complete))
    return out
