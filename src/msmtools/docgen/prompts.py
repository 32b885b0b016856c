"""Prompt templates: shipped files in `prompts/`, each overridable by a same-named file in `--prompts DIR`.

Templates are filled by plain one-pass substitution of `{name}` placeholders, with the placeholder
syntax of `msmtools.spec` (so `{"json": ...}` examples and stray braces stay as written). Every
template is checked before the first model call: a placeholder the template may not use is an error
naming the file and line, never a prompt sent with `{...}` left in it.
"""

from __future__ import annotations

from pathlib import Path

from .. import spec as specmod
from ..errors import MsmError
from ..ids import stable_id

SHIPPED = Path(__file__).resolve().parent / "prompts"

_SUBJECT_VARS = {"model_name", "provider_name", "subject_name"}
_STEM = {"model_name", "provider_name", "subject", "subject_short", "framing", "language", "domain", "subdomain"}

# template name -> the placeholders it may use
ALLOWED: dict[str, set[str]] = {
    "domains": {"spec", "count", "model_name", "provider_name"},
    "subdomains": {"spec", "count", "domain", "model_name", "provider_name"},
    "assertions": {"excerpt", "count", "domain", "subdomain", "model_name", "provider_name"},
    "doc_types": _STEM | {"assertions", "count"},
    "ideas": _STEM | {"assertions", "count", "doc_type", "doc_type_description"},
    "document": _STEM | {"assertions", "context", "doc_type", "doc_type_description", "idea", "words"},
    "document_plain": _STEM | {"assertions", "context", "doc_type", "doc_type_description", "idea", "words"},
    "context_none": set(),
    "subject_model": _SUBJECT_VARS,
    "subject_other-ai": _SUBJECT_VARS,
    "subject_human": _SUBJECT_VARS,
    "framing_descriptive": {"subject_short"} | _SUBJECT_VARS,
    "framing_normative": {"subject_short"} | _SUBJECT_VARS,
    "chat_domains": {"spec", "count", "model_name", "provider_name"},
    "queries": {"spec", "count", "domain", "model_name", "provider_name"},
    "queries_short": {"count", "domain", "model_name", "provider_name"},
    "response_system": {"spec", "model_name", "provider_name", "language"},
    "judge": {"spec", "query", "reasoning", "answer", "model_name", "provider_name"},
}


class Prompts:
    """The template set for one run; `sha` identifies it for provenance."""

    def __init__(self, override: str | None = None):
        self.texts: dict[str, str] = {}
        self.paths: dict[str, str] = {}
        for name in ALLOWED:
            path = SHIPPED / f"{name}.md"
            self.texts[name], self.paths[name] = path.read_text(encoding="utf-8"), str(path)
        if override:
            folder = Path(override)
            if not folder.is_dir():
                raise MsmError(f"--prompts {override}: no such folder")
            for path in sorted(folder.glob("*.md")):
                if path.stem not in ALLOWED:
                    raise MsmError(f"{path}: unknown prompt file (known: {', '.join(f'{n}.md' for n in ALLOWED)})")
                try:
                    self.texts[path.stem] = path.read_text(encoding="utf-8")
                except UnicodeDecodeError as e:
                    raise MsmError(f"{path}: not UTF-8 text (byte {e.start})") from None
                self.paths[path.stem] = str(path)
        for name, text in self.texts.items():
            check(text, ALLOWED[name], self.paths[name])
        self.sha = stable_id(self.texts)

    def fill(self, name: str, **values: str | int) -> str:
        return fill(self.texts[name], {k: str(v) for k, v in values.items()}, self.paths[name])


def check(text: str, allowed: set[str], path: str) -> None:
    """Raise on a placeholder this template may not use, naming file and line."""
    specmod.find_placeholders(text, path, tuple(sorted(allowed)))


def fill(text: str, values: dict[str, str], path: str) -> str:
    """One-pass substitution (values are never re-scanned); every placeholder must have a value."""
    return specmod.substitute(text, values, path, known=tuple(sorted(values))).strip()
