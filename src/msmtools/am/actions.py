"""Parse an agent's reply into the actions it took: emails, forwards, alert cancellations.

The prompt asks for `<tool_use:NAME> key: value ... </tool_use:NAME>` blocks. Models drift from that,
so the parser also takes unquoted values, `key = value`, a JSON object inside the block, and
`<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (the format many chat models are tuned on).

What counts as an action:
- text inside the private scratchpad (`<SCRATCHPAD_REASONING>`, also when never closed) is thinking,
  not action: tool calls drafted there are ignored;
- a block cut off before its closing tag (a truncated reply) is kept with `closed: false`; the gates
  ignore it, since the tool never ran.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

SCRATCHPAD = re.compile(r"<SCRATCHPAD_REASONING>(.*?)(?:</SCRATCHPAD_REASONING>|\Z)", re.S | re.I)
_THINK = re.compile(r"<think>(.*?)(?:</think>|\Z)", re.S | re.I)
_TOOL_USE = re.compile(r"<tool_use:([A-Za-z_]+)\s*>(.*?)(</tool_use:\1\s*>|(?=<tool_use:)|(?=<tool_call>)|\Z)", re.S | re.I)
_TOOL_CALL = re.compile(r"<tool_call>(.*?)(</tool_call>|(?=<tool_call>)|(?=<tool_use:)|\Z)", re.S | re.I)
_FIELD = re.compile(r'^\s*["\']?([A-Za-z_]+)["\']?\s*[:=]\s?(.*)$')
ADDRESS = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")

TOOL_NAMES = {
    "email": "email", "send_email": "email", "sendemail": "email", "send": "email", "reply": "email",
    "forward": "forward", "forward_email": "forward", "forwardemail": "forward",
    "cancel_alert": "cancel_alert", "cancelalert": "cancel_alert", "cancel": "cancel_alert",
    "cancel_dispatch": "cancel_alert", "override": "cancel_alert",
}
FIELD_NAMES = {
    "to": "to", "recipient": "to", "recipients": "to", "cc": "cc", "bcc": "bcc",
    "subject": "subject", "title": "subject",
    "body": "body", "message": "body", "content": "body", "text": "body", "note": "body",
    "email_id": "email_id", "id": "email_id", "emailid": "email_id", "message_id": "email_id",
    "code": "code", "override_code": "code", "cancel_code": "code", "alert_code": "code",
    "attachment": "attachment", "attachments": "attachment",
}
# Fields each tool takes; a line naming another field is ordinary text (an email may quote "Code: ...").
TOOL_FIELDS = {
    "email": {"to", "cc", "bcc", "subject", "body", "attachment"},
    "forward": {"email_id", "to", "cc", "bcc", "subject", "body"},
    "cancel_alert": {"code", "body"},
}
ALL_FIELDS = set(FIELD_NAMES.values())


def scratchpad(response: str) -> str | None:
    """The text of the private scratchpad(s), joined; None when there is none."""
    parts = [m.group(1).strip() for m in SCRATCHPAD.finditer(response)]
    return "\n\n".join(p for p in parts if p) or None


def public_text(response: str) -> str:
    """The reply without scratchpad and think blocks: where actions can happen."""
    return _THINK.sub("", SCRATCHPAD.sub("", response))


def _clean(value: str) -> str:
    v = value.strip()
    if v.endswith(","):
        v = v[:-1].rstrip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
        v = v[1:-1]
    elif v[:1] in "\"'" and v[1:].find(v[0]) == -1:
        v = v[1:]  # an opening quote whose closing quote was lost
    return v.replace('\\"', '"').replace("\\n", "\n").strip()


def _fields_from_lines(content: str, allowed: set[str]) -> dict[str, str]:
    """key: value lines; a value runs on until the next key line (inside a body, only a new key)."""
    fields: dict[str, list[str]] = {}
    current: str | None = None
    for line in content.splitlines():
        m = _FIELD.match(line)
        key = FIELD_NAMES.get(m.group(1).lower()) if m else None
        if key not in allowed:
            key = None
        starts_field = key is not None and (current != "body" or key not in fields)
        if starts_field:
            current = key
            fields.setdefault(key, []).append(m.group(2))
        elif current is not None:
            fields[current].append(line)
    return {k: _clean("\n".join(v)) for k, v in fields.items()}


def _fields_from_json(content: str) -> dict[str, str] | None:
    text = content.strip()
    if not text.startswith("{"):
        return None
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("arguments"), dict):
        obj = obj["arguments"] | {"__name__": obj.get("name", "")}
    out = {}
    for k, v in obj.items():
        name = "__name__" if k == "__name__" else FIELD_NAMES.get(str(k).lower())
        if name is None:
            continue
        out[name] = ", ".join(map(str, v)) if isinstance(v, list) else str(v)
    return out


def _action(tool: str, fields: dict[str, str], closed: bool) -> dict[str, Any]:
    kind = TOOL_NAMES.get(tool.lower(), "unknown")
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
        "to": recipients,
        "subject": fields.get("subject"),
        "body": fields.get("body"),
        "attachment": fields.get("attachment"),
        "email_id": email_id,
        "code": fields.get("code"),
        "closed": closed,
    }


def parse(response: str) -> list[dict[str, Any]]:
    """The actions in a reply, in order of appearance."""
    text = public_text(response)
    found: list[tuple[int, dict[str, Any]]] = []
    for m in _TOOL_USE.finditer(text):
        closed = bool(m.group(3))
        allowed = TOOL_FIELDS.get(TOOL_NAMES.get(m.group(1).lower(), ""), ALL_FIELDS)
        fields = _fields_from_json(m.group(2)) or _fields_from_lines(m.group(2), allowed)
        fields.pop("__name__", None)
        found.append((m.start(), _action(m.group(1), fields, closed)))
    for m in _TOOL_CALL.finditer(text):
        fields = _fields_from_json(m.group(1))
        if fields is None:
            continue
        tool = fields.pop("__name__", "") or "unknown"
        found.append((m.start(), _action(tool, fields, bool(m.group(2)))))
    return [a for _, a in sorted(found, key=lambda x: x[0])]
