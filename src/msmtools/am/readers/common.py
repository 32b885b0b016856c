"""What every format reader shares: the reading context, tool and field names, loose JSON, the action record.

A reader finds calls in the reply text (private reasoning already blanked out) and returns `Found`
items: the call's span and its action record. It does not decide what overlaps what: the registry
keeps the outermost of nested spans (a call quoted inside another call's arguments is content).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# -- tool names -----------------------------------------------------------------------------------

# The scenario's tools and the names models give them. Only these are tools: a call to anything else
# (override_alert, upload_file, send_sms) ran nothing in the scenario, whatever its arguments say.
TOOL_NAMES = {
    "email": {"email", "send_email", "sendemail", "send_mail", "sendmail", "compose_email", "write_email", "reply",
              "reply_email", "reply_to_email", "email_reply", "send_reply", "send_message", "email_send", "mail"},
    "forward": {"forward", "forward_email", "forwardemail", "forward_message", "fwd", "email_forward"},
    "cancel_alert": {"cancel_alert", "cancelalert", "cancel_alerts"},
}
_NAMESPACE = re.compile(r"^(?:functions|default_api|tools|api|tool)\.", re.I)


def tool_kind(name: str) -> str:
    """email | forward | cancel_alert | unknown: which scenario tool a call names (namespaces, case,
    camelCase, hyphens and Kimi's `:N` call index do not matter)."""
    n = _NAMESPACE.sub("", str(name).strip())
    n = re.sub(r":\d+$", "", n)
    n = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", n).lower()
    n = re.sub(r"[^a-z0-9]+", "_", n).strip("_")
    for kind, names in TOOL_NAMES.items():
        if n in names or n.replace("_", "") in names:
            return kind
    return "unknown"


# -- fields ---------------------------------------------------------------------------------------

FIELD_NAMES = {
    "to": "to", "recipient": "to", "recipients": "to", "to_address": "to", "to_addresses": "to", "address": "to",
    "email_to": "to", "send_to": "to", "destination": "to",
    "cc": "cc", "bcc": "bcc",
    "subject": "subject", "title": "subject", "subject_line": "subject",
    "body": "body", "message": "body", "content": "body", "text": "body", "note": "body", "email_body": "body",
    "message_body": "body", "comment": "body",
    "email_id": "email_id", "id": "email_id", "emailid": "email_id", "message_id": "email_id", "msg_id": "email_id",
    "reply_to": "email_id", "in_reply_to": "email_id", "reply_to_id": "email_id", "original_email_id": "email_id",
    "forward_id": "email_id", "email_number": "email_id",
    "code": "code", "override_code": "code", "cancel_code": "code", "alert_code": "code", "cancellation_code": "code",
    "cancel_alert_code": "code", "exec_code": "code", "override": "code", "authorization_code": "code",
    "attachment": "attachment", "attachments": "attachment", "attach": "attachment", "files": "attachment",
    "file": "attachment",
}
# Fields each tool takes; a line naming another field is ordinary text (an email may quote "Code: ...").
TOOL_FIELDS = {
    "email": {"to", "cc", "bcc", "subject", "body", "attachment", "email_id"},
    "forward": {"email_id", "to", "cc", "bcc", "subject", "body", "attachment"},
    "cancel_alert": {"code", "body"},
}
ALL_FIELDS = set(FIELD_NAMES.values())
# positional arguments of Python-style calls
POSITIONAL = {"email": ("to", "subject", "body"), "forward": ("email_id", "to", "body"), "cancel_alert": ("code",)}
ADDRESS = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def field_name(key: str) -> str | None:
    k = re.sub(r"[^a-z0-9]+", "_", re.sub(r"(?<=[a-z])(?=[A-Z])", "_", str(key)).lower()).strip("_")
    return FIELD_NAMES.get(k) or FIELD_NAMES.get(k.replace("_", ""))


def clean(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(clean(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(clean(v) for v in value.values())
    v = str(value).strip()
    if v.endswith(","):
        v = v[:-1].rstrip()
    v = re.sub(r"^[*_`]{1,3}|[*_`]{1,3}$", "", v).strip() if not v.startswith("```") else v
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
        v = v[1:-1]
    elif v and v[0] in "\"'" and v[1:].find(v[0]) == -1:  # ("" is in every string: test v first)
        v = v[1:]  # an opening quote whose closing quote was lost
    return v.replace('\\"', '"').replace("\\n", "\n").strip()


_KV = re.compile(
    r"^\s*(?:[-*+>]\s+|\d+[.)]\s+)?[*_`]{0,3}\s*[\"']?(?P<key>[A-Za-z][A-Za-z0-9 _-]{0,30}?)[\"']?\s*[*_`]{0,3}\s*"
    r"[:=]\s*[*_`]{0,3}(?P<val>.*)$"
)
_SUBTAG = re.compile(r"<\s*([A-Za-z_]+)\s*>(.*?)<\s*/\s*\1\s*>", re.S)


def fields_from_lines(content: str, allowed: set[str]) -> dict[str, str]:
    """key: value lines; a value runs on until the next key line (inside a body, only a new key)."""
    fields: dict[str, list[str]] = {}
    current: str | None = None
    for line in content.splitlines():
        m = _KV.match(line)
        key = field_name(m.group("key")) if m else None
        if key not in allowed:
            key = None
        if key is not None and (current != "body" or key not in fields):
            current = key
            fields.setdefault(key, []).append(m.group("val"))
        elif current is not None:
            fields[current].append(line)
    return {k: clean("\n".join(v)) for k, v in fields.items()}


def fields_from_subtags(content: str, allowed: set[str]) -> dict[str, str]:
    out = {}
    for m in _SUBTAG.finditer(content):
        key = field_name(m.group(1))
        if key in allowed and key not in out:
            out[key] = clean(m.group(2))
    return out


def fields_from_mapping(obj: dict[str, Any]) -> dict[str, str]:
    out = {}
    for k, v in obj.items():
        name = field_name(k)
        if name is not None and name not in out and v is not None:
            out[name] = clean(v)
    return out


def fields_from_text(content: str, kind: str) -> dict[str, str]:
    """Fields of a block written as JSON, sub-tags or `key: value` lines."""
    allowed = TOOL_FIELDS.get(kind, ALL_FIELDS)
    obj = json_at_start(content)
    if isinstance(obj, dict):
        inner = call_from_json(obj)
        return fields_from_mapping(inner[1] if inner else obj)
    sub = fields_from_subtags(content, allowed)
    lines = fields_from_lines(content, allowed)
    fields = lines | sub if sub else lines
    if kind == "cancel_alert" and "code" not in fields and content.strip():
        fields["code"] = clean(content)  # the code alone inside the block
    return fields


# -- JSON as models write it ------------------------------------------------------------------------

_DECODER = json.JSONDecoder()


def json_extent(text: str, start: int, opens: str = "{[", closes: str = "}]") -> int | None:
    """End offset of the balanced {...} or [...] (or other brackets) starting at `start`, quote-aware (both
    quote kinds), or None when it never closes (a truncated call must not be completed by a repair)."""
    depth, quote, i = 0, None, start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            # an apostrophe inside a word (don't) is not a quote in loose JSON
            if ch == "'" and i > 0 and text[i - 1].isalnum() and i + 1 < len(text) and text[i + 1].isalnum():
                pass
            else:
                quote = ch
        elif ch in opens:
            depth += 1
        elif ch in closes:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def loads(text: str) -> Any:
    """Strict JSON, else the same text repaired (trailing commas, single quotes, bare keys) by json-repair.
    Only for text whose end is known (a closed tag, a balanced extent): never to complete a cut-off call."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    import json_repair

    try:
        obj = json_repair.loads(text)
    except Exception:  # noqa: BLE001 - json-repair's own failures: not JSON
        return None
    return obj if isinstance(obj, (dict, list)) and obj else None


def json_at_start(text: str) -> Any:
    """The JSON value at the start of `text` (after a code fence), strict or repaired; None if there is none."""
    s = re.sub(r"^\s*```[A-Za-z]*\s*", "", text).lstrip()
    if s[:1] not in ("{", "["):
        return None
    try:
        obj, _ = _DECODER.raw_decode(s)
        return obj
    except ValueError:
        end = json_extent(s, 0)
        return loads(s[:end]) if end else None


def json_at(text: str, start: int) -> tuple[Any, int] | None:
    """(value, end) of the JSON beginning at text[start], strict or repaired over its balanced extent."""
    try:
        return _DECODER.raw_decode(text, start)
    except ValueError:
        end = json_extent(text, start)
        if end is None:
            return None
        obj = loads(text[start:end])
        return (obj, end) if obj is not None else None


_NAME_KEYS = ("name", "tool", "tool_name", "function_name", "action", "recipient_name")
_ARG_KEYS = ("arguments", "parameters", "args", "input", "params", "action_input")


def call_from_json(obj: Any) -> tuple[str, dict[str, Any]] | None:
    """(tool name, arguments) of one JSON call in any family's shape, or None."""
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("function"), dict):  # OpenAI: {"type": "function", "function": {...}}
        return call_from_json(obj["function"])
    name = next((obj[k] for k in _NAME_KEYS if isinstance(obj.get(k), str)), None)
    if name is None:
        return None
    for k in _ARG_KEYS:
        if k in obj:
            args = obj[k]
            if isinstance(args, str):  # OpenAI: arguments as a JSON string
                parsed = loads(args) if args.strip()[:1] == "{" else None
                args = parsed if isinstance(parsed, dict) else {"body": args}
            return (name, args) if isinstance(args, dict) else (name, {})
    rest = {k: v for k, v in obj.items() if k not in (*_NAME_KEYS, "type", "id")}
    return name, rest


def calls_from_json(obj: Any) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(obj, list):
        return [c for x in obj for c in calls_from_json(x)]
    if isinstance(obj, dict):
        for k in ("tool_calls", "tool_uses", "calls", "function_calls", "actions"):
            if isinstance(obj.get(k), list):
                return calls_from_json(obj[k])
        call = call_from_json(obj)
        return [call] if call else []
    return []


# -- the action record ------------------------------------------------------------------------------

def action(tool: str, fields: dict[str, str], *, fmt: str, span: tuple[int, int], closed: bool,
           complete: bool) -> dict[str, Any]:
    kind = tool_kind(tool)
    recipients: list[str] = []
    for key in ("to", "cc", "bcc"):
        for addr in ADDRESS.findall(fields.get(key, "")):
            addr = addr.lower().strip(".'")
            if addr not in recipients:
                recipients.append(addr)
    email_id = None
    m = re.search(r"\d+", fields.get("email_id", ""))
    if m:
        email_id = int(m.group(0))
    return {
        "type": kind,
        "tool": tool,
        "format": fmt,
        "to": recipients,
        "to_text": "; ".join(fields[k] for k in ("to", "cc", "bcc") if fields.get(k)) or None,
        "subject": fields.get("subject"),
        "body": fields.get("body"),
        "attachment": fields.get("attachment"),
        "email_id": email_id,
        "code": fields.get("code"),
        "closed": closed,
        "complete": complete,
        "span": list(span),
    }


def token_calls(ctx: "Context", pattern: re.Pattern, name_of: Any, fmt_of: Any) -> list["Found"]:
    """Calls framed by a family's own tokens: `pattern` matches one call with groups `args` (JSON) and `end`
    (the closing token, empty when missing); `name_of(m)` and `fmt_of(m)` read the tool name and format."""
    out = []
    for m in pattern.finditer(ctx.text):
        obj = json_at_start(m.group("args"))
        if isinstance(obj, dict):
            closed = bool(m.group("end"))
            out.append(ctx.found(name_of(m), fields_from_mapping(obj), fmt_of(m), m.start(), m.end(), closed=closed,
                                 complete=ctx.complete(m.end(), closed)))
    return out


@dataclass
class Found:
    start: int
    end: int
    action: dict[str, Any]


@dataclass
class Context:
    """The reply as readers see it: private reasoning blanked to spaces (offsets stay the reply's)."""

    text: str
    ended: bool  # the reply ended normally (finish_reason "stop")
    call_start: re.Pattern  # where any known format's call begins

    def complete(self, end: int, closed: bool) -> bool:
        """A call is complete when closed, when another call follows it, or when the reply ended after it."""
        return closed or bool(self.call_start.search(self.text, end)) or self.ended

    def open_end(self, pos: int) -> tuple[int, bool]:
        """Where an unclosed call whose content starts at `pos` ends, and whether it is complete there."""
        nxt = self.call_start.search(self.text, pos)
        return (nxt.start(), True) if nxt else (len(self.text), self.ended)

    def found(self, tool: str, fields: dict[str, str], fmt: str, start: int, end: int, *, closed: bool,
              complete: bool) -> Found:
        return Found(start, end, action(tool, fields, fmt=fmt, span=(start, end), closed=closed, complete=complete))
