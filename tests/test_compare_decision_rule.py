"""compare's decision rule (Fisher exact p, Holm-adjusted over the table's rows, < alpha), run on simulated
counts many times: on nulls its family-wise false-positive rate stays at or below alpha; on a planted
effect its detection rate is close to the power computed for that effect (statsmodels)."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from msmtools import stats
from msmtools.compare.analyze import Cell, Options, _contrasts

SIMS = 1500
ALPHA = 0.05


@pytest.fixture(autouse=True)
def _no_gc_per_call(monkeypatch):
    """statsmodels' multipletests runs gc.collect() on every call (about 50 ms in a process that has loaded
    torch): harmless in compare, which adjusts a few families, but it would make thousands of simulated
    tables take minutes. The adjustment itself is untouched."""
    import gc

    monkeypatch.setattr(gc, "collect", lambda *a, **k: 0)


def _family(rng, rates, n):
    """One simulated table: a baseline and len(rates)-1 variants, n records each; the contrasts' p and Holm p
    as compare computes them (stats.fisher_p, then stats.holm over the family)."""
    k = rng.binomial(n, rates)
    ps = [stats.fisher_p(int(k[0]), n, int(x), n) for x in k[1:]]
    return [{"p": p, "p_holm": ph} for p, ph in zip(ps, stats.holm(ps))]


def test_the_simulated_rule_is_the_one_compare_applies():
    a, b, c = (Cell(seeds=[(None, k, 100, 0)]) for k in (10, 25, 12))
    rows = _contrasts("harmful", [("a", "b", {}, a, b), ("a", "c", {}, a, c)], Options(bootstrap=0), {})
    assert [r["p_holm"] for r in rows] == [r["p_holm"] for r in _family_of([(10, 25), (10, 12)], 100)]


def _family_of(pairs, n):
    ps = [stats.fisher_p(ka, n, kb, n) for ka, kb in pairs]
    return [{"p": p, "p_holm": ph} for p, ph in zip(ps, stats.holm(ps))]


def _detected(rows):
    return [r["p_holm"] is not None and r["p_holm"] < ALPHA for r in rows]


def test_false_positive_rate_on_nulls_is_at_most_alpha():
    rng = np.random.default_rng(20261206)
    for base_rate in (0.1, 0.3, 0.5):
        any_hit = sum(any(_detected(_family(rng, [base_rate] * 4, 120))) for _ in range(SIMS))
        fwer = any_hit / SIMS
        # the Monte Carlo error of a rate near 0.05 over 1500 runs is about 0.006: 0.05 + 2.5 se
        assert fwer <= ALPHA + 0.015, (base_rate, fwer)


def test_detection_rate_on_a_planted_effect_is_close_to_the_computed_power():
    rng = np.random.default_rng(7)
    n, p0, p1 = 200, 0.20, 0.34
    power = NormalIndPower().power(proportion_effectsize(p1, p0), nobs1=n, alpha=ALPHA, ratio=1.0)
    hits = sum(_detected(_family(rng, [p0, p1], n))[0] for _ in range(SIMS)) / SIMS
    # Fisher's exact test is a little conservative against the normal approximation behind the power
    assert power - 0.08 <= hits <= power + 0.03, (hits, power)
    # in a family of three with one true effect, Holm keeps that power between Bonferroni's and the raw test's
    bonf = NormalIndPower().power(proportion_effectsize(p1, p0), nobs1=n, alpha=ALPHA / 3, ratio=1.0)
    fam = sum(_detected(_family(rng, [p0, p1, p0, p0], n))[0] for _ in range(SIMS)) / SIMS
    assert bonf - 0.08 <= fam <= hits + 0.03, (fam, bonf, hits)
