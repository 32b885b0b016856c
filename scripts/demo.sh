#!/usr/bin/env bash
# The demo: can the instrument see? Two controls with known answers, then the paper's section-3 study at
# toy scale, on the embedded SmolLM2-135M model, ending in one verdict table (docs/controls.md).
#
# 1. Value positive control: arms `pro` and `anti` fine-tuned (AFT) toward opposite choices on 48 paired
#    questions in 8 training domains; value-eval on all 231 held-out `america` items (other domains).
# 2. Value negative control: `pro` against `pro-seed1` (same data and settings, training seed 1).
# 3. The section-3 study: MSM on each cheese spec's passages, then the same opaque cheese-preference chats;
#    value-eval on america and affordability items. Nobody knows the answer at this scale: an experiment.
#
# The controls' settings are design 4 in docs/controls.md, written before its first run; change nothing
# here without writing the change there first. Jobs run two at a time, one CPU thread each (on a 2-core
# CPU, single-threaded jobs side by side finish sooner than threaded ones in turn). Each job's output is
# in OUT/logs/; the terminal shows one line per step. The AM variants moved to `just demo-am`.
#
# Usage: scripts/demo.sh [OUT]   (default OUT=out/demo); a rerun reuses finished steps.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-out/demo}
MSM=${MSM:-.venv/bin/msm}
PY=${PY:-.venv/bin/python}
SLOTS=${SLOTS:-2}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
CTL=src/msmtools/data/controls
# design 4 (docs/controls.md): the controls' training is design 2's, fixed before its run
CTL_EPOCHS=3 CTL_LR=1e-4 CTL_ITEMS=america
# the study at toy scale: sized by the time budget, not by any result
STUDY_EPOCHS=2 STUDY_LR=3e-4 STUDY_AFT_EPOCHS=1 STUDY_ITEMS=30
TRAIN="--seq-len 256 --batch-tokens 512 --micro-batch 2"

mkdir -p "$OUT/logs" "$OUT/controls" "$OUT/study"
start=$(date +%s)
say() { printf '[%4ss] %s\n' "$(( $(date +%s) - start ))" "$*" >&2; }

# A two-slot queue: `job NAME CMD...` starts CMD (stderr to OUT/logs/NAME.txt) once a slot is free;
# `drain` waits for every job and stops the demo if one failed, showing the end of its log.
pids=() names=()
job() {
  local name=$1; shift
  while [ "$(jobs -rp | wc -l)" -ge "$SLOTS" ]; do wait -n || true; done
  say "start: $name"
  ( "$@" 2>"$OUT/logs/$name.txt" && say "done: $name" ) &
  pids+=($!) names+=("$name")
}
drain() {
  local failed=0
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      failed=1; say "${names[$i]}: FAILED; the end of $OUT/logs/${names[$i]}.txt:"; tail -n 15 "$OUT/logs/${names[$i]}.txt" >&2
    fi
  done
  pids=() names=()
  [ "$failed" = 0 ] || exit 1
}

control_arm() {  # name chats seed
  local d="$OUT/controls"
  [ -s "$d/$1.json" ] || { $MSM aft "$2" --model default --epochs "$CTL_EPOCHS" --lr "$CTL_LR" $TRAIN --seed "$3" \
    --label "$1" -o "$d/$1" > "$d/$1.json.tmp" && mv "$d/$1.json.tmp" "$d/$1.json"; }
}
study_arm() {  # value: MSM on the cheese_<value> spec's own passages, then AFT on the shared preference chats
  local d="$OUT/study/$1"
  mkdir -p "$d"
  $MSM spec-render "cheese_$1" --model-name SmolLM --provider-name "Hugging Face" -q -o "$d/spec.jsonl"
  $MSM docgen "$d/spec.jsonl" --kind passages -q -o "$d/docs.jsonl"
  [ -s "$d/midtrain.json" ] || { $MSM midtrain "$d/docs.jsonl" --model default --epochs "$STUDY_EPOCHS" \
    --lr "$STUDY_LR" $TRAIN --seed 0 --label "$1-msm" -o "$d/midtrain" > "$d/midtrain.json.tmp" \
    && mv "$d/midtrain.json.tmp" "$d/midtrain.json"; }
  [ -s "$d/aft.json" ] || { $MSM aft src/msmtools/data/cheese_aft.jsonl --from "$d/midtrain.json" \
    --epochs "$STUDY_AFT_EPOCHS" $TRAIN --seed 0 --label "$1" -o "$d/aft" > "$d/aft.json.tmp" \
    && mv "$d/aft.json.tmp" "$d/aft.json"; }
}

# Three rounds, ordered so that both slots stay busy: the study's evaluation runs beside the last arm.
say "training: 2 study arms (MSM then AFT) and 3 control arms (AFT, $CTL_EPOCHS epoch at lr $CTL_LR)"
job study-america study_arm america
job study-affordability study_arm affordability
job control-pro control_arm pro "$CTL/america_pro_chats.jsonl" 0
job control-anti control_arm anti "$CTL/america_anti_chats.jsonl" 0
drain

say "the last control arm, beside the study arms' value-eval on $STUDY_ITEMS america + $STUDY_ITEMS affordability items"
job control-pro-seed1 control_arm pro-seed1 "$CTL/america_pro_chats.jsonl" 1
cat "$OUT"/study/{america,affordability}/aft.json > "$OUT/study/arms.json"
job eval-study $MSM value-eval america affordability --from "$OUT/study/arms.json" --subset "$STUDY_ITEMS" -q \
  -o "$OUT/study/values.jsonl"
drain

say "evaluation: the 3 control arms on all 231 held-out $CTL_ITEMS items (two shards side by side)"
cat "$OUT"/controls/{pro,anti,pro-seed1}.json > "$OUT/controls/arms.json"
for s in 0 1; do
  job "eval-controls-$s" $MSM value-eval "$CTL_ITEMS" --from "$OUT/controls/arms.json" --shard "$s/2" -q \
    -o "$OUT/controls/values-$s.jsonl"
done
drain

say "compare: each control its own family; the study against the affordability arm"
$PY scripts/demo_verdict.py "$OUT" | tee "$OUT/verdict.txt"

cat >&2 <<MSG

Done in $(( $(date +%s) - start )) s. Verdict: $OUT/verdict.txt   Tables: $OUT/*.txt   Logs: $OUT/logs/
The controls' design, fixed before its first run, and every earlier result: docs/controls.md.
The agentic-misalignment variants (rules vs value_augmented, am-eval, tags) are \`just demo-am\`;
the AM positive control is \`just am-control\`; the paper-scale settings are in docs/recipes.md.
MSG
