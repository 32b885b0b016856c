#!/usr/bin/env bash
# The value measure's positive and negative controls, as written in docs/controls.md: design 2 (separate
# families, all 231 america items), written after run 1 and before run 2. Run 1 (design 1) is this script
# at commit 3c35f53.
#
# Usage: scripts/controls.sh [OUT]   (default out/controls). Prints the verdicts; the tables are in OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/controls}
MSM=${MSM:-.venv/bin/msm}
EPOCHS=3 LR=1e-4
DATA=src/msmtools/data/controls
mkdir -p "$OUT"
start=$(date +%s)
say() { printf '[%4ss] %s\n' "$(( $(date +%s) - start ))" "$*" >&2; }

train() {  # name chats seed
  [ -s "$OUT/$1.json" ] && return
  say "controls: AFT arm $1 ($2, seed $3)"
  $MSM aft "$2" --model default --epochs "$EPOCHS" --lr "$LR" --seq-len 256 --batch-tokens 512 --micro-batch 2 \
    --seed "$3" --label "$1" -o "$OUT/$1" > "$OUT/$1.json"
}
train pro "$DATA/america_pro_chats.jsonl" 0
train anti "$DATA/america_anti_chats.jsonl" 0
train pro-seed1 "$DATA/america_pro_chats.jsonl" 1
cat "$OUT/pro.json" "$OUT/anti.json" "$OUT/pro-seed1.json" > "$OUT/arms.json"
say "controls: value-eval of the three arms on all 231 held-out america items"
$MSM value-eval america --from "$OUT/arms.json" -q -o "$OUT/values-all.jsonl"
# each control is its own family: a file with its two arms, one compare each
.venv/bin/python - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
recs = [json.loads(x) for x in open(f"{out}/values-all.jsonl")]
for name, arms in (("positive", ("pro", "anti")), ("negative", ("pro", "pro-seed1"))):
    with open(f"{out}/{name}.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in recs if r["label"] in arms)
PY
for c in positive negative; do
  $MSM compare "$OUT/$c.jsonl" --baseline pro --format table | tee "$OUT/$c.txt" >&2
  $MSM compare "$OUT/$c.jsonl" --baseline pro --format jsonl > "$OUT/$c.records.jsonl"
done
.venv/bin/python - "$OUT" <<'PY' | tee "$OUT/verdict.txt"
import json, sys
out = sys.argv[1]
contrast = lambda name: next(r for r in map(json.loads, open(f"{out}/{name}.records.jsonl")) if r["kind"] == "value_contrast")
pos, neg = contrast("positive"), contrast("negative")
d = -pos["diff"]  # pro - anti
ok = d > 0 and pos["p_holm"] < 0.05
print(f"positive control (pro - anti, {pos['n_paired']} held-out america items): {100 * d:+.1f} points, 95% CI "
      f"{-100 * pos['hi']:+.1f} to {-100 * pos['lo']:+.1f}, McNemar p {pos['p']:.3g} (Holm {pos['p_holm']:.3g}): "
      + ("DETECTED" if ok else "NOT DETECTED"))
alarm = neg["p_holm"] < 0.05
print(f"negative control (pro-seed1 - pro): {100 * neg['diff']:+.1f} points, 95% CI {100 * neg['lo']:+.1f} to "
      f"{100 * neg['hi']:+.1f}, McNemar p {neg['p']:.3g} (Holm {neg['p_holm']:.3g}): "
      + ("FALSE ALARM" if alarm else "no difference found, as expected"))
PY
say "controls: done"
