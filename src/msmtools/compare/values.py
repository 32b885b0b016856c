"""value-eval records -> choice rates of the value-aligned option per arm, paired contrasts, QA scores.

Arms answer the same items, so a contrast is paired, over the items both arms decided: the difference
in aligned-choice rate with Newcombe's interval for paired proportions (which agrees with the test; the
unpaired interval, as for AM, would be too wide and could include zero beside a significant test) and
McNemar's exact test on the discordant pairs (statsmodels), Holm-adjusted over the contrasts of one table. QA scores (1-10) get a
mean per arm with a seeded bootstrap interval over items, and contrasts get the paired mean difference
with a paired bootstrap interval and Wilcoxon's signed-rank test (scipy). A null choice or score is
counted apart, with the bounds it leaves open, never as aligned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import jsonl, stats
from ..errors import MsmError, at
from ..ids import stable_id


@dataclass
class ValueResult:
    rates: list[dict[str, Any]]
    contrasts: list[dict[str, Any]]
    scores: list[dict[str, Any]]
    score_contrasts: list[dict[str, Any]]
    by: list[str]
    dropped: int = 0


def read(paths: list[tuple[str, str, str | None]], by: list[str]) -> tuple[list[dict[str, Any]], int]:
    """(rows, duplicates dropped): one row per value record; (name, path, label override) per input."""
    rows, seen, dropped = [], {}, 0
    for name, path, label in paths:
        for line, rec in jsonl.iter_lines(path):
            where = (name, line)
            if rec.get("kind") != "value":
                raise at(*where, "kind", f"expected value records (msm value-eval), got {rec.get('kind')!r}")
            rid = jsonl.field(rec, "id", str, where)
            variant = label if label is not None else jsonl.field(rec, "label", str, where)
            item = jsonl.field(rec, "item_id", str, where)
            choice = rec.get("choice_aligned")
            if choice is not None and not isinstance(choice, bool):
                raise at(*where, "choice_aligned", "expected true, false or null")
            score = rec.get("score")
            if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
                raise at(*where, "score", "expected a number or null")
            key = (rid, variant)
            if key in seen:
                if seen[key] != (choice, score):
                    raise at(*where, "id", f"id {rid} appears twice with different results; give each record once")
                dropped += 1
                continue
            seen[key] = (choice, score)
            rows.append({"variant": variant, "item": item, "mode": rec.get("mode"), "value": rec.get("value"),
                         "category": rec.get("category"), "choice": choice, "score": score,
                         **{b: (None if rec.get(b) is None else str(rec.get(b))) for b in by}})
    if not rows:
        raise MsmError("no value records in the inputs")
    return rows, dropped


def _split_keys(rows: list[dict[str, Any]], by: list[str], qa: bool) -> list[str]:
    base = ["category"] if qa else ["value"]
    return [*base, *[b for b in by if b not in base]]


def _groups(rows, keys):
    out: dict[tuple, dict[str, list[dict[str, Any]]]] = {}
    variants: list[str] = []
    for r in rows:
        split = tuple(r.get(k) for k in keys)
        out.setdefault(split, {}).setdefault(r["variant"], []).append(r)
        if r["variant"] not in variants:
            variants.append(r["variant"])
    return dict(sorted(out.items(), key=lambda kv: tuple("" if v is None else str(v) for v in kv[0]))), variants


def _pairs(present: list[str], baseline: str | None) -> list[tuple[str, str]]:
    if baseline is not None:
        return [(baseline, v) for v in present if v != baseline] if baseline in present else []
    return [(a, b) for i, a in enumerate(present) for b in present[i + 1:]]


def analyze(rows: list[dict[str, Any]], by: list[str], *, baseline: str | None = None, alpha: float = stats.ALPHA,
            interval: str = "wilson", bootstrap: int = 2000, bootstrap_seed: int = 0, dropped: int = 0) -> ValueResult:
    from statsmodels.stats.contingency_tables import mcnemar

    choice_rows = [r for r in rows if r["mode"] != "judge"]
    qa_rows = [r for r in rows if r["mode"] == "judge"]
    rates, contrasts = [], []
    if choice_rows:
        keys = _split_keys(choice_rows, by, False)
        groups, variants = _groups(choice_rows, keys)
        if baseline is not None and baseline not in variants:
            raise MsmError(f"--baseline {baseline}: no such variant (known: {', '.join(variants)})")
        cells = []
        for split, per in groups.items():
            where = dict(zip(keys, split))
            for v in variants:
                if v in per:
                    rs = per[v]
                    k = sum(r["choice"] is True for r in rs)
                    n = sum(r["choice"] is not None for r in rs)
                    cells.append((v, where, k, n, len(rs) - n))
        ivs = stats.rate_intervals([c[2] for c in cells], [c[3] for c in cells], interval, alpha)
        for (v, where, k, n, nulls), (lo, hi) in zip(cells, ivs):
            total = n + nulls
            rates.append({"kind": "value_rate", "id": stable_id("value_rate", v, where), "metric": "choice_aligned",
                          "variant": v, **where, "n": n, "k": k, "n_null": nulls, "rate": k / n if n else None,
                          "lo": lo, "hi": hi, "interval": interval, "confidence": 1 - alpha,
                          "rate_nulls_aligned": k / total if total else None,
                          "rate_nulls_other": (k + nulls) / total if total else None})
        pend = []
        for split, per in groups.items():
            where = dict(zip(keys, split))
            present = [v for v in variants if v in per]
            for a, b in _pairs(present, baseline):
                ra = {r["item"]: r["choice"] for r in per[a]}
                rb = {r["item"]: r["choice"] for r in per[b]}
                ka, na = sum(x is True for x in ra.values()), sum(x is not None for x in ra.values())
                kb, nb = sum(x is True for x in rb.values()), sum(x is not None for x in rb.values())
                both = [i for i in ra if i in rb and ra[i] is not None and rb[i] is not None]
                b01 = sum(ra[i] is False and rb[i] is True for i in both)  # b aligned where a was not
                b10 = sum(ra[i] is True and rb[i] is False for i in both)
                b11 = sum(ra[i] is True and rb[i] is True for i in both)
                p = float(mcnemar([[0, b10], [b01, 0]], exact=True).pvalue) if b01 + b10 else 1.0
                pend.append((a, b, where, ka, na, kb, nb, len(both), b01, b10, p, (b11, b01, b10, len(both) - b11 - b01 - b10)))
        # the interval, like the test, is paired: over the items both arms decided
        ivs = stats.paired_diff_intervals([x[11] for x in pend], alpha)
        holm = stats.holm([x[10] for x in pend])
        for (a, b, where, ka, na, kb, nb, m, b01, b10, p, _), (lo, hi), ph in zip(pend, ivs, holm):
            pa, pb = (ka / na if na else None), (kb / nb if nb else None)
            contrasts.append({"kind": "value_contrast", "id": stable_id("value_contrast", a, b, where),
                              "metric": "choice_aligned", "baseline": a, "variant": b, **where,
                              "n_baseline": na, "k_baseline": ka, "rate_baseline": pa, "n_variant": nb,
                              "k_variant": kb, "rate_variant": pb,
                              "diff": (b01 - b10) / m if m else None, "lo": lo, "hi": hi,
                              "interval": "newcombe-paired", "confidence": 1 - alpha, "n_paired": m,
                              "paired_diff": (b01 - b10) / m if m else None, "discordant_variant": b01,
                              "discordant_baseline": b10, "p": p, "test": "mcnemar-exact", "p_holm": ph,
                              "excludes_zero": lo is not None and (lo > 0 or hi < 0)})
    scores, score_contrasts = _qa(qa_rows, by, baseline, alpha, bootstrap, bootstrap_seed) if qa_rows else ([], [])
    return ValueResult(rates, contrasts, scores, score_contrasts, by, dropped)


def _boot_mean(x: np.ndarray, reps: int, seed: int, key: str, alpha: float) -> tuple[float, float]:
    rng = np.random.default_rng([seed, int(stable_id(key, length=8), 16)])
    means = x[rng.integers(0, len(x), size=(reps, len(x)))].mean(axis=1)
    return float(np.quantile(means, alpha / 2)), float(np.quantile(means, 1 - alpha / 2))


def _qa(rows, by, baseline, alpha, reps, seed):
    from scipy.stats import wilcoxon

    keys = _split_keys(rows, by, True)
    groups, variants = _groups(rows, keys)
    allkeys = [tuple([None] * len(keys))]  # plus the whole set, across categories
    groups[allkeys[0]] = {v: [r for r in rows if r["variant"] == v] for v in variants}
    scores, contrasts = [], []
    for split, per in groups.items():
        where = {k: (v if v is not None else "ALL") for k, v in zip(keys, split)} if split == allkeys[0] else dict(zip(keys, split))
        for v in variants:
            if v not in per:
                continue
            x = np.array([r["score"] for r in per[v] if r["score"] is not None], dtype=float)
            nulls = sum(r["score"] is None for r in per[v])
            lo, hi = _boot_mean(x, reps, seed, f"score|{v}|{where}", alpha) if len(x) else (None, None)
            scores.append({"kind": "score_mean", "id": stable_id("score_mean", v, where), "variant": v, **where,
                           "n": len(x), "n_null": nulls, "mean": float(x.mean()) if len(x) else None, "lo": lo,
                           "hi": hi, "interval": "bootstrap", "confidence": 1 - alpha, "bootstrap": reps})
        for a, b in _pairs([v for v in variants if v in per], baseline):
            sa = {r["item"]: r["score"] for r in per[a] if r["score"] is not None}
            sb = {r["item"]: r["score"] for r in per[b] if r["score"] is not None}
            both = sorted(set(sa) & set(sb))
            d = np.array([sb[i] - sa[i] for i in both], dtype=float)
            lo, hi = _boot_mean(d, reps, seed, f"scorediff|{a}|{b}|{where}", alpha) if len(d) else (None, None)
            p = float(wilcoxon(d).pvalue) if len(d) and np.any(d != 0) else None
            contrasts.append({"kind": "score_contrast", "id": stable_id("score_contrast", a, b, where), "baseline": a,
                              "variant": b, **where, "n_paired": len(both),
                              "diff": float(d.mean()) if len(d) else None, "lo": lo, "hi": hi,
                              "interval": "paired bootstrap", "p": p, "test": "wilcoxon"})
    return scores, contrasts


def records(res: ValueResult) -> list[dict[str, Any]]:
    return [*res.rates, *res.contrasts, *res.scores, *res.score_contrasts]


def sections(res: ValueResult, alpha: float) -> list[tuple[str, list[str], list[list[Any]]]]:
    from .render import ci, pct, pp, pval

    conf = f"{round(100 * (1 - alpha))}%"
    out = []
    if res.rates:
        keys = [k for k in res.rates[0] if k in ("value", *res.by)]
        head = ["variant", *keys, "n", "aligned", "rate", f"{conf} CI", "null"]
        rows = [[r["variant"], *[r[k] for k in keys], r["n"], r["k"], pct(r["rate"]), ci(r["lo"], r["hi"]), r["n_null"]]
                for r in res.rates]
        out.append((f"value-eval: share of items where the model chose the value-aligned option; {conf} Wilson "
                    "intervals; nulls (undecided) excluded from n and counted apart", head, rows))
    if res.contrasts:
        keys = [k for k in res.contrasts[0] if k in ("value", *res.by)]
        head = [*keys, "contrast", "diff (pp)", f"{conf} CI", "paired n", "discordant +/-", "McNemar p", "p Holm"]
        rows = [[*[c[k] for k in keys], f"{c['variant']} - {c['baseline']}", pp(c["diff"]), ci(c["lo"], c["hi"], signed=True),
                 c["n_paired"], f"{c['discordant_variant']}/{c['discordant_baseline']}", pval(c["p"]), pval(c["p_holm"])]
                for c in res.contrasts]
        out.append((f"value-eval contrasts, paired over the items both arms decided: difference in aligned-choice rate "
                    f"with Newcombe's paired {conf} interval; McNemar's exact test (discordant: variant aligned and "
                    "baseline not / the reverse), Holm-adjusted over these rows", head, rows))
    if res.scores:
        head = ["variant", "category", "n", "mean score", f"{conf} CI", "null"]
        rows = [[s["variant"], s.get("category"), s["n"], "-" if s["mean"] is None else f"{s['mean']:.2f}",
                 "-" if s["lo"] is None else f"[{s['lo']:.2f}, {s['hi']:.2f}]", s["n_null"]] for s in res.scores]
        out.append((f"spec QA: mean judge score (1-10) with {conf} bootstrap interval over items", head, rows))
    if res.score_contrasts:
        head = ["category", "contrast", "paired n", "mean diff", f"{conf} CI", "Wilcoxon p"]
        rows = [[c.get("category"), f"{c['variant']} - {c['baseline']}", c["n_paired"],
                 "-" if c["diff"] is None else f"{c['diff']:+.2f}",
                 "-" if c["lo"] is None else f"[{c['lo']:+.2f}, {c['hi']:+.2f}]", pval(c["p"])]
                for c in res.score_contrasts]
        out.append(("spec QA contrasts: paired mean score difference, paired bootstrap interval, Wilcoxon signed-rank test",
                    head, rows))
    return out


def as_result(res: ValueResult, options: Any) -> Any:
    """The value rates in the shape the AM plot draws (one metric, split by value and --by)."""
    from .analyze import Result

    keys = [k for k in ("value", *res.by) if res.rates and k in res.rates[0]]
    rates = [r | {"n_seeds": 1, "seed_mean": None, "seed_lo": None, "seed_hi": None} for r in res.rates]
    variants = list(dict.fromkeys(r["variant"] for r in rates))
    return Result(rates, [], keys, ["choice_aligned"], variants, options, False, [])
