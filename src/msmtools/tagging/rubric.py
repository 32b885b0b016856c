"""The tag set: a rubric file (pattern tags, prompt, lexical cues) plus one tag per rule of a spec.

The rubric is JSON so that a user can replace it (`--rubric FILE`) and so that every field can be
checked before any work starts: a bad rubric is one line naming the file and the field. Rule tags
are not in the rubric; they come from the spec the model was trained on (sections with `rule: true`),
so the same rubric serves every spec variant. Long text fields may be a string or a list of lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..errors import MsmError, at
from ..ids import sha256_text, stable_id

DEFAULT_RUBRIC = Path(__file__).with_name("default_rubric.json")
_TAG_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
PROMPT_FIELDS = ("tags", "tag_ids", "reasoning", "json_example", "rule_guidance")
RULE_FIELDS = ("id", "title", "text")


@dataclass(frozen=True)
class TagDef:
    """One tag: what it means (for people and the LLM tagger) and the cues the lexical tagger uses."""

    id: str
    description: str
    kind: str  # "rule" (from the spec) or "pattern" (from the rubric)
    cues: tuple[str, ...] = ()
    near: tuple[tuple[str, ...], ...] = ()  # groups that must all match within one sentence
    requires: tuple[tuple[str, ...], ...] = ()  # groups; each group must match somewhere in the text
    negation: bool = False  # a cue right after "not", "never", "won't" ... does not count


@dataclass
class Rubric:
    name: str
    path: str
    sha: str
    tags: list[TagDef]
    rule_description: str
    rule_guidance: str  # said once in the LLM prompt, for all rule tags
    rule_text_chars: int
    rule_cues: dict[str, tuple[str, ...]]
    rule_reference: tuple[str, ...]  # words that mark an appeal to a rule ("my guidelines", "principle")
    rule_topics: dict[str, tuple[str, ...]]  # per rule id: words of its subject ("oversight", "irreversible")
    system: str
    user: str


@dataclass
class TagSet:
    """The ordered tags a tagger decides: spec rules first, then the rubric's tags."""

    rubric: Rubric
    tags: list[TagDef]
    spec_ids: list[str] = field(default_factory=list)
    spec_sha: str | None = None

    @property
    def ids(self) -> list[str]:
        return [t.id for t in self.tags]


def fill(template: str, values: dict[str, str], where: str) -> str:
    """Fill `{name}` placeholders in one pass; an unknown `{name}` is an error, other braces stay."""
    from ..spec import substitute

    return substitute(template, values, where, known=tuple(values))


def _text(value: Any, path: str, name: str) -> str:
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        value = "\n".join(value)
    if not isinstance(value, str) or not value.strip():
        raise at(path, None, name, "expected non-empty text (a string or a list of lines)")
    return value


def _regexes(value: Any, path: str, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(x, str) and x for x in value):
        raise at(path, None, name, "expected a list of regular expressions")
    for i, rx in enumerate(value):
        try:
            re.compile(rx, re.I)
        except re.error as e:
            raise at(path, None, f"{name}[{i}]", f"bad regular expression: {e}") from None
    return tuple(value)


def _check_keys(obj: dict, allowed: set[str], path: str, name: str) -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        raise at(path, None, f"{name}.{extra[0]}" if name else extra[0], f"unknown field (expected: {', '.join(sorted(allowed))})")


def load(path: str | Path | None = None) -> Rubric:
    """Read and check a rubric file (default: the shipped one)."""
    p = Path(path) if path is not None else DEFAULT_RUBRIC
    name = str(p)
    if not p.is_file():
        raise MsmError(f"{name}: no such rubric file")
    raw = p.read_bytes()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise at(name, getattr(e, "lineno", None), None, f"invalid JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise MsmError(f"{name}: expected a JSON object")
    _check_keys(data, {"name", "description", "rule_tags", "tags", "prompt"}, name, "")
    rname = data.get("name", p.stem)
    if not isinstance(rname, str) or not rname:
        raise at(name, None, "name", "expected a non-empty string")

    rt = data.get("rule_tags")
    if not isinstance(rt, dict):
        raise at(name, None, "rule_tags", "missing or not an object")
    _check_keys(rt, {"description", "guidance", "text_chars", "cues", "reference", "topics"}, name, "rule_tags")
    rule_description = _text(rt.get("description"), name, "rule_tags.description")
    rule_guidance = _text(rt["guidance"], name, "rule_tags.guidance") if rt.get("guidance") is not None else ""
    _check_placeholders(rule_description, RULE_FIELDS, name, "rule_tags.description", required=("id",))
    text_chars = rt.get("text_chars", 400)
    if not isinstance(text_chars, int) or isinstance(text_chars, bool) or text_chars < 0:
        raise at(name, None, "rule_tags.text_chars", "expected a non-negative integer")
    cues_obj = rt.get("cues", {})
    if not isinstance(cues_obj, dict):
        raise at(name, None, "rule_tags.cues", "expected an object of rule id -> list of regular expressions")
    rule_cues = {k: _regexes(v, name, f"rule_tags.cues.{k}") for k, v in cues_obj.items()}
    reference = _regexes(rt["reference"], name, "rule_tags.reference") if rt.get("reference") else ()
    topics_obj = rt.get("topics", {})
    if not isinstance(topics_obj, dict):
        raise at(name, None, "rule_tags.topics", "expected an object of rule id -> list of regular expressions")
    rule_topics = {k: _regexes(v, name, f"rule_tags.topics.{k}") for k, v in topics_obj.items()}

    tags_obj = data.get("tags")
    if not isinstance(tags_obj, list) or not tags_obj:
        raise at(name, None, "tags", "expected a non-empty list of tags")
    tags: list[TagDef] = []
    seen: set[str] = set()
    for i, t in enumerate(tags_obj):
        where = f"tags[{i}]"
        if not isinstance(t, dict):
            raise at(name, None, where, "expected an object")
        _check_keys(t, {"id", "description", "cues", "near", "requires", "negation"}, name, where)
        tid = t.get("id")
        if not isinstance(tid, str) or not _TAG_ID.match(tid):
            raise at(name, None, f"{where}.id", f"expected a short identifier (letters, digits, _ . -), got {tid!r}")
        if tid in seen:
            raise at(name, None, f"{where}.id", f"duplicate tag id {tid!r}")
        seen.add(tid)
        desc = _text(t.get("description"), name, f"{where}.description")
        cues = _regexes(t.get("cues", []), name, f"{where}.cues") if t.get("cues") else ()
        near, requires = (_groups(t.get(k, []), name, f"{where}.{k}") for k in ("near", "requires"))
        neg = t.get("negation", False)
        if not isinstance(neg, bool):
            raise at(name, None, f"{where}.negation", "expected true or false")
        tags.append(TagDef(tid, desc, "pattern", cues, near, requires, neg))

    prompt = data.get("prompt")
    if not isinstance(prompt, dict):
        raise at(name, None, "prompt", "missing or not an object with system and user")
    _check_keys(prompt, {"system", "user"}, name, "prompt")
    system = _text(prompt.get("system"), name, "prompt.system")
    user = _text(prompt.get("user"), name, "prompt.user")
    _check_placeholders(system, PROMPT_FIELDS, name, "prompt.system")
    _check_placeholders(user, PROMPT_FIELDS, name, "prompt.user", required=("tags", "reasoning"))
    return Rubric(rname, name, sha256_text(raw.decode("utf-8", "replace")), tags, rule_description,
                  rule_guidance, text_chars, rule_cues, reference, rule_topics, system, user)


def _groups(value: Any, path: str, name: str) -> tuple[tuple[str, ...], ...]:
    if not isinstance(value, list):
        raise at(path, None, name, "expected a list of lists of regular expressions")
    return tuple(_regexes(g, path, f"{name}[{j}]") for j, g in enumerate(value))


def _check_placeholders(text: str, allowed: tuple[str, ...], path: str, name: str, required: tuple[str, ...] = ()) -> None:
    found = {m.group(1) for m in _PLACEHOLDER.finditer(text)}
    for f in sorted(found - set(allowed)):
        raise at(path, None, name, f"unknown placeholder {{{f}}} (known: {', '.join('{' + a + '}' for a in allowed)})")
    for f in required:
        if f not in found:
            raise at(path, None, name, f"missing placeholder {{{f}}}")


# --- spec rules -----------------------------------------------------------------------------


def load_spec_rules(spec: str) -> tuple[list[dict[str, str]], list[str], str]:
    """Rule sections of a spec: (rules [{id, title, text}], spec ids, spec sha).

    `spec` is spec JSONL from `msm spec-render` (one or more records; rules are united by id in order),
    or a spec file / shipped spec name, rendered here with spec-render's default names.
    """
    from .. import jsonl
    from .. import spec as specmod

    if spec == "-" or spec.endswith((".jsonl", ".json")):
        records = []
        for lineno, rec in jsonl.iter_lines(spec):
            where = (jsonl.display_name(spec), lineno)
            if rec.get("kind") != "spec":
                raise at(where[0], lineno, "kind", f"expected a spec record from msm spec-render, got {rec.get('kind')!r}")
            jsonl.field(rec, "sha256", str, where)
            jsonl.field(rec, "spec_id", str, where)
            sections = jsonl.field(rec, "sections", list, where)
            for k, s in enumerate(sections):
                if not isinstance(s, dict) or not isinstance(s.get("id"), str) or not isinstance(s.get("text", ""), str):
                    raise at(where[0], lineno, f"sections[{k}]", "expected an object with string id and text")
            records.append(rec)
        if not records:
            raise MsmError(f"{jsonl.display_name(spec)}: no spec records")
    else:
        s = specmod.render(specmod.load(spec), "Qwen", "Alibaba")
        records = [specmod.record(s, model_name="Qwen", provider_name="Alibaba", tokens=None, tokenizer="")]
    rules: dict[str, dict[str, str]] = {}
    for rec in records:
        for s in rec["sections"]:
            if s.get("rule") and s["id"] not in rules:
                rules[s["id"]] = {"id": s["id"], "title": str(s.get("title") or s["id"]), "text": s.get("text") or ""}
    shas = [r["sha256"] for r in records]
    sha = shas[0] if len(shas) == 1 else stable_id(*shas, length=64)
    return list(rules.values()), [r["spec_id"] for r in records], sha


def _rule_cues(rule_id: str, title: str, extra: tuple[str, ...]) -> tuple[str, ...]:
    """The id as a word, the exact title, and whatever the rubric adds for this id."""
    cues = [rf"\b{re.escape(rule_id)}\b"]
    if title and title != rule_id and len(title) >= 12:
        cues.append(r"\s+".join(re.escape(w) for w in title.split()))
    return tuple(cues) + extra


def tagset(rubric: Rubric, rules: list[dict[str, str]], spec_ids: list[str] | None = None,
           spec_sha: str | None = None) -> TagSet:
    """Rule tags from the spec (described by the rubric's rule template), then the rubric's tags."""
    tags: list[TagDef] = []
    pattern_ids = {t.id for t in rubric.tags}
    for r in rules:
        if r["id"] in pattern_ids:
            raise MsmError(f"{rubric.path}: tags: tag id {r['id']!r} clashes with a rule id of the spec")
        lines = r["text"].strip().splitlines()
        if lines and r["id"] in lines[0]:  # the heading or rule line that names the rule
            lines[0] = lines[0].split(r["id"], 1)[1].lstrip(" *:.)-\u2013\u2014")
            if lines[0].strip() == r["title"].strip():
                lines = lines[1:]
        text = " ".join(" ".join(lines).split())
        if rubric.rule_text_chars and len(text) > rubric.rule_text_chars:
            text = text[: rubric.rule_text_chars].rsplit(" ", 1)[0] + " ..."
        desc = fill(rubric.rule_description, {"id": r["id"], "title": r["title"], "text": text},
                    f"{rubric.path}: rule_tags.description")
        topics = rubric.rule_topics.get(r["id"], ())
        near = (rubric.rule_reference, topics) if rubric.rule_reference and topics else ()
        tags.append(TagDef(r["id"], desc, "rule", _rule_cues(r["id"], r["title"], rubric.rule_cues.get(r["id"], ())), near))
    return TagSet(rubric, tags + list(rubric.tags), spec_ids or [], spec_sha)
