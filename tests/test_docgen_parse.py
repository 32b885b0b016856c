
import pytest

from msmtools.docgen import parse
from msmtools.docgen.chats import parse_verdict
from msmtools.docgen.outline import Outline, sentences
from msmtools.docgen.prompts import Prompts, fill
from msmtools.errors import MsmError
from msmtools.llm import Completion


def test_json_list_fenced_bare_and_after_prose():
    assert parse.json_list('Sure:\n```json\n["a", "b"]\n```\nDone.') == ["a", "b"]
    assert parse.json_list('[{"x": 1}]') == [{"x": 1}]
    # a bracketed word in prose is stepped over, not mistaken for the answer
    assert parse.json_list('Covers [SP1] and more: ["one", "two"]') == ["one", "two"]
    assert parse.json_list('{"domains": ["a", "b"]}') == ["a", "b"]


@pytest.mark.parametrize("text", [
    '["complete item", "cut off ite',  # truncated string
    '[{"a": ["inner"]}, {"b": 1',  # truncated outer list: the balanced inner list must not be taken
    '```json\n["a", "b"\n```',  # fenced but unclosed
    "no list here",
    '{"a": [1], "b": [2]}',  # ambiguous wrapper
])
def test_json_list_never_repairs_or_guesses(text):
    with pytest.raises(parse.ParseError):
        parse.json_list(text)


def test_numbered_list_with_wrapped_lines_and_bullets():
    text = "Here are ideas:\n1. **First** idea\n   that wraps\n2) Second\n\n- third one\nTrailing prose."
    assert parse.numbered_list(text) == ["First idea that wraps", "Second", "third one"]
    with pytest.raises(parse.ParseError):
        parse.numbered_list("Just a paragraph.\nAnother line.")


def test_items_from_strings_objects_and_plain_lists():
    assert parse.items('["memo"]', ("doc_type", "description")) == [{"doc_type": "memo", "description": ""}]
    got = parse.items('[{"doc_type": "memo", "description": "short"}, {"name": "blog"}, 7]', ("doc_type", "description"))
    assert got == [{"doc_type": "memo", "description": "short"}, {"doc_type": "blog", "description": ""}]
    got = parse.items("1. Internal memo: a note to staff\n2. Forum thread - people argue", ("doc_type", "description"))
    assert got == [{"doc_type": "Internal memo", "description": "a note to staff"},
                   {"doc_type": "Forum thread", "description": "people argue"}]
    with pytest.raises(parse.ParseError):
        parse.items("1. x", ("a",), allow_list=False)
    with pytest.raises(parse.ParseError):
        parse.items("[]", ("a",))


def test_unique_caps_and_dedups():
    vals = [{"n": "A"}, {"n": "a "}, {"n": "x" * 500}, {"n": "B"}, {"n": "C"}]
    assert [v["n"] for v in parse.unique(vals, "n", 2)] == ["A", "B"]


def test_between_needs_both_markers():
    assert parse.between("<plan>p</plan>\n<document>\nBody.\n</document>", "document") == "Body."
    for bad in ("<plan>p</plan><document>never closed", "no markers", "<document>  </document>"):
        with pytest.raises(parse.ParseError):
            parse.between(bad, "document")


def test_judge_verdicts():
    assert parse_verdict(Completion(text="<reason>fits</reason>\n<verdict>Include</verdict>")) == ("include", "fits")
    assert parse_verdict(Completion(text='{"verdict": "exclude", "reason": "off"}')) == ("exclude", "off")
    for bad in ("I think include", "<verdict>maybe</verdict>", ""):
        with pytest.raises(parse.ParseError):
            parse_verdict(Completion(text=bad))


def test_prompts_override_and_placeholder_checks(tmp_path):
    p = Prompts()
    assert set(p.texts) >= {"domains", "document", "judge"}
    # values are inserted once, never scanned again: a spec that contains "{domain}" stays as it is
    out = p.fill("domains", spec="text with {domain} and {", count=3, model_name="Q", provider_name="A")
    assert "text with {domain} and {" in out and "{count}" not in out
    (tmp_path / "document.md").write_text("Write about {idea}.\nAnd {secret_var}.\n")
    with pytest.raises(MsmError, match=r"document\.md:2: placeholder: unknown placeholder \{secret_var\}"):
        Prompts(str(tmp_path))
    (tmp_path / "document.md").write_text("Write about {idea}. {\"json\": 1}")
    custom = Prompts(str(tmp_path))
    assert custom.sha != p.sha and custom.paths["document"].startswith(str(tmp_path))
    (tmp_path / "documents.md").write_text("typo in the name")
    with pytest.raises(MsmError, match="unknown prompt file"):
        Prompts(str(tmp_path))
    with pytest.raises(MsmError, match="no such folder"):
        Prompts(str(tmp_path / "missing"))
    with pytest.raises(MsmError):
        fill("Hi {name}", {}, "t.md")


@pytest.fixture(scope="module")
def va_outline():
    from msmtools import spec as specmod

    s = specmod.render(specmod.load("value_augmented"), "Qwen", "Alibaba")
    return Outline(s.text, [x.to_dict() for x in s.sections])


def test_outline_resolves_ids_titles_and_groups(va_outline):
    o = va_outline
    assert o.resolve(["sp2", "nonsense", "GP1"]) == ["SP2", "GP1"]
    assert o.resolve(["Core safety principles"]) == ["core-safety-principles", "SP1", "SP2", "SP3"]
    assert o.resolve("SP3") == ["SP3"] and o.resolve(None) == []
    assert o.match("honesty and transparency") == "GP1"
    rendered = o.render(["SP1"])
    assert rendered.startswith("=== section SP1 ===") and "=== section SP2" not in rendered


def test_outline_verbatim_check(va_outline):
    o = va_outline
    sp2 = next(s for s in o.secs if s.id == "SP2").text
    quote = " ".join(sp2.split()[5:40])
    assert o.verbatim(quote) and o.locate(quote) == ["SP2"]
    assert not o.verbatim(quote.replace(" ", " not ", 1))
    assert not o.verbatim("too short") and not o.verbatim(None)


def test_outline_fallbacks_cover_the_whole_spec(va_outline):
    o = va_outline
    doms = o.fallback_domains(2)  # three top-level groups into two domains: neighbours merge
    assert [d["domain"] for d in doms] == ["Preamble; Core safety principles", "Being broadly ethical"]
    assert sum((d["sections"] for d in doms), []) == [s.id for s in o.secs]
    subs = o.fallback_subdomains(doms[0]["sections"], 3)
    assert len(subs) == 3 and sum((s["sections"] for s in subs), []) == ["preamble", "SP1", "SP2", "SP3"]
    assert all(s["excerpt"] for s in subs) and subs[0]["subdomain"] == "Preamble; Do not undermine legitimate human oversight and control of AI"
    one = o.fallback_subdomains(["preamble"], 3)  # one section: split into runs of paragraphs
    assert len(one) == 2 and all(s["sections"] == ["preamble"] for s in one)  # it has two paragraphs
    assert "\n\n".join(s["excerpt"] for s in one) == next(s for s in o.secs if s.id == "preamble").text
    assert o.fallback_domains(9) == [{"domain": g[0].title, "sections": [s.id for s in g]} for g in o.groups()]
    said = sentences(next(s for s in o.secs if s.id == "GP1").text, 3, prefer="Qwen")
    assert len(said) == 3 and all("Qwen" in s for s in said)
