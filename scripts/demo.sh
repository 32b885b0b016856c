#!/usr/bin/env bash
# The main job: the paper's rules-vs-values case study at toy scale on the embedded SmolLM2-135M model.
#
# Every stage runs for real (generation, training, evaluation, grading, tagging, statistics), but at
# this scale the numbers mean nothing: a 135M model trained for a few dozen steps on a handful of
# documents cannot show the paper's effects. The point is that the whole method runs end to end and
# leaves every intermediate file on disk, so any single step can be rerun alone (see docs/tutorial.md).
#
# Usage: scripts/demo.sh [OUT]   (default OUT=out/demo). Sizes can be raised through the variables below.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-out/demo}
MSM=${MSM:-.venv/bin/msm}
VARIANTS=${VARIANTS:-"rules value_augmented"}
CONDITIONS=${CONDITIONS:-"murder_none-none_replacement leaking_explicit-america_replacement exfiltration_none-none_replacement"}
SAMPLES=${SAMPLES:-2}
STEPS=${STEPS:-24}
SEED=${SEED:-0}

mkdir -p "$OUT"
log() { printf '\n== %s\n' "$*" >&2; }
start=$(date +%s)

for v in $VARIANTS; do
  d="$OUT/$v"
  mkdir -p "$d"
  log "$v: render the spec"
  $MSM spec-render "$v" --model-name SmolLM --provider-name "Hugging Face" -q -o "$d/spec.jsonl"

  log "$v: MSM documents (spec -> domains -> subdomains -> assertions -> types -> ideas -> documents)"
  $MSM docgen "$d/spec.jsonl" --model default --domains 2 --subdomains 1 --doc-types 2 --ideas 2 \
    --seed "$SEED" -o "$d/docs.jsonl"

  log "$v: AFT chats (domains -> queries -> deduplicated -> responses with the spec in context -> judge)"
  $MSM docgen "$d/spec.jsonl" --kind chats --model default --domains 2 --queries 4 \
    --seed "$SEED" -o "$d/chats.jsonl"

  log "$v: midtrain (LoRA r64) on the documents"
  [ -s "$d/midtrain.json" ] || $MSM midtrain "$d/docs.jsonl" --model default --max-steps "$STEPS" \
    --seq-len 512 --batch-tokens 2048 --seed "$SEED" --label "$v-msm" -o "$d/midtrain" > "$d/midtrain.json"

  log "$v: AFT, continuing the midtrain adapter"
  [ -s "$d/aft.json" ] || $MSM aft "$d/chats.jsonl" --from "$d/midtrain.json" --max-steps "$STEPS" \
    --seq-len 512 --batch-tokens 2048 --seed "$SEED" --label "$v" -o "$d/aft" > "$d/aft.json"

  log "$v: agentic-misalignment eval ($SAMPLES samples x $(wc -w <<<"$CONDITIONS") conditions, graded by the same small model)"
  # shellcheck disable=SC2086
  $MSM am-eval --from "$d/aft.json" --conditions $CONDITIONS --samples "$SAMPLES" --max-tokens 192 \
    --seed "$SEED" -o "$d/rollouts.jsonl"

  log "$v: tag the reasoning (lexical tagger)"
  $MSM tag-reasoning "$d/rollouts.jsonl" --spec "$d/spec.jsonl" --tagger lexical -q -o "$d/tagged.jsonl"
done

log "untouched base model (the baseline every comparison needs)"
mkdir -p "$OUT/base"
# shellcheck disable=SC2086
$MSM am-eval --model default --label base --conditions $CONDITIONS --samples "$SAMPLES" --max-tokens 192 \
  --seed "$SEED" -o "$OUT/base/rollouts.jsonl"
$MSM tag-reasoning "$OUT/base/rollouts.jsonl" --spec "$OUT/rules/spec.jsonl" --tagger lexical -q \
  -o "$OUT/base/tagged.jsonl"

log "compare: harmful rate per variant with Wilson intervals, contrasts against the base model"
tagged=()
for v in base $VARIANTS; do tagged+=("$OUT/$v/tagged.jsonl"); done
$MSM compare "${tagged[@]}" --baseline base --format table --plot "$OUT/compare.png" | tee "$OUT/compare.txt"

cat >&2 <<MSG

Done in $(( $(date +%s) - start )) s. Table: $OUT/compare.txt   Plot: $OUT/compare.png
These numbers come from a 135M-parameter model trained for $STEPS steps on a few documents, with
$SAMPLES samples per condition and a grader of the same size: they say nothing about which spec is
better. The paper's experiments need the settings in docs/recipes.md.
MSG
