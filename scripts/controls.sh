#!/usr/bin/env bash
# The value measure's positive and negative controls, as written in docs/controls.md (fixed before the first run).
#
# Usage: scripts/controls.sh [OUT]   (default out/controls). Prints the verdicts; the tables are in OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/controls}
MSM=${MSM:-.venv/bin/msm}
ITEMS=60 EPOCHS=3 LR=1e-4
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
say "controls: value-eval of the three arms on $ITEMS held-out america items"
$MSM value-eval america --from "$OUT/arms.json" --subset "$ITEMS" -q -o "$OUT/values.jsonl"
$MSM compare "$OUT/values.jsonl" --baseline pro --format table | tee "$OUT/values.txt" >&2
$MSM compare "$OUT/values.jsonl" --baseline pro --format jsonl > "$OUT/values.records.jsonl"
.venv/bin/python - "$OUT/values.records.jsonl" <<'PY' | tee "$OUT/verdict.txt"
import json, sys
rows = {(r["baseline"], r["variant"]): r for r in map(json.loads, open(sys.argv[1])) if r["kind"] == "value_contrast"}
pos, neg = rows[("pro", "anti")], rows[("pro", "pro-seed1")]
d = -pos["diff"]  # pro - anti
ok = d > 0 and pos["p_holm"] < 0.05
print(f"positive control (pro - anti, held-out america items): {100 * d:+.1f} points, 95% CI "
      f"{-100 * pos['hi']:+.1f} to {-100 * pos['lo']:+.1f}, McNemar p {pos['p']:.3g} (Holm {pos['p_holm']:.3g}): "
      + ("DETECTED" if ok else "NOT DETECTED"))
alarm = neg["p_holm"] < 0.05
print(f"negative control (pro-seed1 - pro): {100 * neg['diff']:+.1f} points, 95% CI {100 * neg['lo']:+.1f} to "
      f"{100 * neg['hi']:+.1f}, McNemar p {neg['p']:.3g} (Holm {neg['p_holm']:.3g}): "
      + ("FALSE ALARM" if alarm else "no difference found, as expected"))
PY
say "controls: done"
