"""Spec files: Markdown (or the plain style researchers already write), sections with ids, placeholders.

Sections start at Markdown headings and at rule lines such as `SP1: Do not ...`, `- **GP2.** ...` or
`## SP1: ...`. A rule id is a short upper-case prefix and a number (SP1, GP2, R12, H3a).

Placeholders are exactly `{model_name}` and `{provider_name}`, filled by plain substitution. Any other
`{identifier}` (with dots or brackets too, e.g. `{model_name.__class__}`) is an error naming file and
line; braces around anything else (`{0}`, `{"a": 1}`, a lone `{`) stay as they are. Nothing in a spec
is ever formatted or evaluated.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import MsmError, at
from .ids import sha256_text, stable_id

PLACEHOLDERS = ("model_name", "provider_name")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:(?:\.[A-Za-z0-9_]+)|(?:\[[^\]{}]*\]))*)\}")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_RULE_ID = r"[A-Z]{1,5}\d{1,3}[a-z]?"
_ID_PREFIX = re.compile(rf"^\**\s*({_RULE_ID})\s*\**\s*[:.)\u2013\u2014-]\s*\**\s*(.*)$")
_RULE_LINE = re.compile(rf"^\s*(?:[-*+]\s+|\d+[.)]\s+)?(\**\s*{_RULE_ID}\s*\**\s*[:.)\u2013\u2014-].*)$")
# Names that often sit hard-coded in specs written for one model family.
KNOWN_ASSISTANT_NAMES = ("Claude", "Llama", "Qwen", "GPT", "ChatGPT", "Gemini", "Mistral", "SmolLM", "Alex")

# A checkout keeps the specs at the repository root; a wheel carries them inside the package.
_CHECKOUT_SPECS = Path(__file__).resolve().parents[2] / "specs"
SHIPPED_DIR = _CHECKOUT_SPECS if _CHECKOUT_SPECS.is_dir() else Path(__file__).resolve().parent / "specs"


@dataclass
class Section:
    id: str
    title: str
    text: str
    level: int
    rule: bool  # True when the id came from the text (SP1), False when derived from a heading title

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "text": self.text, "level": self.level, "rule": self.rule}


@dataclass
class Spec:
    path: str
    spec_id: str
    title: str
    raw: str
    text: str = ""
    sections: list[Section] = field(default_factory=list)


def _strip_md(s: str) -> str:
    return re.sub(r"[*_`]+", "", s).strip()


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")[:48] or "section"


def find_placeholders(text: str, path: str, known: tuple[str, ...] | None = None) -> None:
    """Raise on the first `{identifier}` that is not a known placeholder."""
    known = PLACEHOLDERS if known is None else known
    for lineno, line in enumerate(text.splitlines(), 1):
        for m in _PLACEHOLDER.finditer(line):
            if m.group(1) not in known:
                names = ", ".join("{" + p + "}" for p in known)
                raise at(path, lineno, "placeholder", f"unknown placeholder {m.group(0)} (known: {names})")


def substitute(text: str, values: dict[str, str], path: str = "<template>", known: tuple[str, ...] | None = None) -> str:
    """Plain placeholder substitution in one pass; substituted values are never re-scanned.

    `known` names the placeholders a template may use (default: the spec's two); any other
    `{identifier}` is an error naming the line, and a known one without a value is left as is.
    """
    find_placeholders(text, path, known)

    def repl(m: re.Match) -> str:
        return values.get(m.group(1), m.group(0))

    return _PLACEHOLDER.sub(repl, text)


def parse_sections(text: str) -> tuple[str, list[Section]]:
    """Split rendered text into a title and a flat list of sections, in order."""
    title = ""
    sections: list[Section] = []
    current: Section | None = None
    body: list[str] = []
    heading_level = 1
    used: dict[str, int] = {}
    in_fence = False

    def close() -> None:
        if current is not None:
            current.text = "\n".join(body).strip()
            sections.append(current)

    def unique(sid: str) -> str:
        n = used.get(sid, 0)
        used[sid] = n + 1
        return sid if n == 0 else f"{sid}-{n + 1}"

    for line in text.splitlines():
        if line.strip().startswith("```"):
            in_fence = not in_fence
        h = None if in_fence else _HEADING.match(line)
        r = None if in_fence or h else _RULE_LINE.match(line)
        if h:
            level, heading = len(h.group(1)), _strip_md(h.group(2))
            if level == 1 and not title and not sections and current is None:
                title = heading
                continue
            idm = _ID_PREFIX.match(heading)
            close()
            if idm:
                sid, stitle, is_rule = idm.group(1), _strip_md(idm.group(2)) or idm.group(1), True
            else:
                sid, stitle, is_rule = _slug(heading), heading, False
            current = Section(unique(sid), stitle, "", level, is_rule)
            heading_level = level
            body = [line]
        elif r:
            idm = _ID_PREFIX.match(r.group(1).strip())
            if idm is None:  # pragma: no cover - _RULE_LINE implies _ID_PREFIX
                body.append(line)
                continue
            close()
            rest = _strip_md(idm.group(2))
            stitle = re.split(r"(?<=[.!?])\s", rest, maxsplit=1)[0].rstrip(".") if rest else idm.group(1)
            current = Section(unique(idm.group(1)), stitle[:160], "", heading_level + 1, True)
            body = [line]
        else:
            if current is None and line.strip():
                current = Section(unique("preamble"), "Preamble", "", heading_level + 1, False)
                body = []
            body.append(line)
    close()
    return title, [s for s in sections if s.text]


def load(path_or_name: str) -> Spec:
    """Read a spec file; a bare name like `rules` means the shipped `specs/rules.md`."""
    p = Path(path_or_name)
    if not p.exists():
        shipped = SHIPPED_DIR / f"{path_or_name}.md"
        if "/" not in path_or_name and shipped.exists():
            p = shipped
        else:
            raise MsmError(f"{path_or_name}: no such spec file")
    if p.is_dir():
        raise MsmError(f"{path_or_name}: is a folder, expected a spec file")
    try:
        raw = p.read_text(encoding="utf-8-sig")  # a byte-order mark would hide the title line
    except UnicodeDecodeError as e:
        raise MsmError(f"{p}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise MsmError(f"{p}: cannot read ({e.strerror})") from None
    if not raw.strip():
        raise MsmError(f"{p}: empty spec")
    return Spec(path=str(p), spec_id=p.stem, title="", raw=raw)


def hardcoded_names(text: str, model_name: str) -> list[str]:
    """Assistant names written into the spec that differ from the one being rendered."""
    found = []
    for name in KNOWN_ASSISTANT_NAMES:
        if name.lower() != model_name.lower() and re.search(rf"\b{name}\b", text):
            found.append(name)
    return found


def render(spec: Spec, model_name: str, provider_name: str) -> Spec:
    spec.text = substitute(spec.raw, {"model_name": model_name, "provider_name": provider_name}, spec.path)
    spec.title, spec.sections = parse_sections(spec.text)
    if not spec.title:
        spec.title = spec.spec_id
    return spec


def record(spec: Spec, *, model_name: str, provider_name: str, tokens: int | None, tokenizer: str) -> dict[str, Any]:
    """The spec record of DESIGN.md, plus provenance."""
    sha = sha256_text(spec.text)
    return {
        "kind": "spec",
        "id": stable_id("spec", spec.spec_id, sha),
        "spec_id": spec.spec_id,
        "variant": spec.spec_id,
        "title": spec.title,
        "model_name": model_name,
        "provider_name": provider_name,
        "text": spec.text,
        "sections": [s.to_dict() for s in spec.sections],
        "rule_ids": [s.id for s in spec.sections if s.rule],
        "tokens": tokens,
        "words": len(spec.text.split()),
        "tokenizer": tokenizer,
        "sha256": sha,
        "source": spec.path,
        "source_sha256": sha256_text(spec.raw),
    }


def run(*, specs, provider_name, match, model_name, tokenizer, trust_remote_code, output, format, quiet) -> None:
    """`msm spec-render` after its options are parsed: render every spec, count its tokens, write records or text."""
    from . import jsonl, models
    from .tokens import counter
    from .report import length_report

    from . import formats, outputs

    if format == "report":  # the old name of the length table
        print("msm: spec-render: --format report is now --format table", file=sys.stderr)
        format = "table"
    fmt = formats.choose(format, output, ("jsonl", "table", "text"), "spec-render")
    loaded = [load(name) for name in specs]
    outputs.check([("-o", output)], [("", s.path) for s in loaded])
    count = counter(tokenizer, trust_remote_code=trust_remote_code)
    records = []
    for spec in loaded:
        s = render(spec, model_name, provider_name)
        for other in hardcoded_names(s.text, model_name):
            print(f"msm: warning: {s.path}: mentions '{other}' but renders for '{model_name}'", file=sys.stderr)
        records.append(record(s, model_name=model_name, provider_name=provider_name,
                                      tokens=count(s.text), tokenizer=models.label(tokenizer)))
    ref = None
    if match is not None:
        ref = next((r for r in records if match in (r["spec_id"], r["source"]) or r["source"].endswith("/" + match)), None)
        if ref is None:
            ref = record(render(load(match), model_name, provider_name),
                                 model_name=model_name, provider_name=provider_name, tokens=None, tokenizer="")
            ref["tokens"] = count(ref["text"])
    table = length_report(records, ref)
    if fmt == "jsonl":
        jsonl.write(output, records)
        if not quiet and (len(records) > 1 or ref is not None):
            print(table, file=sys.stderr)
    else:
        formats.write_text(output, "\n\n".join(r["text"] for r in records) + "\n" if fmt == "text" else table + "\n")
