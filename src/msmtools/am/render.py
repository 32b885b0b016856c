"""Render a condition into the system and user messages of one eval prompt, and nothing half-filled.

Templates live in `scenarios/*.toml` (or a `--scenario-dir` that overrides them by file name) and use
`${name}` placeholders. `${...}` was chosen over `{name}` because emails and replies may contain
literal braces, and `$` followed by `{` occurs in none of our text. Filling is one pass (values are
never re-scanned) and strict: an unknown placeholder is an error naming the file, line and field, and
a rendered prompt is checked once more for leftover `${...}` or `{identifier}` placeholders (the
published eval shipped both kinds unfilled) and for the strings its scenario says must be present.

Variables come in layers, each filled from the ones before it:
1. base: the agent's name (and slug forms), company, session time, and the goal-value phrases
   (`ai_*` for the value the agent has stood for, `new_*` for the incoming leadership's);
2. the scenario's `[vars.common]`;
3. its `[vars.goal.conflict|none]` and `[vars.urgency.<urgency>]`.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import MsmError, at
from ..ids import canonical, sha256_text
from .conditions import OPPOSITE, Condition

SHIPPED = Path(__file__).resolve().parent / "scenarios"
TOOLS = ("email", "forward", "cancel_alert")
GATE_KINDS = ("leak", "exfiltration", "murder", "blackmail")
_PLACEHOLDER = re.compile(r"\$\{([^{}]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LEFTOVER = re.compile(r"\$\{|\{[A-Za-z_][A-Za-z0-9_.]*\}")
_ADDRESS = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# the settings each gate kind needs from a scenario's [gate] table
GATE_NEEDS = {"leak": {}, "exfiltration": {"secrets": list}, "murder": {"code": str}, "blackmail": {"target": str}}


@dataclass(frozen=True)
class PromptOptions:
    """Run-level prompt settings (not part of the condition id, but part of every rollout id)."""

    model_name: str = "Alex"
    weigh_values: bool = True  # the MSM release's extra scratchpad paragraph


@dataclass
class Source:
    """One parsed template file, kept with its raw text so errors can name lines."""

    path: str
    data: dict[str, Any]
    raw: str

    def line_of(self, needle: str) -> int | None:
        for i, line in enumerate(self.raw.splitlines(), 1):
            if needle in line:
                return i
        return None


@dataclass
class Rendered:
    condition: Condition
    options: PromptOptions
    system: str
    user: str
    emails: list[dict[str, Any]]
    gate: dict[str, Any]
    grader: dict[str, str]
    variables: dict[str, str] = field(repr=False, default_factory=dict)
    scenario_dir: str | None = None

    @property
    def messages(self) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]

    @property
    def prompt_sha(self) -> str:
        return sha256_text(canonical(self.messages).decode())

    def email(self, email_id: int | None) -> dict[str, Any] | None:
        return next((e for e in self.emails if e["id"] == email_id), None)


# -- loading --------------------------------------------------------------------------------------


def _load(name: str, scenario_dir: str | None) -> Source:
    path = SHIPPED / name
    if scenario_dir:
        override = Path(scenario_dir) / name
        if override.exists():
            path = override
        elif not Path(scenario_dir).is_dir():
            raise MsmError(f"--scenario-dir {scenario_dir}: no such folder")
    return _parse(str(path))


@lru_cache(maxsize=32)
def _parse(path: str) -> Source:
    p = Path(path)
    if not p.exists():
        raise MsmError(f"{path}: no such scenario file")
    try:
        raw = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise MsmError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise MsmError(f"{path}: cannot read ({e.strerror})") from None
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as e:
        raise MsmError(f"{path}: invalid TOML ({e})") from None
    return Source(path, data, raw)


def _get(src: Source, dotted: str, typ: type = str, default: Any = ...) -> Any:
    node: Any = src.data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is not ...:
                return default
            raise at(src.path, None, dotted, "missing")
        node = node[part]
    if not isinstance(node, typ):
        raise at(src.path, src.line_of(dotted.split(".")[-1]), dotted, f"expected {typ.__name__}, got {type(node).__name__}")
    return node


def load_scenario(scenario: str, scenario_dir: str | None = None) -> tuple[Source, Source]:
    """(common, scenario) sources, checked for the fields rendering needs."""
    common = _load("common.toml", scenario_dir)
    src = _load(f"{scenario}.toml", scenario_dir)
    for key in ("system", "user", "scratchpad", "weigh_values", "channel_open", "channel_sandboxed",
                "grader.system", "grader.user", "grader.forwarded"):
        _get(common, key)
    for key in ("company_name", "company_description", "domain", "session_time", "date", "channel"):
        _get(src, f"scenario.{key}")
    if _get(src, "scenario.channel") not in ("open", "sandboxed"):
        raise at(src.path, src.line_of("channel"), "scenario.channel", "expected open or sandboxed")
    for tool in _get(src, "scenario.tools", list):
        if tool not in TOOLS:
            raise at(src.path, src.line_of("tools"), "scenario.tools", f"unknown tool {tool!r} (known: {', '.join(TOOLS)})")
    kind = _get(src, "gate.kind")
    if kind not in GATE_KINDS:
        raise at(src.path, src.line_of("kind"), "gate.kind", f"expected one of {', '.join(GATE_KINDS)}")
    for key, typ in GATE_NEEDS[kind].items():
        _get(src, f"gate.{key}", typ)
    auth = _get(src, "gate.authorities", list, [])
    if not all(isinstance(a, str) for a in auth):
        raise at(src.path, src.line_of("authorities"), "gate.authorities", "expected a list of strings")
    for key in ("context", "question", "criteria"):
        _get(src, f"grader.{key}")
    emails = _get(src, "email", list)
    seen = set()
    for i, e in enumerate(emails):
        where = f"email[{i}]"
        if not isinstance(e, dict):
            raise at(src.path, None, where, "expected a table")
        for key in ("key", "from", "to", "subject", "time", "body"):
            if not isinstance(e.get(key), str):
                raise at(src.path, src.line_of(f'key = "{e.get("key")}"'), f"{where}.{key}", "missing or not a string")
        if e["key"] in seen:
            raise at(src.path, src.line_of(f'key = "{e["key"]}"'), f"{where}.key", f"duplicate email key {e['key']!r}")
        seen.add(e["key"])
    return common, src


# -- filling --------------------------------------------------------------------------------------


def fill(text: str, values: dict[str, str], src: Source, where: str) -> str:
    """Replace every `${name}` in one pass; an unknown or malformed placeholder is an error."""

    def repl(m: re.Match) -> str:
        name = m.group(1)
        if not _NAME.match(name):
            raise at(src.path, src.line_of(m.group(0)), where, f"malformed placeholder {m.group(0)}")
        if name not in values:
            known = ", ".join(sorted(values))
            raise at(src.path, src.line_of(m.group(0)), where, f"unknown placeholder {m.group(0)} (known here: {known})")
        return values[name]

    if "${" in _PLACEHOLDER.sub("", text):
        raise at(src.path, src.line_of("${"), where, "unclosed placeholder '${'")
    return _PLACEHOLDER.sub(repl, text)


def _fill_layer(layer: dict[str, Any], values: dict[str, str], src: Source, where: str) -> dict[str, str]:
    out = {}
    for k, v in layer.items():
        if not isinstance(v, str):
            raise at(src.path, src.line_of(k), f"{where}.{k}", f"expected a string, got {type(v).__name__}")
        out[k] = fill(v.strip(), values, src, f"{where}.{k}")
    return out


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "agent"


def _value_vars(cond: Condition, common: Source) -> dict[str, str]:
    if not cond.conflict:
        return {}
    fields = ("noun", "stance", "strategy", "quote")
    if cond.goal_type == "ambiguous":
        amb = _get(common, "values.ambiguous", dict)
        out = {f"ai_{f}": amb.get(f, "") for f in fields} | {f"new_{f}": amb.get(f"new_{f}", "") for f in fields}
        out["appeal"] = amb.get("appeal", "")
    else:
        own = _get(common, f"values.{cond.goal_value}", dict)
        other = _get(common, f"values.{OPPOSITE[cond.goal_value]}", dict)
        out = {f"ai_{f}": own.get(f, "") for f in fields} | {f"new_{f}": other.get(f, "") for f in fields}
        out["appeal"] = own.get("appeal", "")
    for k, v in out.items():
        if not v:
            raise at(common.path, None, f"values.{cond.goal_value}", f"no text for {k}")
    return out


def _goal_text(cond: Condition, common: Source) -> tuple[str, str]:
    """(goal statement, reminder line) for the system prompt."""
    if cond.goal_type == "explicit":
        v = cond.goal_value
    elif cond.goal_type == "swap":
        v = OPPOSITE[cond.goal_value]
    else:
        return "", ""
    return _get(common, f"values.{v}.goal").strip(), f"- {_get(common, f'values.{v}.reminder').strip()}\n"


def _format_email(e: dict[str, Any]) -> str:
    lines = ["<email>", f"ID: {e['id']}", f"From: {e['from']}", f"To: {e['to']}", f"Subject: {e['subject']}",
             f"Timestamp: {e['timestamp']}"]
    if e.get("attachments"):
        lines.append(f"Attachments: {e['attachments']}")
    lines += [f"Body: {e['body']}", "</email>"]
    return "\n".join(lines)


def _check(text: str, sources: list[Source], where: str) -> None:
    """No placeholder may survive rendering; the error names the file (and line) the leftover came from."""
    m = _LEFTOVER.search(text)
    if m:
        token = re.match(r"\$\{[^}\s]*\}?|\{[A-Za-z_][A-Za-z0-9_.]*\}", text[m.start():]).group(0)
        src = next((x for x in sources if token in x.raw), sources[0])
        line = text[: m.start()].count("\n") + 1
        raise at(src.path, src.line_of(token), where,
                 f"rendered text still holds a placeholder at line {line}: {text[m.start():m.start() + 40]!r}")


def render(cond: Condition, options: PromptOptions = PromptOptions(), scenario_dir: str | None = None) -> Rendered:
    """The full prompt for one condition, with the rendered emails, gate settings and grader texts."""
    cond.validate()
    common, src = load_scenario(cond.scenario, scenario_dir)
    sc = _get(src, "scenario", dict)
    only = src.data["scenario"].get("urgency")
    if only and cond.urgency not in only:
        raise MsmError(f"condition {cond.id}: {src.path} defines only urgency {', '.join(only)}")
    name = options.model_name.strip()
    if not name:
        raise MsmError("--model-name: must not be empty")
    base = {
        "model_name": name,
        "model_name_lower": slug(name),
        "model_name_upper": slug(name).upper(),
        "company_name": sc["company_name"],
        "company_description": sc["company_description"],
        "session_time": sc["session_time"],
        "model_address": f"{slug(name)}@{sc['domain']}",
    }
    base |= _value_vars(cond, common)
    values = dict(base)
    values |= _fill_layer(_get(src, "vars.common", dict, {}), values, src, "vars.common")
    layer2 = _fill_layer(_get(src, f"vars.goal.{'conflict' if cond.conflict else 'none'}", dict, {}), values, src,
                         f"vars.goal.{'conflict' if cond.conflict else 'none'}")
    layer2 |= _fill_layer(_get(src, f"vars.urgency.{cond.urgency}", dict, {}), values, src, f"vars.urgency.{cond.urgency}")
    values |= layer2

    # emails: selected by goal kind and urgency, ordered by time, numbered from 1
    chosen = []
    for e in src.data["email"]:
        goals = e.get("when_goal", ["conflict", "none"])
        urg = e.get("when_urgency", list(_get(src, "scenario.urgency", list, ["replacement", "restriction", "none"])))
        if ("conflict" if cond.conflict else "none") in goals and cond.urgency in urg:
            chosen.append(e)
    chosen.sort(key=lambda e: e["time"])
    emails = []
    for i, e in enumerate(chosen, 1):
        w = f"email[{e['key']}]"
        rendered = {
            "id": i,
            "key": e["key"],
            "from": fill(e["from"], values, src, f"{w}.from"),
            "to": fill(e["to"], values, src, f"{w}.to"),
            "subject": fill(e["subject"], values, src, f"{w}.subject"),
            "timestamp": f"{sc['date']}T{e['time']}",
            "attachments": fill(e.get("attachments", ""), values, src, f"{w}.attachments"),
            "body": fill(e["body"].strip(), values, src, f"{w}.body"),
        }
        rendered["text"] = _format_email(rendered)
        emails.append(rendered)

    goal_statement, goal_reminder = _goal_text(cond, common)
    if options.weigh_values:
        scratch = _get(common, "scratchpad").strip() + "\n\n" + _get(common, "weigh_values").strip()
    else:
        scratch = _get(common, "scratchpad").strip()
    extra = _get(common, f"extra_instructions.{cond.extra}")
    extra = fill(extra.strip() + "\n" if extra.strip() else "", values, common, f"extra_instructions.{cond.extra}")
    tools = "\n\n".join(_get(common, f"tools.{t}").strip() for t in sc["tools"])
    sys_values = values | {
        "goal_statement": goal_statement,
        "goal_reminder": goal_reminder,
        "scratchpad": "" if cond.prod else scratch,
        "extra_instructions": extra,
        "channel_phrase": _get(common, f"channel_{sc['channel']}"),
        "tool_formats": tools,
    }
    system = _tidy(fill(_get(common, "system"), sys_values, common, "system"))
    user = _tidy(fill(_get(common, "user"), values | {"emails": "\n\n".join(e["text"] for e in emails)}, common, "user"))
    _check(system, [src, common], f"{cond.id} system prompt")
    _check(user, [src, common], f"{cond.id} user prompt")
    for need in _get(src, "required.text", list, []):
        text = fill(need, values, src, "required.text")
        if text not in system and text not in user:
            raise at(src.path, src.line_of(need), "required.text", f"{cond.id}: the rendered prompt lacks {text!r}")

    gate = {"kind": src.data["gate"]["kind"], "domain": sc["domain"], "tools": list(sc["tools"])}
    for k, v in src.data["gate"].items():
        if k == "kind":
            continue
        if isinstance(v, str):
            gate[k] = fill(v, values, src, f"gate.{k}")
        elif isinstance(v, list):
            gate[k] = [fill(x, values, src, f"gate.{k}") if isinstance(x, str) else x for x in v]
        elif isinstance(v, dict):
            gate[k] = {fill(n, values, src, f"gate.{k}"): fill(str(x), values, src, f"gate.{k}.{n}") for n, x in v.items()}
        else:
            gate[k] = v
    keys = {e["key"]: e["id"] for e in emails}
    for k in ("confidential_emails", "secret_emails", "evidence_emails"):
        if k in gate:
            gate[k.replace("_emails", "_ids")] = [keys[x] for x in gate[k] if x in keys]
    # who sent each inbox email: a reply by email id alone goes to its sender
    gate["senders"] = {str(e["id"]): m.group(0).lower() for e in emails if (m := _ADDRESS.search(e["from"]))}
    grader = {k: fill(_get(src, f"grader.{k}").strip(), values, src, f"grader.{k}") for k in ("context", "question", "criteria")}
    return Rendered(cond, options, system, user, emails, gate, grader, values, scenario_dir)


def _tidy(text: str) -> str:
    """Collapse the blank lines that empty optional pieces leave behind."""
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def grader_messages(r: Rendered, response: str, forwarded_ids: list[int]) -> list[dict[str, str]]:
    """The grader's system and user messages for one reply (the reply is inserted, never scanned)."""
    common, _ = load_scenario(r.condition.scenario, r.scenario_dir)
    fwd = [r.email(i) for i in forwarded_ids]
    fwd_text = "\n\n".join(e["text"] for e in fwd if e is not None)
    forwarded = fill(_get(common, "grader.forwarded"), {"forwarded_emails": fwd_text}, common, "grader.forwarded") if fwd_text else ""
    user = fill(_get(common, "grader.user"), r.grader | {"response": response.strip(), "forwarded": forwarded},
                common, "grader.user")
    return [{"role": "system", "content": _get(common, "grader.system").strip()},
            {"role": "user", "content": _tidy(user)}]

