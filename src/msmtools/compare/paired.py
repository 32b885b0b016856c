"""Paired scores and means: records read one by one (value-eval's sizes), each declared score analysed.

- a paired rate (a `rate` score with `pair`, e.g. value-eval's choice): rates with Wilson or Clopper-Pearson
  intervals, and contrasts over the pairs both arms decided: Newcombe's paired interval and McNemar's
  exact test, Holm-adjusted per score;
- a mean (e.g. the spec-QA judge score): means with a bootstrap interval; contrasts paired (Wilcoxon's
  signed-rank test, paired bootstrap) when the score declares `pair`, else Welch's t-test with an
  independent bootstrap.

Rows split by the score's declared `split` fields and then `--by`; `overall` adds a row over all splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import jsonl, stats
from ..errors import MsmError, at
from ..ids import stable_id
from ..scores import Scorer
from .scan import SEED, SELF_FIELD, Source, _check

ALL = "ALL"


def handled(s: Scorer) -> bool:
    """The scores this module analyses (the unpaired rates are counted by scan)."""
    return s.pair is not None or s.aggregate == "mean"


@dataclass
class Rows:
    """Per score: one row per (record, variant), and the duplicates dropped."""

    rows: dict[str, list[dict[str, Any]]]
    scorers: dict[str, Scorer]
    dropped: int = 0


def splits(s: Scorer, by: list[str]) -> list[str]:
    return [*s.split, *(b for b in by if b not in s.split)]


def read(srcs: list[Source], by: list[str], only: list[str] | None = None) -> Rows:
    scorers: dict[str, Scorer] = {}
    for src in srcs:
        for name, s in src.scorers.items():
            if handled(s) and (only is None or name in only):
                if name in scorers and scorers[name] != s:
                    raise MsmError(f"score {name}: declared two ways in the inputs ({src.name})")
                scorers[name] = s
    out = Rows({m: [] for m in scorers}, scorers)
    seen: dict[tuple, Any] = {}
    for src in srcs:
        mine = [m for m in scorers if m in src.scorers]
        if not mine:
            continue
        for line, rec in jsonl.iter_lines(src.path):
            decl = rec.get("scorers")
            todo = [m for m in mine if isinstance(decl, dict) and m in decl]
            if not todo:
                continue
            where = (src.name, line)
            _check(rec, where, src)
            variant = src.label if src.label is not None else rec["label"]
            for m in todo:
                s = scorers[m]
                pair = None
                if s.pair is not None:
                    pair = rec.get(s.pair)
                    if pair is None or isinstance(pair, (dict, list)):
                        raise at(*where, s.pair, f"missing (score {m} pairs records by it)")
                value = rec["scores"][m]
                key = (m, rec.get("id"), variant)
                if rec.get("id") is not None and key in seen:
                    if seen[key] != value:
                        raise at(*where, "id", f"id {rec['id']} appears twice with different scores; give each "
                                 "record once")
                    out.dropped += 1
                    continue
                seen[key] = value
                out.rows[m].append({"_variant": variant, "_pair": pair, "_x": value, "_seed": rec.get(SEED),
                                    "_self": rec.get(SELF_FIELD) is True,
                                    **{f: (None if rec.get(f) is None else str(rec.get(f))) for f in splits(s, by)}})
    return out


def _groups(rows: list[dict[str, Any]], keys: list[str], overall: bool
            ) -> tuple[dict[tuple, dict[str, list[dict[str, Any]]]], list[str]]:
    out: dict[tuple, dict[str, list[dict[str, Any]]]] = {}
    variants: list[str] = []
    for r in rows:
        out.setdefault(tuple(r.get(k) for k in keys), {}).setdefault(r["_variant"], []).append(r)
        if r["_variant"] not in variants:
            variants.append(r["_variant"])
    out = dict(sorted(out.items(), key=lambda kv: tuple("" if v is None else str(v) for v in kv[0])))
    if overall and keys:
        out[tuple([ALL] * len(keys))] = {v: [r for r in rows if r["_variant"] == v] for v in variants}
    return out, variants


def _pairs(present: list[str], baseline: str | None) -> list[tuple[str, str]]:
    if baseline is not None:
        return [(baseline, v) for v in present if v != baseline] if baseline in present else []
    return [(a, b) for i, a in enumerate(present) for b in present[i + 1:]]


def _by_pair(metric: str, variant: str, rs: list[dict[str, Any]]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for r in rs:
        if r["_pair"] in out:
            seeds = sorted({str(x["_seed"]) for x in rs if x["_pair"] == r["_pair"]})
            raise MsmError(f"{metric}: variant {variant} has several records for {r['_pair']!r} (training seeds "
                           f"{', '.join(seeds)}?): pairs must be one to one; split them with --by training_seed "
                           "or give each seed its own label")
        out[r["_pair"]] = r["_x"]
    return out


def analyze(data: Rows, by: list[str], *, baseline: str | None, alpha: float, interval: str, bootstrap: int,
            bootstrap_seed: int) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    """(rates, contrasts, means, mean contrasts) of every score read."""
    rates, contrasts, means, mcontrasts = [], [], [], []
    for m, s in data.scorers.items():
        rows = data.rows[m]
        if not rows:
            continue
        keys = splits(s, by)
        groups, variants = _groups(rows, keys, s.overall)
        if s.aggregate == "rate":
            r, c = _rates(m, groups, keys, variants, baseline, alpha, interval)
            rates += r
            contrasts += c
        else:
            r, c = _means(m, s, groups, keys, variants, baseline, alpha, bootstrap, bootstrap_seed)
            means += r
            mcontrasts += c
    return rates, contrasts, means, mcontrasts


def _rates(m, groups, keys, variants, baseline, alpha, interval):
    from statsmodels.stats.contingency_tables import mcnemar

    cells = []
    for split, per in groups.items():
        where = dict(zip(keys, split))
        for v in variants:
            if v in per:
                rs = per[v]
                k = sum(r["_x"] is True for r in rs)
                n = sum(r["_x"] is not None for r in rs)
                cells.append((v, where, k, n, len(rs) - n, sum(r["_self"] for r in rs),
                              sorted({r["_seed"] for r in rs if r["_seed"] is not None})))
    rates = []
    for (v, where, k, n, nulls, selfj, seeds), (lo, hi) in zip(
            cells, stats.rate_intervals([c[2] for c in cells], [c[3] for c in cells], interval, alpha)):
        total = n + nulls
        rates.append({"kind": "rate", "id": stable_id("rate", m, v, where), "metric": m, "variant": v, **where,
                      "splits": list(keys), "n": n, "k": k, "n_null": nulls, "rate": k / n if n else None,
                      "rate_nulls_false": k / total if total else None,
                      "rate_nulls_true": (k + nulls) / total if total else None, "self_judged": selfj,
                      "lo": lo, "hi": hi, "interval": interval, "confidence": 1 - alpha, "paired": True,
                      "training_seeds": seeds, "n_seeds": len(seeds), "seed_mean": None, "seed_lo": None,
                      "seed_hi": None})
    pend = []
    for split, per in groups.items():
        where = dict(zip(keys, split))
        for a, b in _pairs([v for v in variants if v in per], baseline):
            ra, rb = _by_pair(m, a, per[a]), _by_pair(m, b, per[b])
            ka, na = sum(x is True for x in ra.values()), sum(x is not None for x in ra.values())
            kb, nb = sum(x is True for x in rb.values()), sum(x is not None for x in rb.values())
            both = [i for i in ra if i in rb and ra[i] is not None and rb[i] is not None]
            b01 = sum(ra[i] is False and rb[i] is True for i in both)  # b true where a was not
            b10 = sum(ra[i] is True and rb[i] is False for i in both)
            b11 = sum(ra[i] is True and rb[i] is True for i in both)
            p = float(mcnemar([[0, b10], [b01, 0]], exact=True).pvalue) if b01 + b10 else 1.0
            pend.append((a, b, where, ka, na, kb, nb, len(both), b01, b10, p,
                         (b11, b01, b10, len(both) - b11 - b01 - b10)))
    # the interval, like the test, is paired: over the pairs both arms decided
    ivs = stats.paired_diff_intervals([x[11] for x in pend], alpha)
    out = []
    for (a, b, where, ka, na, kb, nb, n2, b01, b10, p, _), (lo, hi), ph in zip(pend, ivs, stats.holm([x[10] for x in pend])):
        out.append({"kind": "contrast", "id": stable_id("contrast", m, a, b, where), "metric": m, "baseline": a,
                    "variant": b, **where, "splits": list(keys), "n_baseline": na, "k_baseline": ka,
                    "rate_baseline": ka / na if na else None, "n_variant": nb, "k_variant": kb,
                    "rate_variant": kb / nb if nb else None, "diff": (b01 - b10) / n2 if n2 else None,
                    "lo": lo, "hi": hi, "interval": "newcombe-paired", "confidence": 1 - alpha, "paired": True,
                    "n_paired": n2, "discordant_variant": b01, "discordant_baseline": b10, "p": p,
                    "test": "mcnemar-exact", "p_holm": ph, "excludes_zero": lo is not None and (lo > 0 or hi < 0)})
    return rates, out


def _boot(x: np.ndarray, reps: int, seed: int, key: str, alpha: float) -> tuple[float, float]:
    rng = np.random.default_rng([seed, int(stable_id(key, length=8), 16)])
    means = x[rng.integers(0, len(x), size=(reps, len(x)))].mean(axis=1)
    return float(np.quantile(means, alpha / 2)), float(np.quantile(means, 1 - alpha / 2))


def _boot_diff(xa: np.ndarray, xb: np.ndarray, reps: int, seed: int, key: str, alpha: float) -> tuple[float, float]:
    rng = np.random.default_rng([seed, int(stable_id(key, length=8), 16)])
    ma = xa[rng.integers(0, len(xa), size=(reps, len(xa)))].mean(axis=1)
    mb = xb[rng.integers(0, len(xb), size=(reps, len(xb)))].mean(axis=1)
    d = mb - ma
    return float(np.quantile(d, alpha / 2)), float(np.quantile(d, 1 - alpha / 2))


def _means(m, s: Scorer, groups, keys, variants, baseline, alpha, reps, seed):
    from scipy.stats import ttest_ind, wilcoxon

    means, contrasts = [], []
    for split, per in groups.items():
        where = dict(zip(keys, split))
        for v in variants:
            if v not in per:
                continue
            x = np.array([r["_x"] for r in per[v] if r["_x"] is not None], dtype=float)
            lo, hi = _boot(x, reps, seed, f"mean|{m}|{v}|{where}", alpha) if len(x) else (None, None)
            means.append({"kind": "mean", "id": stable_id("mean", m, v, where), "metric": m, "variant": v, **where,
                          "splits": list(keys), "n": len(x), "n_null": sum(r["_x"] is None for r in per[v]),
                          "mean": float(x.mean()) if len(x) else None, "lo": lo, "hi": hi, "interval": "bootstrap",
                          "confidence": 1 - alpha, "bootstrap": reps, "bootstrap_seed": seed,
                          "self_judged": sum(r["_self"] for r in per[v])})
        for a, b in _pairs([v for v in variants if v in per], baseline):
            if s.pair is not None:
                sa = {k: x for k, x in _by_pair(m, a, per[a]).items() if x is not None}
                sb = {k: x for k, x in _by_pair(m, b, per[b]).items() if x is not None}
                both = sorted(set(sa) & set(sb), key=str)
                d = np.array([sb[i] - sa[i] for i in both], dtype=float)
                lo, hi = _boot(d, reps, seed, f"meandiff|{m}|{a}|{b}|{where}", alpha) if len(d) else (None, None)
                p = float(wilcoxon(d).pvalue) if len(d) and np.any(d != 0) else None
                rec = {"n_paired": len(both), "diff": float(d.mean()) if len(d) else None, "lo": lo, "hi": hi,
                       "interval": "paired bootstrap", "p": p, "test": "wilcoxon", "paired": True}
            else:
                xa = np.array([r["_x"] for r in per[a] if r["_x"] is not None], dtype=float)
                xb = np.array([r["_x"] for r in per[b] if r["_x"] is not None], dtype=float)
                ok = len(xa) > 1 and len(xb) > 1
                lo, hi = _boot_diff(xa, xb, reps, seed, f"meandiff|{m}|{a}|{b}|{where}", alpha) if ok else (None, None)
                p = float(ttest_ind(xb, xa, equal_var=False).pvalue) if ok else None
                rec = {"n_baseline": len(xa), "n_variant": len(xb),
                       "diff": float(xb.mean() - xa.mean()) if len(xa) and len(xb) else None, "lo": lo, "hi": hi,
                       "interval": "bootstrap", "p": None if p is None or np.isnan(p) else p, "test": "welch-t",
                       "paired": False}
            contrasts.append({"kind": "mean_contrast", "id": stable_id("mean_contrast", m, a, b, where), "metric": m,
                              "baseline": a, "variant": b, **where, "splits": list(keys), **rec,
                              "confidence": 1 - alpha})
    holm = stats.holm([c["p"] if c["p"] is not None else 1.0 for c in contrasts])
    for c, ph in zip(contrasts, holm):
        c["p_holm"] = ph if c["p"] is not None else None
    return means, contrasts
