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
.venv/bin/python scripts/demo_verdict.py "$OUT" --design 2 | tee "$OUT/verdict.txt"
say "controls: done"
