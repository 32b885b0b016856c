"""Counts of unpaired rates -> records: a `rate` per (metric, split, variant) and a `contrast` per pair.

Metrics are the unpaired rate scores the inputs declare; a split is one combination of the `--by` values.
Contrasts are taken within a split (every pair in order of first appearance, or each variant against
`--baseline`), and Holm's correction runs over all contrasts of one metric: one family per metric.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .. import stats
from ..errors import MsmError
from ..ids import stable_id
from .scan import CLUSTER, SELF, VARIANT, Counts, Source, metric_cols

# keys of the output records; a --by field may not reuse them
RESERVED = {
    "kind", "id", "metric", "variant", "baseline", "n", "k", "n_null", "rate", "lo", "hi", "interval",
    "confidence", "training_seeds", "n_seeds", "seed_mean", "seed_lo", "seed_hi", "bootstrap", "bootstrap_seed",
    "inputs", "label", "scores", "scorers", "_seed", "n_baseline", "k_baseline", "rate_baseline", "n_variant",
    "k_variant", "rate_variant", "diff", "p", "test", "p_holm", "mdd_down", "mdd_up", "power", "alpha",
    "n_seeds_baseline", "n_seeds_variant", "seed_diff", "rate_nulls_false", "rate_nulls_true", "self_judged",
    "null_baseline", "null_variant", "diff_nulls_low", "diff_nulls_high", "null_sensitive", "splits", "mean",
    "n_paired", "paired_diff", "discordant_variant", "discordant_baseline", "excludes_zero",
}


@dataclass(frozen=True)
class Options:
    """How to compute: the interval for single rates, the contrasts' baseline, the bootstrap, alpha and power."""

    interval: str = "wilson"
    baseline: str | None = None
    bootstrap: int = 2000
    bootstrap_seed: int = 0
    alpha: float = stats.ALPHA
    power: float = stats.POWER


@dataclass
class Cell:
    """One metric for one variant in one split: counts per training seed (k, n, nulls)."""

    seeds: list[tuple[int | None, int, int, int]]
    boot: Any = None  # (mean over seeds, bootstrap replicates), computed once by _seed_boot
    self_graded: int = 0  # records graded by the evaluated model itself

    @property
    def k(self) -> int:
        return sum(s[1] for s in self.seeds)

    @property
    def n(self) -> int:
        return sum(s[2] for s in self.seeds)

    @property
    def nulls(self) -> int:
        return sum(s[3] for s in self.seeds)

    @property
    def clusters(self) -> list[tuple[int | None, int, int, int]]:
        """Seeds with at least one decided record: the bootstrap's clusters."""
        return [s for s in self.seeds if s[2] > 0]


@dataclass
class Result:
    """The records (rates, contrasts, means, mean contrasts) and what render and plot need to lay them out.

    Every record names its `metric` (a score) and its `splits` (the fields its rows are split by)."""

    rates: list[dict[str, Any]]
    contrasts: list[dict[str, Any]]
    by: list[str]
    metrics: list[str]
    variants: list[str]
    options: Options
    has_seeds: bool
    sources: list[Source]
    duplicates_dropped: int = 0
    means: list[dict[str, Any]] = field(default_factory=list)
    mean_contrasts: list[dict[str, Any]] = field(default_factory=list)
    scorers: dict[str, Any] = field(default_factory=dict)  # name -> msmtools.scores.Scorer
    interactions: list[dict[str, Any]] = field(default_factory=list)  # contrasts compared across a factor

    def records(self) -> list[dict[str, Any]]:
        return [*self.rates, *self.contrasts, *self.means, *self.mean_contrasts, *self.interactions]


def _natural(value: Any) -> tuple:
    """Sort key: None last, numbers inside strings compared as numbers (cond2 before cond10)."""
    if value is None:
        return (1, ())
    return (0, tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(value))))


def check_by(by: list[str]) -> None:
    bad = [b for b in by if b in RESERVED]
    if bad:
        raise MsmError(f"--by {bad[0]}: not a field to split by (it names an output column or a metric)")
    if len(set(by)) != len(by):
        raise MsmError("--by: a field is given twice")


def _cells(counts: Counts) -> tuple[dict[tuple, dict[str, dict[str, Cell]]], list[str]]:
    """{split: {variant: {metric: Cell}}} and the variants in order of first appearance."""
    if counts.frame is None:
        return {}, []
    frame = counts.frame.sort("_order")
    variants = list(dict.fromkeys(frame[VARIANT].to_list()))
    cells: dict[tuple, dict[str, dict[str, Cell]]] = {}
    for row in frame.iter_rows(named=True):
        split = tuple(row[b] for b in counts.by)
        by_metric = cells.setdefault(split, {}).setdefault(row[VARIANT], {})
        for m in counts.metrics:
            kcol, ncol = metric_cols(m)
            nulls = row[ncol]
            cell = by_metric.setdefault(m, Cell([]))
            cell.seeds.append((row[CLUSTER], row[kcol], row["rows"] - nulls, nulls))
            cell.self_graded += row.get(SELF) or 0
    for split in cells:
        for variant in cells[split]:
            for cell in cells[split][variant].values():
                cell.seeds.sort(key=lambda s: _natural(s[0]))
    return dict(sorted(cells.items(), key=lambda kv: tuple(_natural(v) for v in kv[0]))), variants


def _pairs(present: list[str], baseline: str | None) -> list[tuple[str, str]]:
    if baseline is not None:
        return [(baseline, v) for v in present if v != baseline] if baseline in present else []
    return [(a, b) for i, a in enumerate(present) for b in present[i + 1:]]


def analyze(counts: Counts, opts: Options) -> Result:
    """Every rate and contrast, with intervals, tests, power and (with several seeds) the seed bootstrap."""
    cells, variants = _cells(counts)
    extra = {"bootstrap": opts.bootstrap, "bootstrap_seed": opts.bootstrap_seed,
             "inputs": [s.name for s in counts.sources]}
    has_seeds = any(len(c.clusters) > 1 for v in cells.values() for ms in v.values() for c in ms.values())
    rates: list[dict[str, Any]] = []
    contrasts: list[dict[str, Any]] = []
    for metric in counts.metrics:
        groups, pairs = [], []
        for split, per_variant in cells.items():
            where = dict(zip(counts.by, split))
            present = [v for v in variants if v in per_variant]
            groups += [(v, where, per_variant[v][metric]) for v in present]
            pairs += [(a, b, where, per_variant[a][metric], per_variant[b][metric])
                      for a, b in _pairs(present, opts.baseline)]
        rates += _rates(metric, groups, opts, extra)
        contrasts += _contrasts(metric, pairs, opts, extra)  # one Holm family per metric
    return Result(rates, contrasts, counts.by, counts.metrics, variants, opts, has_seeds, counts.sources,
                  counts.duplicates_dropped)


def _seed_boot(metric: str, variant: str, where: dict, cell: Cell, opts: Options):
    """(mean over seeds, bootstrap replicates) when the cell has several seeds, else None.

    The generator is keyed by the group, so a rate's interval and the contrasts built on it share draws.
    """
    cl = cell.clusters
    if len(cl) < 2:
        return None
    if cell.boot is None:
        k, n = [s[1] for s in cl], [s[2] for s in cl]
        key = stable_id("rate", metric, variant, where)
        cell.boot = stats.seed_mean(k, n), stats.seed_replicates(k, n, opts.bootstrap, opts.bootstrap_seed, key)
    return cell.boot


def _rates(metric: str, groups: list[tuple[str, dict, Cell]], opts: Options, extra: dict) -> list[dict[str, Any]]:
    intervals = stats.rate_intervals([c.k for _, _, c in groups], [c.n for _, _, c in groups], opts.interval, opts.alpha)
    out = []
    for (variant, where, cell), (lo, hi) in zip(groups, intervals):
        sb = _seed_boot(metric, variant, where, cell, opts)
        seed_lo, seed_hi = stats.percentile_interval(sb[1], opts.alpha) if sb else (None, None)
        out.append({
            "kind": "rate", "id": stable_id("rate", metric, variant, where), "metric": metric, "variant": variant,
            **where, "splits": list(where), "n": cell.n, "k": cell.k, "n_null": cell.nulls,
            "rate": cell.k / cell.n if cell.n else None, **_null_bounds(cell), "self_judged": cell.self_graded,
            "lo": lo, "hi": hi, "interval": opts.interval, "confidence": 1 - opts.alpha,
            "training_seeds": [s[0] for s in cell.clusters], "n_seeds": len(cell.clusters),
            "seed_mean": sb[0] if sb else None, "seed_lo": seed_lo, "seed_hi": seed_hi, **extra,
        })
    return out


def _contrasts(metric: str, pairs: list[tuple[str, str, dict, Cell, Cell]], opts: Options,
               extra: dict) -> list[dict[str, Any]]:
    intervals = stats.diff_intervals([cb.k for *_, cb in pairs], [cb.n for *_, cb in pairs],
                                     [ca.k for *_, ca, _ in pairs], [ca.n for *_, ca, _ in pairs], opts.alpha)
    ps = [stats.fisher_p(ca.k, ca.n, cb.k, cb.n) for *_, ca, cb in pairs]
    out = []
    for (a, b, where, ca, cb), (lo, hi), p, p_holm in zip(pairs, intervals, ps, stats.holm(ps)):
        pa = ca.k / ca.n if ca.n else None
        pb = cb.k / cb.n if cb.n else None
        down, up = stats.mdd(pa, ca.n, cb.n, opts.alpha, opts.power)
        seed_diff = seed_lo = seed_hi = None
        boot_a, boot_b = _seed_boot(metric, a, where, ca, opts), _seed_boot(metric, b, where, cb, opts)
        if boot_a and boot_b:
            seed_diff = boot_b[0] - boot_a[0]
            seed_lo, seed_hi = stats.percentile_interval(boot_b[1] - boot_a[1], opts.alpha)
        out.append({
            "kind": "contrast", "id": stable_id("contrast", metric, a, b, where), "metric": metric,
            "baseline": a, "variant": b, **where, "splits": list(where),
            "n_baseline": ca.n, "k_baseline": ca.k, "rate_baseline": pa,
            "n_variant": cb.n, "k_variant": cb.k, "rate_variant": pb,
            "diff": pb - pa if pa is not None and pb is not None else None, "lo": lo, "hi": hi,
            "interval": "newcombe", "confidence": 1 - opts.alpha, "p": p, "test": "fisher-exact", "p_holm": p_holm,
            "mdd_down": down, "mdd_up": up, "power": opts.power, "alpha": opts.alpha,
            "n_seeds_baseline": len(ca.clusters), "n_seeds_variant": len(cb.clusters),
            "seed_diff": seed_diff, "seed_lo": seed_lo, "seed_hi": seed_hi,
            "null_baseline": ca.nulls, "null_variant": cb.nulls, **_null_contrast(ca, cb, lo, hi, opts.alpha), **extra,
        })
    return out


def _null_bounds(cell: Cell) -> dict[str, float | None]:
    """The rate with every null counted as false, and as true: the range nulls leave open."""
    total = cell.n + cell.nulls
    if not total:
        return {"rate_nulls_false": None, "rate_nulls_true": None}
    return {"rate_nulls_false": cell.k / total, "rate_nulls_true": (cell.k + cell.nulls) / total}


def _conclusion(lo: float | None, hi: float | None) -> int | None:
    if lo is None or hi is None:
        return None
    return 1 if lo > 0 else -1 if hi < 0 else 0


def _null_contrast(ca: Cell, cb: Cell, lo: float | None, hi: float | None, alpha: float) -> dict[str, Any]:
    """The difference at the two extremes the nulls allow, and whether its conclusion changes within them.

    The conclusion is the sign of the Newcombe interval (up, down, or includes zero). The extremes:
    the variant's nulls all harmful and the baseline's all not (largest difference), and the reverse.
    """
    if not (ca.nulls or cb.nulls):
        return {"diff_nulls_low": None, "diff_nulls_high": None, "null_sensitive": False}
    na, nb = ca.n + ca.nulls, cb.n + cb.nulls
    if not (na and nb):
        return {"diff_nulls_low": None, "diff_nulls_high": None, "null_sensitive": None}
    extremes = [(cb.k, nb, ca.k + ca.nulls, na), (cb.k + cb.nulls, nb, ca.k, na)]  # low, high
    ivs = stats.diff_intervals([e[0] for e in extremes], [e[1] for e in extremes],
                               [e[2] for e in extremes], [e[3] for e in extremes], alpha)
    seen = {_conclusion(lo, hi), *(_conclusion(*iv) for iv in ivs)}
    return {"diff_nulls_low": extremes[0][0] / nb - extremes[0][2] / na,
            "diff_nulls_high": extremes[1][0] / nb - extremes[1][2] / na,
            "null_sensitive": len(seen - {None}) > 1}
