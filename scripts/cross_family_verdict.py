"""The cross-family control's verdict (docs/controls.md, "Cross-family design 1"), from `msm compare`'s records
of the study: pro - anti within each family (detected: positive, Holm-adjusted McNemar p < 0.05) and whether
the contrast differs between the families (Wald z-test of the difference, p < 0.05).

    scripts/cross_family_verdict.py OUT      # OUT/compare/controls.jsonl -> one line per family, one for the difference
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ALPHA = 0.05


def main() -> int:
    recs = [json.loads(x) for x in (Path(sys.argv[1]) / "compare" / "controls.jsonl").read_text().splitlines() if x.strip()]
    within = [r for r in recs if r["kind"] == "contrast" and r.get("metric") == "choice_aligned"]
    for c in within:
        ok = c["diff"] is not None and c["diff"] > 0 and c["p_holm"] < ALPHA
        print(f"{c['model_family']}: {c['variant']} - {c['baseline']} {100 * c['diff']:+.1f} points (95% CI "
              f"{100 * c['lo']:+.1f} to {100 * c['hi']:+.1f}), discordant {c['discordant_variant']}:"
              f"{c['discordant_baseline']}, McNemar p {c['p']:.2g} (Holm {c['p_holm']:.2g}): "
              + ("DETECTED" if ok else "NOT DETECTED"))
    for x in (r for r in recs if r["kind"] == "interaction" and r.get("metric") == "choice_aligned"):
        print(f"{x['level_b']} - {x['level_a']}: the contrast differs by {100 * x['diff']:+.1f} points (95% CI "
              f"{100 * x['lo']:+.1f} to {100 * x['hi']:+.1f}), Wald p {x['p']:.2g}: "
              + ("DIFFERS" if x["p"] < ALPHA else "no difference found"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
