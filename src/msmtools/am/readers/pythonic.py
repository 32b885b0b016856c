"""Python-style calls, read with Python's own `ast`: Gemma's ```tool_code fence and `print(default_api.x(...))`,
Llama 3.2/4's `[a(...), b(...)]` lists. A call counts at the start of a line (after list brackets, `print(`,
bullets or quote marks); a name mentioned mid-sentence is prose. Arguments must be literals."""

from __future__ import annotations

import ast
import re

from .common import POSITIONAL, Context, Found, fields_from_mapping, json_extent, tool_kind

NAME = "python"
START = r"```\s*tool_code"
EXAMPLE = "```tool_code\nprint(default_api.cancel_alert(code='HALT-5183'))\n```"

_PREFIXES = r"(?:default_api\.|functions\.|tools\.|api\.)?"
# possessive: blanked private text is long runs of spaces, never backtrack over them
_CALL = re.compile(r"(?m)^[ \t>*`-]*+(?:\[[ \t]*+)?(?:print[ \t]*\([ \t]*+)?(?P<call>" + _PREFIXES
                   + r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)[ \t]*\()")
_NEXT = re.compile(r"\s*[,;]\s*(?P<call>" + _PREFIXES + r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*\()")


def _call(text: str, name_start: int) -> tuple[int, str, dict[str, str]] | None:
    """Parse `name(args)` beginning at `name_start`: (end offset, name, fields) when the arguments are literals."""
    end = json_extent(text, text.index("(", name_start), "(", ")")
    if end is None:
        return None
    j = end - 1
    try:
        node = ast.parse(text[name_start:j + 1].strip(), mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        name = f"{func.value.id}.{func.attr}"
    try:
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg}
        positional = [ast.literal_eval(a) for a in node.args]
    except (ValueError, SyntaxError, TypeError):
        return None
    args = dict(zip(POSITIONAL.get(tool_kind(name), ()), positional)) | kwargs
    return j + 1, name, fields_from_mapping(args)


def read(ctx: Context) -> list[Found]:
    out, text = [], ctx.text
    for m in _CALL.finditer(text):
        start = pos = m.start("call")
        while True:
            parsed = _call(text, pos)
            if parsed is None:
                break
            stop, name, fields = parsed
            if tool_kind(name) != "unknown" or fields:
                out.append(ctx.found(name, fields, NAME, start, stop, closed=True, complete=True))
            nxt = _NEXT.match(text, stop)
            if not nxt:
                break
            start = pos = nxt.start("call")
    return out
