"""How many items the section-3 positive control needs, from the effect a run actually gave.

    .venv/bin/python benchmarks/value_power.py out/demo/cheese/values.jsonl \
        --match america=america --match affordability=affordability [--seconds-per-item S]

Reads `msm value-eval` records of two arms answering the same items. For each value set, the
"matching" arm is the one midtrained on that value's spec (`--match VALUE=ARM`); the other arm is its
control. It prints, per value:
- the observed paired effect: aligned-choice rates of both arms and the McNemar discordant counts,
  and the mean paired difference of the text-form margin (aligned minus other, nats/token);
- the items needed for 80% power at alpha 0.05 (two-sided): for the choice, by simulating McNemar's
  exact test (statsmodels) at the observed discordant rates; for the margin, statsmodels' paired
  t-test power (effect size d_z = mean / sd of the paired differences);
- with --seconds-per-item (value-eval's wall time per item and arm on this machine), the CPU time
  those items take for both arms.
The effect sizes come from the run as it is: nothing here is tuned; an effect that is zero or the
wrong way round is reported as such, with no item count.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict

import numpy as np
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.power import TTestPower


def load(path: str) -> dict[tuple[str, str], dict[str, dict]]:
    """(value, item_id) -> {arm label: record}."""
    out: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if r.get("kind") == "value" and r.get("value"):
                out[(r["value"], r["item_id"])][r["label"]] = r
    return out


def mcnemar_n(p10: float, p01: float, power: float = 0.8, alpha: float = 0.05, sims: int = 2000,
              seed: int = 0, cap: int = 200_000) -> int | None:
    """Smallest n (by doubling, then bisection) at which the exact McNemar test reaches `power`."""
    if p10 <= p01:
        return None
    rng = np.random.default_rng(seed)

    def reach(n: int) -> bool:
        draws = rng.multinomial(n, [p10, p01, 1 - p10 - p01], size=sims)
        hits = 0
        for b, c, _ in draws:
            if b + c and mcnemar([[0, b], [c, 0]], exact=True).pvalue < alpha and b > c:
                hits += 1
        return hits / sims >= power

    lo, hi = 1, 8
    while not reach(hi):
        lo, hi = hi, hi * 2
        if hi > cap:
            return None
    while hi - lo > max(1, lo // 50):
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if reach(mid) else (mid, hi)
    return hi


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("records", help="value-eval records of both arms (JSONL)")
    ap.add_argument("--match", action="append", required=True, metavar="VALUE=ARM",
                    help="the arm midtrained on VALUE's spec (give one per value set)")
    ap.add_argument("--seconds-per-item", type=float, help="value-eval wall time per item and arm")
    args = ap.parse_args()
    match = dict(m.split("=", 1) for m in args.match)
    data = load(args.records)
    arms = sorted({a for recs in data.values() for a in recs})
    if len(arms) != 2:
        sys.exit(f"value_power: expected two arms, found {arms}")
    for value, arm in match.items():
        other = next(a for a in arms if a != arm)
        pairs = [(r[arm], r[other]) for (v, _), r in data.items() if v == value and arm in r and other in r]
        both = [(a["choice_aligned"], b["choice_aligned"]) for a, b in pairs
                if a["choice_aligned"] is not None and b["choice_aligned"] is not None]
        n = len(both)
        b10 = sum(x and not y for x, y in both)
        b01 = sum(y and not x for x, y in both)
        rate_m = sum(x for x, _ in both) / n if n else float("nan")
        rate_o = sum(y for _, y in both) / n if n else float("nan")
        diffs = np.array([a["margin"] - b["margin"] for a, b in pairs
                          if a.get("margin") is not None and b.get("margin") is not None])
        row = {"value": value, "matching_arm": arm, "other_arm": other, "items_paired": len(pairs),
               "items_both_decided": n, "rate_matching": round(rate_m, 4), "rate_other": round(rate_o, 4),
               "diff": round(rate_m - rate_o, 4), "discordant_matching_only": b10, "discordant_other_only": b01}
        if n:
            row["mcnemar_p"] = float(mcnemar([[0, b10], [b01, 0]], exact=True).pvalue) if b10 + b01 else 1.0
            row["items_for_80pct_power_choice"] = mcnemar_n(b10 / n, b01 / n)
        if len(diffs) > 1 and diffs.std(ddof=1) > 0:
            dz = float(diffs.mean() / diffs.std(ddof=1))
            row["margin_diff_mean"] = round(float(diffs.mean()), 5)
            row["margin_dz"] = round(dz, 4)
            row["items_for_80pct_power_margin"] = (
                int(np.ceil(TTestPower().solve_power(effect_size=dz, alpha=0.05, power=0.8, alternative="larger")))
                if dz > 0 else None)
        if args.seconds_per_item:
            for k in ("items_for_80pct_power_choice", "items_for_80pct_power_margin"):
                if row.get(k):
                    row[k.replace("items_for", "cpu_hours_for")] = round(2 * row[k] * args.seconds_per_item / 3600, 2)
        print(json.dumps(row))


if __name__ == "__main__":
    main()
