"""Does a contrast differ between the levels of a factor? (`--across FIELD`: model family, scenario, ...)

For each score and each pair of arms contrasted within every level of FIELD, the difference of the two
levels' contrasts, (variant - baseline at level b) - (variant - baseline at level a), with a Wald interval
and z-test from the two contrasts' standard errors (the levels are independent samples: different models,
different conditions). A contrast's standard error is the unpaired one for an unpaired rate,
sqrt(pa(1-pa)/na + pb(1-pb)/nb), and the paired one for a paired rate, from its discordant counts,
sqrt(b01 + b10 - (b01 - b10)^2 / n) / n. Holm's correction runs over the interactions of one score.
"""

from __future__ import annotations

import math
from typing import Any

from .. import stats
from ..errors import MsmError
from ..ids import stable_id


def _se(c: dict[str, Any]) -> float | None:
    if c.get("paired"):
        n, b01, b10 = c.get("n_paired") or 0, c.get("discordant_variant") or 0, c.get("discordant_baseline") or 0
        if not n:
            return None
        return math.sqrt(max(b01 + b10 - (b01 - b10) ** 2 / n, 0.0)) / n
    na, nb = c.get("n_baseline") or 0, c.get("n_variant") or 0
    pa, pb = c.get("rate_baseline"), c.get("rate_variant")
    if not na or not nb or pa is None or pb is None:
        return None
    return math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)


def interactions(contrasts: list[dict[str, Any]], field: str, alpha: float) -> list[dict[str, Any]]:
    """One record per (score, arm pair, other split values, pair of levels of `field`)."""
    from scipy.stats import norm

    if not any(field in (c.get("splits") or ()) for c in contrasts):
        raise MsmError(f"--across {field}: not a split of any contrast (split by it with --by {field})")
    z = float(norm.ppf(1 - alpha / 2))
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for c in contrasts:
        if field not in (c.get("splits") or ()):
            continue
        rest = tuple((k, c.get(k)) for k in c["splits"] if k != field)
        groups.setdefault((c["metric"], c["baseline"], c["variant"], rest), []).append(c)
    out: list[dict[str, Any]] = []
    for (metric, a, b, rest), cs in groups.items():
        for i, ca in enumerate(cs):
            for cb in cs[i + 1:]:
                sa, sb = _se(ca), _se(cb)
                ok = None not in (sa, sb, ca["diff"], cb["diff"])
                diff = cb["diff"] - ca["diff"] if ok else None
                se = math.hypot(sa, sb) if ok else None
                p = (2 * float(norm.sf(abs(diff) / se)) if se else (1.0 if diff == 0 else 0.0)) if ok else None
                where = dict(rest)
                out.append({"kind": "interaction", "id": stable_id("interaction", metric, a, b, field, ca[field],
                                                                   cb[field], where),
                            "metric": metric, "baseline": a, "variant": b, "across": field, "level_a": ca[field],
                            "level_b": cb[field], **where, "diff_a": ca["diff"], "diff_b": cb["diff"], "diff": diff,
                            "lo": None if diff is None else diff - z * se, "hi": None if diff is None else diff + z * se,
                            "p": p, "test": "wald-z", "paired": bool(ca.get("paired")), "confidence": 1 - alpha})
    for metric in dict.fromkeys(r["metric"] for r in out):
        fam = [r for r in out if r["metric"] == metric]
        for r, ph in zip(fam, stats.holm([r["p"] if r["p"] is not None else 1.0 for r in fam])):
            r["p_holm"] = ph if r["p"] is not None else None
    return out
