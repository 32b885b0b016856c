"""Strict parsing of model replies: JSON lists, simple numbered lists, and text between tags.

Nothing here repairs output. A JSON list must be complete (the first fenced block, else the first
balanced `[...]`); a list cut off mid-way is a failure, never closed by guesswork (the published
pipeline's truncation repair silently produced fragmentary items). Callers turn a `ParseError` into a
retry with a new seed and, after a bounded number of tries, into an error record.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..llm.runner import ParseError  # noqa: F401  (one exception type for every stage's parser)

_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n(.*?)```", re.S)


def _balanced_end(text: str, start: int, open_ch: str, close_ch: str) -> int | None:
    """Index just past the bracket that closes the one at `start` (JSON strings skipped), else None."""
    depth, in_str, esc = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch == open_ch:
            depth += 1
        elif ch == close_ch:
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def first_array(text: str) -> list[Any] | None:
    """The first top-level `[...]` block that parses as JSON.

    Blocks that balance but are not JSON (prose like "[SP1]") are stepped over as a whole, so an inner
    list of a broken outer one is never picked; an opening bracket that never closes ends the search:
    that is truncated output, and guessing its end is exactly what we refuse to do.
    """
    pos = 0
    while True:
        start = text.find("[", pos)
        if start < 0:
            return None
        end = _balanced_end(text, start, "[", "]")
        if end is None:
            return None
        value = _loads(text[start:end])
        if isinstance(value, list):
            return value
        pos = end


def json_list(text: str) -> list[Any]:
    """A JSON list from a reply: fenced JSON first, then the first balanced array; dict wrappers unwrapped."""
    candidates = [m.group(1).strip() for m in _FENCE.finditer(text)]
    candidates.append(text.strip())
    for cand in candidates:
        value = _loads(cand)
        if value is None:
            value = first_array(cand)
        if isinstance(value, dict):
            lists = [v for v in value.values() if isinstance(v, list)]
            value = lists[0] if len(lists) == 1 else None
        if isinstance(value, list):
            return value
    raise ParseError("no complete JSON list in the reply")


def _loads(s: str) -> Any:
    try:
        return json.loads(s)
    except (ValueError, RecursionError):
        return None


# "1. x", "2) x", "- x", "* x", and the labelled "Idea 3: x" that small models like to write
_ITEM = re.compile(r"^\s*(?:(?:[A-Z][a-z]{1,15}\s+)?\d{1,3}[.):]|[-*\u2022])\s+(.*\S)\s*$")


def numbered_list(text: str) -> list[str]:
    """Items of a plain numbered or bulleted list; an item's wrapped lines are joined to it."""
    items: list[str] = []
    open_item = False
    for line in text.splitlines():
        m = _ITEM.match(line)
        if m:
            items.append(m.group(1))
            open_item = True
        elif not line.strip():
            open_item = False
        elif open_item and line[:1].isspace():
            items[-1] += " " + line.strip()
    items = [_clean(i) for i in items]
    items = [i for i in items if i]
    if not items:
        raise ParseError("no JSON list and no numbered list in the reply")
    return items


def _clean(s: str) -> str:
    s = re.sub(r"\*\*|__|`", "", s).strip()
    return s.strip().strip('"').strip("'").strip()


def items(text: str, fields: tuple[str, ...], *, allow_list: bool = True) -> list[dict[str, str]]:
    """List items as dicts with `fields` (the first is required), from JSON or, failing that, a plain list.

    JSON items may be strings (taken as the first field) or objects (missing optional fields become "").
    Plain-list items "Name: description" or "Name - description" split into the first two fields.
    """
    main = fields[0]
    try:
        raw = json_list(text)
        source = "json"
    except ParseError:
        if not allow_list:
            raise
        raw = numbered_list(text)
        source = "list"
    out: list[dict[str, str]] = []
    for item in raw:
        if isinstance(item, str):
            rec = {main: item}
            if source == "list" and len(fields) > 1:
                m = re.match(r"^(.{2,80}?)\s*(?::|\s[-\u2013\u2014]\s)\s*(.+)$", item)
                if m:
                    rec = {main: _clean(m.group(1)), fields[1]: m.group(2).strip()}
        elif isinstance(item, dict):
            value = item.get(main)
            if not isinstance(value, str):  # a lone string field under another name, e.g. {"name": ...}
                strings = [v for v in item.values() if isinstance(v, str)]
                value = strings[0] if strings else None
            if value is None:
                continue
            rec = {main: value}
            for f in fields[1:]:
                v = item.get(f)
                if isinstance(v, (str, list)):
                    rec[f] = v
        else:
            continue
        rec[main] = _clean(str(rec[main]))
        if rec[main]:
            out.append({f: rec.get(f, "") for f in fields})
    if not out:
        raise ParseError(f"the list has no usable items (each needs '{main}')")
    return out


def unique(values: list[dict[str, Any]], field: str, limit: int, max_len: int = 300,
           prompt: str = "") -> list[dict[str, Any]]:
    """Keep at most `limit` items in order, dropping duplicates (ignoring case), over-long names, and
    copies of the prompt's own format example (`"a short name"`, `<section id>`, `Qwen ...`): small
    models echo those, and an echoed example parses fine but means nothing."""
    seen: set[str] = set()
    quoted = prompt.lower()
    out = []
    for v in values:
        name = " ".join(str(v[field]).split())
        norm = name.lower()
        if not name or len(name) > max_len or norm in seen:
            continue
        if f'"{norm}"' in quoted or re.search(r"<[a-z _-]+>", norm) or name.endswith(("...", "\u2026")):
            continue
        seen.add(norm)
        out.append({**v, field: name})
        if len(out) == limit:
            break
    return out


def between(text: str, tag: str) -> str:
    """The text inside the first complete `<tag>...</tag>`; a missing end marker is an error."""
    start = re.search(rf"<{tag}>", text, re.I)
    if start is None:
        raise ParseError(f"no <{tag}> marker in the reply")
    end = re.search(rf"</{tag}>", text[start.end():], re.I)
    if end is None:
        raise ParseError(f"<{tag}> is never closed (missing </{tag}>)")
    body = text[start.end():start.end() + end.start()].strip()
    if not body:
        raise ParseError(f"<{tag}> is empty")
    return body


def norm_ws(text: str) -> str:
    """Whitespace- and emphasis-insensitive form, for checking that an excerpt occurs in the spec."""
    return " ".join(re.sub(r"[*_`>#]+", " ", text).split()).lower()
