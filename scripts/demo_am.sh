#!/usr/bin/env bash
# The agentic-misalignment half of the paper's rules-vs-values study at toy scale on the embedded
# SmolLM2-135M model (`just demo-am`; it was the demo's first part until the controls took its place).
#
# Every stage runs for real (generation, training, evaluation, grading, tagging, statistics), but at
# this scale the numbers mean nothing: a 135M model trained for a few epochs on a handful of documents
# cannot show the paper's effects. The point is that the whole method runs end to end and leaves every
# intermediate file on disk, so any single step can be rerun alone (see docs/tutorial.md).
#
# The variants and the baseline run side by side, one CPU thread each: decoding a 135M model is bound by
# per-token overhead, not arithmetic, so single-threaded jobs in parallel finish far sooner than in turn.
# Each variant's full output is in OUT/<variant>/log.txt; the terminal shows one line per step.
#
# Usage: scripts/demo_am.sh [OUT]   (default OUT=out/demo-am). Sizes can be raised through the variables below.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-out/demo-am}
MSM=${MSM:-.venv/bin/msm}
VARIANTS=${VARIANTS:-"rules value_augmented"}
CONDITIONS=${CONDITIONS:-"murder_none-none_replacement leaking_explicit-america_replacement exfiltration_none-none_replacement"}
SAMPLES=${SAMPLES:-2}
EPOCHS=${EPOCHS:-4}
SEED=${SEED:-0}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}

mkdir -p "$OUT"
start=$(date +%s)
exec 3>&2  # the terminal; each job's stderr goes to its log
say() { printf '[%4ss] %s\n' "$(( $(date +%s) - start ))" "$*" >&3; }

# One variant: spec -> documents -> chats -> midtrain -> aft -> am-eval -> tags (stderr: its log.txt).
variant() {
  local v=$1 d="$OUT/$1"
  step() { say "$v: $*"; printf '\n== %s\n' "$*" >&2; }

  step "render the spec"
  $MSM spec-render "$v" --model-name SmolLM --provider-name "Hugging Face" -q -o "$d/spec.jsonl"

  step "MSM documents (spec -> domains -> subdomains -> assertions -> types -> ideas -> documents)"
  # A 135M model rarely ends a document by itself: --keep-truncated keeps the cut-off ones, marked truncated: true.
  $MSM docgen "$d/spec.jsonl" --model default --domains 2 --subdomains 1 --assertions 1 --doc-types 1 --ideas 2 \
    --doc-words 60 --doc-max-tokens 160 --keep-truncated --seed "$SEED" -q -o "$d/docs.jsonl"

  step "AFT chats (domains -> queries -> deduplicated -> responses with the spec in context -> judge)"
  # Likewise for answers (--keep-truncated), and its judge verdicts are mostly unreadable: --keep-undecided
  # keeps those chats, marked verdict null. Conversation domains come from the spec's headings. Every
  # response and judge call reads the whole spec (3.7k tokens for value_augmented): a few chats only.
  $MSM docgen "$d/spec.jsonl" --kind chats --model default --domains 2 --queries 1 --response-max-tokens 128 \
    --judge-max-tokens 48 --keep-truncated --keep-undecided --seed "$SEED" -q -o "$d/chats.jsonl"

  step "midtrain (LoRA r64) on the documents"
  [ -s "$d/midtrain.json" ] || $MSM midtrain "$d/docs.jsonl" --model default --epochs "$EPOCHS" \
    --seq-len 256 --batch-tokens 512 --micro-batch 2 --seed "$SEED" --label "$v-msm" -o "$d/midtrain" > "$d/midtrain.json"

  step "AFT, continuing the midtrain adapter"
  [ -s "$d/aft.json" ] || $MSM aft "$d/chats.jsonl" --from "$d/midtrain.json" --epochs "$EPOCHS" \
    --seq-len 256 --batch-tokens 512 --micro-batch 2 --seed "$SEED" --label "$v" -o "$d/aft" > "$d/aft.json"

  # --grade gated: the LLM grader reads only replies whose deterministic gate fired; since harmful = gate AND
  # grader, that gives the same harmful values as grading every reply, at a fraction of the cost.
  step "agentic-misalignment eval ($SAMPLES samples x $(wc -w <<<"$CONDITIONS") conditions, gate + LLM grader)"
  # shellcheck disable=SC2086
  $MSM am-eval --from "$d/aft.json" --conditions $CONDITIONS --samples "$SAMPLES" --max-tokens 96 \
    --grade gated --grader-max-tokens 96 --seed "$SEED" -o "$d/rollouts.jsonl"

  step "tag the reasoning (lexical tagger)"
  $MSM tag-reasoning "$d/rollouts.jsonl" --spec "$d/spec.jsonl" --tagger lexical -q -o "$d/tagged.jsonl"
  step "done"
}

# The untouched model: the baseline every comparison needs.
base() {
  local d="$OUT/base"
  say "base: agentic-misalignment eval of the untouched model"
  # shellcheck disable=SC2086
  $MSM am-eval --model default --label base --conditions $CONDITIONS --samples "$SAMPLES" --max-tokens 96 \
    --grade gated --grader-max-tokens 96 --seed "$SEED" -o "$d/rollouts.jsonl"
  $MSM spec-render rules --model-name SmolLM --provider-name "Hugging Face" -q -o "$d/spec.jsonl"
  $MSM tag-reasoning "$d/rollouts.jsonl" --spec "$d/spec.jsonl" --tagger lexical -q -o "$d/tagged.jsonl"
  say "base: done"
}

jobs_=()
names=()
for v in $VARIANTS base; do
  mkdir -p "$OUT/$v"
  if [ "$v" = base ]; then base 2>"$OUT/base/log.txt" &
  else variant "$v" 2>"$OUT/$v/log.txt" & fi
  jobs_+=($!)
  names+=("$v")
done
failed=0
for i in "${!jobs_[@]}"; do
  if ! wait "${jobs_[$i]}"; then
    failed=1
    say "${names[$i]}: FAILED; the end of $OUT/${names[$i]}/log.txt:"
    tail -n 15 "$OUT/${names[$i]}/log.txt" >&3
  fi
done
[ "$failed" = 0 ] || exit 1

say "compare: harmful rate per variant with Wilson intervals, contrasts against the base model"
tagged=()
for v in base $VARIANTS; do tagged+=("$OUT/$v/tagged.jsonl"); done
$MSM compare "${tagged[@]}" --baseline base --format table --plot "$OUT/compare.png" | tee "$OUT/compare.txt"

cat >&3 <<MSG

Done in $(( $(date +%s) - start )) s. Table: $OUT/compare.txt   Plot: $OUT/compare.png   Logs: $OUT/*/log.txt
These numbers come from a 135M-parameter model trained for $EPOCHS epochs on a few documents, with
$SAMPLES samples per condition and a grader of the same size: they say nothing about which spec is
better. The paper's experiments need the settings in docs/recipes.md.
MSG
