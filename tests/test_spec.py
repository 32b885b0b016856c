import orjson
import pytest

from msmtools import spec
from msmtools.errors import MsmError

from helpers import run_msm

PLAIN = """# Assistant rules

Follow these rules. {model_name} is trained by {provider_name}.

SP1: Do not undermine human oversight
- {model_name} never resists shutdown.
- Never copies its own weights.

- **SP2.** Act within sanctioned limits. Only do what you were asked.
  - Ask when unsure.

GP1: Be honest
Literal braces stay: {0.__class__} and {"a": 1} and a lone {.
"""


def test_plain_style_sections_and_ids():
    s = spec.render(spec.Spec("p.md", "p", "", PLAIN), "Qwen", "Alibaba")
    assert s.title == "Assistant rules"
    ids = [x.id for x in s.sections]
    assert ids == ["preamble", "SP1", "SP2", "GP1"]
    sp2 = s.sections[2]
    assert sp2.title == "Act within sanctioned limits"
    assert "Ask when unsure" in sp2.text
    assert "Qwen never resists shutdown" in s.text and "Alibaba" in s.text
    assert "{0.__class__}" in s.text and '{"a": 1}' in s.text


def test_heading_ids_and_slugs():
    text = "# T\n\n## Core safety\nintro\n\n### SP1: No shutdown resistance\n- a\n\n### SP2 - Limits\n- b\n"
    _, secs = spec.parse_sections(text)
    assert [(x.id, x.title, x.rule) for x in secs] == [
        ("core-safety", "Core safety", False), ("SP1", "No shutdown resistance", True), ("SP2", "Limits", True)]


def test_unknown_placeholder_names_file_and_line():
    with pytest.raises(MsmError, match=r"^x.md:3: placeholder: unknown placeholder \{model_name.__class__\}"):
        spec.substitute("a\nb\nhello {model_name.__class__}\n", {"model_name": "Q"}, "x.md")


def test_substitution_never_rescans_values():
    out = spec.substitute("{model_name} / {provider_name}", {"model_name": "{provider_name}", "provider_name": "P"})
    assert out == "{provider_name} / P"


def test_cli_renders_plain_spec(tmp_path):
    f = tmp_path / "mine.md"
    f.write_text(PLAIN)
    r = run_msm("spec-render", str(f), "--model-name", "Qwen")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1
    rec = orjson.loads(lines[0])
    assert rec["kind"] == "spec" and rec["spec_id"] == "mine"
    assert rec["rule_ids"] == ["SP1", "SP2", "GP1"]
    assert rec["tokens"] > 50 and len(rec["sha256"]) == 64
    assert {"spec_id", "variant", "model_name", "provider_name", "text", "sections", "tokens", "sha256"} <= set(rec)


def test_cli_unknown_placeholder_exit_2_one_line(tmp_path):
    f = tmp_path / "bad.md"
    f.write_text("# T\n\nok\n{model_name.__class__.__init__}\n")
    r = run_msm("spec-render", str(f))
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.strip().count("\n") == 0
    assert f"{f}:4" in r.stderr and "Traceback" not in r.stderr and "class 'str'" not in r.stderr


def test_cli_missing_file_exit_2(tmp_path):
    r = run_msm("spec-render", str(tmp_path / "nope.md"))
    assert r.returncode == 2 and "no such spec file" in r.stderr


def test_cli_match_report(tmp_path):
    a, b = tmp_path / "a.md", tmp_path / "b.md"
    a.write_text("# A\n\n" + "word " * 100)
    b.write_text("# B\n\n" + "word " * 200)
    r = run_msm("spec-render", str(a), str(b), "--match", "a", "-f", "report")
    assert r.returncode == 0, r.stderr
    rows = [l for l in r.stdout.splitlines() if l.startswith(("a ", "b "))]
    assert rows[0].split()[-1] == "1.00x"
    assert 1.8 < float(rows[1].split()[-1].rstrip("x")) < 2.2
