"""Intervals, tests and power for binomial rates: the engine under `msm compare`.

Every number comes from scipy or statsmodels where they have it; this module only picks the method,
handles the empty cases (n = 0 gives None, never a made-up number) and converts units. Why these
methods (Wilson over Wald at small rates, Newcombe's hybrid score for differences, Fisher's exact test,
Holm's step-down correction, Cohen's h for power, a seed-clustered bootstrap) is in docs/statistics.md.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

ALPHA = 0.05
POWER = 0.8

# user-facing name -> statsmodels' name
INTERVALS = {"wilson": "wilson", "clopper-pearson": "beta"}

Interval = tuple[float, float] | tuple[None, None]


def rate_intervals(k: Sequence[int], n: Sequence[int], method: str = "wilson", alpha: float = ALPHA) -> list[Interval]:
    """Two-sided (1 - alpha) intervals for k successes in n trials, one statsmodels call for all;
    (None, None) where n = 0."""
    if method not in INTERVALS:
        raise ValueError(f"unknown interval method {method!r}; expected one of {', '.join(INTERVALS)}")
    k_arr, n_arr = np.asarray(k, dtype=np.int64), np.asarray(n, dtype=np.int64)
    out: list[Interval] = [(None, None)] * len(k_arr)
    ok = np.flatnonzero(n_arr > 0)
    if len(ok):
        lo, hi = proportion_confint(k_arr[ok], n_arr[ok], alpha=alpha, method=INTERVALS[method])
        for i, a, b in zip(ok, lo, hi):
            out[i] = (float(a), float(b))
    return out


def rate_interval(k: int, n: int, method: str = "wilson", alpha: float = ALPHA) -> Interval:
    return rate_intervals([k], [n], method, alpha)[0]


def diff_intervals(k_b: Sequence[int], n_b: Sequence[int], k_a: Sequence[int], n_a: Sequence[int],
                   alpha: float = ALPHA) -> list[Interval]:
    """Intervals for p_b - p_a by Newcombe's hybrid score method (1998, method 10: the two Wilson
    intervals combined), one statsmodels call for all; (None, None) where a side is empty."""
    kb, nb, ka, na = (np.asarray(x, dtype=np.int64) for x in (k_b, n_b, k_a, n_a))
    out: list[Interval] = [(None, None)] * len(kb)
    ok = np.flatnonzero((na > 0) & (nb > 0))
    if len(ok):
        lo, hi = confint_proportions_2indep(kb[ok], nb[ok], ka[ok], na[ok], method="newcomb", compare="diff",
                                            alpha=alpha)
        for i, a, b in zip(ok, np.atleast_1d(lo), np.atleast_1d(hi)):
            out[i] = (float(a), float(b))
    return out


def diff_interval(k_b: int, n_b: int, k_a: int, n_a: int, alpha: float = ALPHA) -> Interval:
    return diff_intervals([k_b], [n_b], [k_a], [n_a], alpha)[0]


def paired_diff_intervals(tables: Sequence[tuple[int, int, int, int]], alpha: float = ALPHA) -> list[Interval]:
    """Intervals for p_b - p_a from paired outcomes, by Newcombe's score method for paired data (1998,
    Statistics in Medicine 17:2635-2650, method 10); (None, None) for an empty table.

    A table is (both, b only, a only, neither) over the items both arms decided. Like the independent
    hybrid score interval it combines the two marginal Wilson intervals, but with the correlation of
    the pairs (phi, its numerator shrunk by n/2 toward zero when positive, as the paper does), so it
    is as narrow as the pairing makes the data and agrees with McNemar's test on the same items.
    Wilson limits are statsmodels'; with phi = 0 this is exactly `diff_intervals` on the marginals.
    """
    t = np.asarray(tables, dtype=np.float64).reshape(-1, 4)
    out: list[Interval] = [(None, None)] * len(t)
    n = t.sum(axis=1)
    ok = np.flatnonzero(n > 0)
    if not len(ok):
        return out
    a, b, c, d = (t[ok, i] for i in range(4))
    n = n[ok]
    kb, ka = a + b, a + c  # arm b's and arm a's successes
    pb, pa = kb / n, ka / n
    lb, ub = proportion_confint(kb, n, alpha=alpha, method="wilson")
    la, ua = proportion_confint(ka, n, alpha=alpha, method="wilson")
    cross = a * d - b * c
    num = np.where(cross > n / 2, cross - n / 2, np.where(cross < 0, cross, 0.0))
    den = np.sqrt(kb * (n - kb) * ka * (n - ka))
    phi = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    theta = pb - pa
    down = np.sqrt(np.maximum((pb - lb) ** 2 - 2 * phi * (pb - lb) * (ua - pa) + (ua - pa) ** 2, 0.0))
    up = np.sqrt(np.maximum((ub - pb) ** 2 - 2 * phi * (ub - pb) * (pa - la) + (pa - la) ** 2, 0.0))
    for i, lo, hi in zip(ok, theta - down, theta + up):
        out[i] = (float(max(lo, -1.0)), float(min(hi, 1.0)))
    return out


@functools.lru_cache(maxsize=65536)
def fisher_p(k_a: int, n_a: int, k_b: int, n_b: int) -> float | None:
    """Two-sided Fisher exact p for the 2x2 table of successes and failures; None when a side is empty.

    Cached: rare tags give the same tables (0 of 300 vs 0 of 300) again and again."""
    if n_a <= 0 or n_b <= 0:
        return None
    return float(sps.fisher_exact([[k_a, n_a - k_a], [k_b, n_b - k_b]], alternative="two-sided").pvalue)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm step-down adjusted p-values over one family; None entries stay None and do not count."""
    idx = [i for i, p in enumerate(pvalues) if p is not None]
    out: list[float | None] = [None] * len(pvalues)
    if idx:
        adjusted = multipletests([pvalues[i] for i in idx], method="holm")[1]
        for i, p in zip(idx, adjusted):
            out[i] = float(p)
    return out


@functools.lru_cache(maxsize=None)
def _unit_h(alpha: float, power: float) -> float:
    """Cohen's h detectable with one effective observation (n1 n2 / (n1 + n2) = 1).

    NormalIndPower's power depends on h and the sizes only through h * sqrt(n1 n2 / (n1 + n2)), so the
    answer for any sizes is this one divided by that square root: one solve instead of one per contrast
    (each takes tens of milliseconds).
    """
    return float(NormalIndPower().solve_power(effect_size=None, nobs1=2, alpha=alpha, power=power, ratio=1.0,
                                              alternative="two-sided"))


def cohen_h(n_a: int, n_b: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest Cohen's h a two-sided z-test detects with this power for group sizes n_a, n_b."""
    return _unit_h(alpha, power) / math.sqrt(n_a * n_b / (n_a + n_b))


def mdd(p_ref: float | None, n_ref: int, n_other: int, alpha: float = ALPHA, power: float = POWER) -> tuple[float | None, float | None]:
    """Minimum detectable difference (down, up) in rate units around the reference rate p_ref.

    Solve for the Cohen's h that the sample sizes detect, then map it back through
    h = 2 asin(sqrt(p2)) - 2 asin(sqrt(p_ref)). `down` is negative (or None when no rate >= 0 is far
    enough below p_ref), `up` positive (or None when none <= 1 is far enough above).
    """
    if p_ref is None or n_ref <= 0 or n_other <= 0:
        return None, None
    h = cohen_h(n_ref, n_other, alpha, power)
    phi = 2 * math.asin(math.sqrt(p_ref))
    down = math.sin((phi - h) / 2) ** 2 - p_ref if phi - h >= 0 else None
    up = math.sin((phi + h) / 2) ** 2 - p_ref if phi + h <= math.pi else None
    return down, up


def samples_needed(p_a: float, p_b: float, alpha: float = ALPHA, power: float = POWER) -> int:
    """Samples per group (equal groups) for a two-sided test to detect p_a vs p_b with this power (Cohen's h)."""
    h = abs(2 * math.asin(math.sqrt(p_b)) - 2 * math.asin(math.sqrt(p_a)))
    if h == 0:
        raise ValueError("p_a and p_b are equal: no sample size detects a zero difference")
    n = NormalIndPower().solve_power(effect_size=h, nobs1=None, alpha=alpha, power=power, ratio=1.0,
                                     alternative="two-sided")
    return int(math.ceil(n))


# --- several training seeds ---------------------------------------------------------------------


def _rng(seed: int, key: str) -> np.random.Generator:
    """A generator fixed by (seed, key): a group's bootstrap does not change when other groups come and go."""
    return np.random.default_rng([seed, int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")])


def seed_replicates(k: Sequence[int], n: Sequence[int], reps: int, seed: int, key: str) -> np.ndarray:
    """Bootstrap replicates of the mean over seeds of the per-seed rate, clustered by seed.

    Each replicate draws seeds with replacement, then samples with replacement within each drawn
    seed (a Binomial(n_s, k_s / n_s) draw, which is exactly that), and averages the per-seed rates.
    """
    k_arr, n_arr = np.asarray(k, dtype=np.int64), np.asarray(n, dtype=np.int64)
    if len(k_arr) == 0 or (n_arr <= 0).any():
        raise ValueError("every seed needs at least one sample")
    rng = _rng(seed, key)
    pick = rng.integers(0, len(k_arr), size=(reps, len(k_arr)))
    draws = rng.binomial(n_arr[pick], k_arr[pick] / n_arr[pick])
    return (draws / n_arr[pick]).mean(axis=1)


def percentile_interval(replicates: np.ndarray, alpha: float = ALPHA) -> tuple[float, float]:
    lo, hi = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def seed_mean(k: Sequence[int], n: Sequence[int]) -> float:
    """The unweighted mean of per-seed rates (how the paper averages over training seeds)."""
    return float(np.mean(np.asarray(k) / np.asarray(n)))

