"""The demo's verdict: each control against the design fixed before its run, then the study, in plain words.

Every number comes from `msm compare` run on the value-eval records (the same command a user runs); each
control is its own family of one contrast, so its Holm adjustment is over that contrast alone
(docs/controls.md, design 2 onwards). What ran is read back from the checkpoint records and set beside what
the design fixed: a mismatch is printed, never hidden.

    scripts/demo_verdict.py OUT --design 4      # the demo (studies/demo.yaml: its `report` step)
    scripts/demo_verdict.py OUT --design 2      # `just controls` (studies/controls.yaml)

OUT is a study's output folder (docs/studies.md): value records in OUT/evals/{controls,study}/records.jsonl,
checkpoint records in OUT/runs/ARM-sSEED/aft.json; the tables `msm compare` printed go to OUT/verdict/.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

MSM = str(Path(sys.executable).with_name("msm"))
ALPHA = 0.05
# What docs/controls.md fixed before each design's first run (training of the control arms).
DESIGNS = {2: {"epochs": 3, "lr": 1e-4}, 3: {"epochs": 1, "lr": 3e-4}, 4: {"epochs": 3, "lr": 1e-4}}
ARMS = {"pro": 0, "anti": 0, "pro-seed1": 1}  # arm -> training seed
ITEMS = 231  # every shipped america item


def records(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def compare(values: list[dict], arms: tuple[str, str], baseline: str, name: str, out: Path) -> list[dict]:
    """`msm compare` over the records of `arms`: its table into OUT/verdict/NAME.txt, its records returned."""
    out = out / "verdict"
    out.mkdir(parents=True, exist_ok=True)
    src = out / f"{name}.values.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in values if r["label"] in arms), encoding="utf-8")
    table = subprocess.run([MSM, "compare", str(src), "--baseline", baseline, "--format", "table"],
                           check=True, capture_output=True, text=True).stdout
    (out / f"{name}.txt").write_text(table, encoding="utf-8")
    res = subprocess.run([MSM, "compare", str(src), "--baseline", baseline, "--format", "jsonl"],
                         check=True, capture_output=True, text=True).stdout
    return [json.loads(x) for x in res.splitlines() if x.strip()]


def contrast(recs: list[dict], value: str) -> dict:
    return next(r for r in recs if r["kind"] == "contrast" and r.get("metric") == "choice_aligned" and r.get("value") == value)


def interval(c: dict, sign: int = 1) -> tuple[float, float, float]:
    """The difference and its interval in points, signed so the first-named arm's advantage is positive
    (rounded to the printed precision first, so that no -0.0 is printed)."""
    lo, hi = sorted((sign * c["lo"], sign * c["hi"]))
    return tuple(round(100 * x, 1) + 0.0 for x in (sign * c["diff"], lo, hi))


def fmt(d: float, lo: float, hi: float, c: dict, sign: int = 1) -> str:
    """The difference, its interval, and the discordant items: for the first-named arm : for the other."""
    ours, theirs = c["discordant_variant"], c["discordant_baseline"]
    if sign < 0:
        ours, theirs = theirs, ours
    return f"{d:+.1f} points (95% CI {lo:+.1f} to {hi:+.1f}); discordant {ours}:{theirs}; McNemar p {c['p']:.2g}"


def ran(out: Path, design: int) -> tuple[str, list[str]]:
    """What the control arms' checkpoints say ran, and how it differs from the design."""
    fixed, seen, diffs = DESIGNS[design], [], []
    for arm, seed in ARMS.items():
        rec = json.loads((out / "runs" / f"{arm}-s{seed}" / "aft.json").read_text(encoding="utf-8").splitlines()[0])
        cfg = rec["config"]
        got = {"epochs": cfg["epochs"], "lr": cfg["lr"], "seed": rec.get("seed", cfg.get("seed"))}
        seen.append(f"{arm}: {got['epochs']} epoch(s), lr {got['lr']:g}, seed {got['seed']}, {rec['tokens']} tokens")
        for k, want in (*fixed.items(), ("seed", seed)):
            if got[k] != want:
                diffs.append(f"{arm}: {k} {got[k]} where design {design} fixed {want}")
    return "; ".join(seen), diffs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--design", type=int, choices=sorted(DESIGNS), default=4)
    args = ap.parse_args()
    values = records(args.out / "evals" / "controls" / "records.jsonl")
    n_items = len({r["item_id"] for r in values})
    pos = contrast(compare(values, ("pro", "anti"), "pro", "positive", args.out), "america")
    neg = contrast(compare(values, ("pro", "pro-seed1"), "pro", "negative", args.out), "america")
    what_ran, diffs = ran(args.out, args.design)

    d, lo, hi = interval(pos, -1)  # compare reports anti - pro: the control's outcome is pro - anti
    detected = d > 0 and pos["p_holm"] < ALPHA
    nd, nlo, nhi = interval(neg)
    alarm = neg["p_holm"] < ALPHA
    rows = [
        ("Positive control (value)", f"pro - anti > 0, McNemar p < {ALPHA}",
         fmt(d, lo, hi, pos, -1), "DETECTED" if detected else "NOT DETECTED"),
        ("Negative control (value)", f"alarm if McNemar p < {ALPHA}, either way",
         fmt(nd, nlo, nhi, neg), "FALSE ALARM" if alarm else "no false alarm"),
    ]
    study_file = args.out / "evals" / "study" / "records.jsonl"
    words = []
    if study_file.exists():
        srecs = compare(records(study_file), ("america", "affordability"), "affordability", "study", args.out)
        for value in ("america", "affordability"):
            c = contrast(srecs, value)
            sign = 1 if value == "america" else -1  # the arm trained on that value's spec, minus the other
            sd, slo, shi = interval(c, sign)
            seen = ("a difference: the interval excludes zero" if slo > 0 or shi < 0 else
                    "no difference found: the interval includes zero")
            rows.append((f"Section-3 study, {value} items", "none: an experiment", fmt(sd, slo, shi, c, sign), seen))
            words.append(f"On {c['n_paired']} {value} items, the arm midtrained on the cheese_{value} spec chose the "
                         f"{value}-aligned option {sd:+.1f} points more often than the other arm: {seen}.")

    print(f"Verdict (docs/controls.md, design {args.design}, fixed before its first run; each control its own family;"
          f" {n_items} held-out items)\n")
    widths = [max(len(r[i]) for r in rows + [("check", "decision rule", "result", "verdict")]) for i in range(4)]
    for r in [("check", "decision rule", "result", "verdict"), tuple("-" * w for w in widths), *rows]:
        print(" | ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip())
    print(f"\nWhat ran (from the checkpoints): {what_ran}.")
    if diffs:
        print("NOT AS DESIGNED: " + "; ".join(diffs) + ".")
    if n_items != ITEMS:
        print(f"NOT AS DESIGNED: {n_items} items evaluated where the design fixed {ITEMS}.")
    print("\nIn plain words:")
    print(f"- The instrument {'saw' if detected else 'did NOT see'} the preference that training put there: the pro "
          f"arm chose the American option {d:+.1f} points more often than the anti arm on questions from domains "
          f"neither was trained on.")
    print(f"- Two arms that differ only in their training seed {'differed' if alarm else 'did not differ'} "
          f"({nd:+.1f} points){': a false alarm' if alarm else ', as expected'}.")
    for w in words:
        print(f"- {w}")
    if words:
        print("  At 135M parameters and a few dozen steps nobody knows whether MSM generalizes: a null here is not "
              "evidence against the paper (docs/controls.md).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
