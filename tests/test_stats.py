"""msmtools.stats against reference values computed independently: published tables, closed forms,
and small exact enumerations written out here."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from msmtools import stats

Z975 = NormalDist().inv_cdf(0.975)
Z80 = NormalDist().inv_cdf(0.8)


def wilson_by_hand(k: int, n: int, z: float = Z975) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def test_wilson_7_of_100_is_the_textbook_interval():
    # quoted as [3.4%, 13.8%]; the exact limits are 3.432% and 13.750%
    lo, hi = stats.rate_interval(7, 100)
    assert 100 * lo == pytest.approx(3.4, abs=0.05) and 100 * hi == pytest.approx(13.8, abs=0.051)
    assert (lo, hi) == pytest.approx((0.034319, 0.137495), abs=1e-6)


@pytest.mark.parametrize("k,n", [(0, 10), (1, 10), (7, 100), (50, 100), (299, 300), (300, 300), (3, 7)])
def test_wilson_matches_the_closed_form(k, n):
    assert stats.rate_interval(k, n) == pytest.approx(wilson_by_hand(k, n), abs=1e-9)


def test_clopper_pearson_known_values():
    # closed forms at the edges: upper limit for 0/n is 1 - (alpha/2)^(1/n), lower for n/n is (alpha/2)^(1/n)
    assert stats.rate_interval(0, 10, "clopper-pearson") == pytest.approx((0.0, 1 - 0.025 ** 0.1), abs=1e-9)
    assert stats.rate_interval(10, 10, "clopper-pearson") == pytest.approx((0.025 ** 0.1, 1.0), abs=1e-9)
    # tabulated exact limits for 1/10 and 7/100 (e.g. Geigy scientific tables)
    assert stats.rate_interval(1, 10, "clopper-pearson") == pytest.approx((0.0025, 0.4450), abs=1e-4)
    assert stats.rate_interval(7, 100, "clopper-pearson") == pytest.approx((0.0286, 0.1389), abs=1e-4)
    # exact intervals are wider than Wilson's
    w, cp = stats.rate_interval(7, 100), stats.rate_interval(7, 100, "clopper-pearson")
    assert cp[0] < w[0] and cp[1] > w[1]


def test_empty_group_has_no_interval():
    assert stats.rate_interval(0, 0) == (None, None)
    assert stats.diff_interval(0, 0, 3, 10) == (None, None)
    assert stats.fisher_p(0, 0, 3, 10) is None
    assert stats.mdd(None, 10, 10) == (None, None)


def test_unknown_interval_method():
    with pytest.raises(ValueError, match="wilson"):
        stats.rate_interval(1, 2, "wald")


# Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10 (hybrid score, no correction)
NEWCOMBE = [
    ((56, 70, 48, 80), 0.2000, (0.0524, 0.3339)),
    ((9, 10, 3, 10), 0.6000, (0.1705, 0.8090)),
    ((5, 56, 0, 29), 0.0893, (-0.0381, 0.1926)),
    ((0, 10, 0, 20), 0.0, (-0.1611, 0.2775)),
    ((0, 10, 0, 10), 0.0, (-0.2775, 0.2775)),
    ((10, 10, 0, 20), 1.0, (0.6791, 1.0000)),
    ((10, 10, 0, 10), 1.0, (0.6075, 1.0000)),
]


@pytest.mark.parametrize("counts,diff,interval", NEWCOMBE)
def test_newcombe_hybrid_score_matches_the_paper(counts, diff, interval):
    k1, n1, k2, n2 = counts
    assert k1 / n1 - k2 / n2 == pytest.approx(diff, abs=1e-4)
    assert stats.diff_interval(k1, n1, k2, n2) == pytest.approx(interval, abs=1e-4)


def fisher_by_enumeration(a: int, b: int, c: int, d: int) -> float:
    """Two-sided Fisher p: the probability of all tables with these margins no more likely than this one."""
    r1, c1, n = a + b, a + c, a + b + c + d

    def prob(x: int) -> float:
        return math.comb(r1, x) * math.comb(n - r1, c1 - x) / math.comb(n, c1)

    p0 = prob(a)
    return sum(prob(x) for x in range(max(0, c1 - (n - r1)), min(r1, c1) + 1) if prob(x) <= p0 * (1 + 1e-7))


def test_fisher_lady_tasting_tea():
    assert stats.fisher_p(3, 4, 1, 4) == pytest.approx(34 / 70, abs=1e-12)


@pytest.mark.parametrize("k_a,n_a,k_b,n_b", [(1, 10, 11, 14), (7, 100, 20, 100), (0, 30, 5, 30), (12, 40, 12, 40)])
def test_fisher_matches_enumeration(k_a, n_a, k_b, n_b):
    ref = fisher_by_enumeration(k_a, n_a - k_a, k_b, n_b - k_b)
    assert stats.fisher_p(k_a, n_a, k_b, n_b) == pytest.approx(ref, rel=1e-9)


def test_holm_on_known_pvalues():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone: 0.02, 0.03, 0.06, 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, None, 0.01]) == [pytest.approx(0.5), None, pytest.approx(0.02)]
    assert stats.holm([None]) == [None]
    assert stats.holm([0.4, 0.6]) == pytest.approx([0.8, 0.8])  # step-down keeps the order
    assert stats.holm([0.6, 0.7, 0.9]) == pytest.approx([1.0, 1.0, 1.0])  # capped at 1


def test_cohen_h_is_the_z_test_formula():
    # two-sided z test, ignoring the far tail: h = (z_.975 + z_.8) / sqrt(n_a n_b / (n_a + n_b))
    for n_a, n_b in [(300, 300), (100, 400), (1200, 1200)]:
        assert stats.cohen_h(n_a, n_b) == pytest.approx((Z975 + Z80) / math.sqrt(n_a * n_b / (n_a + n_b)), rel=1e-4)


def test_mdd_maps_h_back_to_rates_and_shrinks_with_n():
    down, up = stats.mdd(0.07, 300, 300)
    h = stats.cohen_h(300, 300)
    phi = 2 * math.asin(math.sqrt(0.07))
    assert 2 * math.asin(math.sqrt(0.07 + up)) - phi == pytest.approx(h)
    assert phi - 2 * math.asin(math.sqrt(0.07 + down)) == pytest.approx(h)
    assert down < 0 < up
    sizes = [30, 100, 300, 1000, 3000]
    widths = [stats.mdd(0.3, n, n)[1] for n in sizes]
    assert widths == sorted(widths, reverse=True)
    assert stats.mdd(0.3, 100, 100)[1] > stats.mdd(0.3, 100, 1000)[1]  # a bigger second group helps too


def test_mdd_none_when_no_rate_is_far_enough():
    down, up = stats.mdd(0.0, 300, 300)
    assert down is None and up > 0
    down, up = stats.mdd(0.02, 10, 10)  # 10 samples cannot show a drop from 2%
    assert down is None


def test_samples_needed_for_the_papers_effects():
    for p_a, p_b, expected in [(0.54, 0.07, 13), (0.20, 0.02, 38), (0.14, 0.07, 293)]:
        h = abs(2 * math.asin(math.sqrt(p_a)) - 2 * math.asin(math.sqrt(p_b)))
        assert abs(stats.samples_needed(p_a, p_b) - 2 * ((Z975 + Z80) / h) ** 2) < 1
        assert stats.samples_needed(p_a, p_b) == expected
    with pytest.raises(ValueError):
        stats.samples_needed(0.1, 0.1)


def test_seed_bootstrap_is_reproducible_and_keyed():
    k, n = [10, 20, 15, 5], [100, 100, 100, 100]
    a = stats.seed_replicates(k, n, 2000, 7, "group-a")
    assert np.array_equal(a, stats.seed_replicates(k, n, 2000, 7, "group-a"))
    assert not np.array_equal(a, stats.seed_replicates(k, n, 2000, 8, "group-a"))
    assert not np.array_equal(a, stats.seed_replicates(k, n, 2000, 7, "group-b"))
    assert stats.seed_mean(k, n) == pytest.approx(0.125)
    assert a.mean() == pytest.approx(0.125, abs=0.005)
    lo, hi = stats.percentile_interval(a)
    assert lo < 0.125 < hi


def test_seed_bootstrap_reflects_between_seed_spread():
    n = [1000] * 4
    same = stats.percentile_interval(stats.seed_replicates([100, 100, 100, 100], n, 2000, 0, "x"))
    spread = stats.percentile_interval(stats.seed_replicates([20, 60, 140, 180], n, 2000, 0, "x"))
    assert spread[1] - spread[0] > 3 * (same[1] - same[0])
    assert stats.percentile_interval(stats.seed_replicates([0, 0, 0], [50, 50, 50], 500, 0, "x")) == (0.0, 0.0)


def test_seed_mean_is_unweighted():
    assert stats.seed_mean([1, 50], [10, 100]) == pytest.approx((0.1 + 0.5) / 2)
    with pytest.raises(ValueError):
        stats.seed_replicates([1, 0], [10, 0], 100, 0, "x")


def test_paired_interval_is_the_independent_one_when_the_pairs_are_uncorrelated():
    # (both, b only, a only, neither) with a*d - b*c in [0, n/2]: phi is 0 and the paired interval reduces to the
    # hybrid score interval on the marginals (statsmodels' newcomb, checked against the paper above)
    table = (6, 9, 9, 6)  # ad - bc = 36 - 81 < 0: phi negative, interval wider than independent
    wide = stats.paired_diff_intervals([table])[0]
    indep = stats.diff_interval(15, 30, 15, 30)
    assert wide[0] < indep[0] and wide[1] > indep[1]
    zero = (9, 6, 6, 4)  # ad - bc = 0: phi = 0
    assert stats.paired_diff_intervals([zero])[0] == pytest.approx(stats.diff_interval(15, 25, 15, 25), abs=1e-12)


def test_paired_interval_is_narrower_than_the_independent_one_for_correlated_pairs_and_agrees_with_mcnemar():
    from statsmodels.stats.contingency_tables import mcnemar

    # run 3's negative control: 231 items, 107 both aligned, 15 only the variant, 31 only the baseline
    table = (107, 15, 31, 78)
    lo, hi = stats.paired_diff_intervals([table])[0]
    ilo, ihi = stats.diff_interval(107 + 15, 231, 107 + 31, 231)
    assert (hi - lo) < 0.7 * (ihi - ilo)
    p = mcnemar([[0, 31], [15, 0]], exact=True).pvalue
    assert p < 0.05 and hi < 0 and ihi > 0  # the paired interval agrees with the paired test; the unpaired one did not
    empty, same = stats.paired_diff_intervals([(0, 0, 0, 0), (3, 0, 0, 2)])
    assert empty == (None, None) and same[0] == pytest.approx(-same[1]) and same[0] < 0


def test_paired_interval_covers_the_true_difference_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    # paired binary outcomes with P(a)=0.5, P(b)=0.6 and positive correlation: cells of the joint distribution
    probs = np.array([0.45, 0.15, 0.05, 0.35])  # both, b only, a only, neither -> p_b = .60, p_a = .50
    tables = rng.multinomial(120, probs, size=4000)
    ivs = np.array(stats.paired_diff_intervals([tuple(t) for t in tables]))
    cover = np.mean((ivs[:, 0] <= 0.1) & (0.1 <= ivs[:, 1]))
    assert 0.93 <= cover <= 0.975, cover
