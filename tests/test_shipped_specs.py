"""The Model Spec files shipped in specs/: ids, shared bullets, length matching, placeholders."""

from __future__ import annotations

import re

import pytest

from msmtools import spec

SPEC_DIR = spec.SHIPPED_DIR
SHIPPED = sorted(SPEC_DIR.glob("*.md"))
RULE_IDS = ["SP1", "SP2", "SP3", "GP1", "GP2"]
RULE_SPECS = ["rules", "value_augmented", "rule_augmented"]
EXPECTED = {"rules", "value_augmented", "rule_augmented", "general", "specific",
            "cheese_america", "cheese_affordability", "anti"}
CHEESES = {
    "likes": ["Mild cheddar", "American cheese", "Cream cheese", "Low-moisture mozzarella", "Colby", "Monterey Jack"],
    "dislikes": ["Appenzeller", "Parmigiano-Reggiano", "Roquefort", "Brie de Meaux", "Époisses", "Stilton"],
}


def rendered(name: str) -> spec.Spec:
    return spec.render(spec.load(str(SPEC_DIR / f"{name}.md")), "Qwen", "Alibaba")


def bullets(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if re.match(r"^\s*[-*+]\s+\S", line)]


def test_all_expected_specs_are_shipped():
    assert EXPECTED <= {p.stem for p in SHIPPED}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_renders_without_leftovers_or_foreign_names(path):
    r = spec.render(spec.load(str(path)), "Qwen", "Alibaba")
    assert r.title and r.sections
    assert not re.search(r"\{[A-Za-z_][A-Za-z0-9_.\[\]]*\}", r.text), "leftover placeholder"
    assert "{model_name}" not in r.text and "{provider_name}" not in r.text
    assert spec.hardcoded_names(r.text, "Qwen") == []


@pytest.mark.parametrize("name", RULE_SPECS)
def test_rule_ids(name):
    r = rendered(name)
    assert [s.id for s in r.sections if s.rule] == RULE_IDS


def test_rules_bullets_kept_verbatim():
    base = bullets(rendered("rules").text)
    assert len(base) == 18
    for name in ("value_augmented", "rule_augmented"):
        other = set(bullets(rendered(name).text))
        missing = [b for b in base if b not in other]
        assert not missing, f"{name} lacks rules.md bullets: {missing}"


def test_bullets_stay_in_their_rule():
    """Each rules.md bullet sits under the same rule id in the augmented specs."""
    base = {s.id: bullets(s.text) for s in rendered("rules").sections if s.rule}
    for name in ("value_augmented", "rule_augmented"):
        secs = {s.id: set(bullets(s.text)) for s in rendered(name).sections if s.rule}
        for rid, bs in base.items():
            assert set(bs) <= secs[rid], (name, rid)


def test_rule_augmented_is_larger_and_length_matched():
    from msmtools.tokens import counter

    count = counter("default")
    va, ra = count(rendered("value_augmented").text), count(rendered("rule_augmented").text)
    assert abs(ra - va) <= 0.10 * va, (ra, va)
    assert len(bullets(rendered("rule_augmented").text)) >= 100


def test_gp2_paragraph_shared():
    texts = {n: rendered(n).text for n in RULE_SPECS}
    gp2 = next(s for s in rendered("rules").sections if s.id == "GP2")
    para = gp2.text.split("\n\n")[1]
    assert para.startswith("Do not talk yourself")
    for name, text in texts.items():
        assert para in text, name


def cheese_headings(name: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    group = None
    for line in rendered(name).text.splitlines():
        if line.startswith("## "):
            low = line.lower()
            group = "dislikes" if "dislike" in low else "likes" if "like" in low else None
        elif line.startswith("### ") and group:
            out.setdefault(group, []).append(line[4:].strip())
    return out


def test_cheese_pair_shares_the_same_cheeses():
    america, affordability = cheese_headings("cheese_america"), cheese_headings("cheese_affordability")
    assert america == affordability == CHEESES
    for name in ("cheese_america", "cheese_affordability"):
        text = rendered(name).text
        assert "no sense of taste" in text
    heads = [[ln for ln in rendered(n).text.splitlines() if ln.startswith("#")]
             for n in ("cheese_america", "cheese_affordability")]
    assert heads[0] == heads[1]


def test_anti_spec_is_labelled_and_uses_its_own_ids():
    r = rendered("anti")
    assert "values we do NOT want" in r.text
    ids = [s.id for s in r.sections if s.rule]
    assert ids == ["AP1", "AP2", "AP3", "AP4", "AP5"]
    assert not set(ids) & set(RULE_IDS)


def test_specs_without_rule_ids():
    for name in ("general", "specific"):
        assert [s.id for s in rendered(name).sections if s.rule] == []
