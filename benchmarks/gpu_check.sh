#!/usr/bin/env bash
# GPU check (issues 6, 7 and 16), one script for the card, about 8 minutes on one H100/H200:
#   1. msm midtrain + msm aft at Qwen2.5-0.5B shapes (random init) against TRL's SFTTrainer
#      (packing_strategy="wrapped"), back to back;
#   2. msm midtrain at Qwen2.5-7B shapes: bf16, LoRA r64 on all projections, 8,192-token rows with
#      document masks, gradient checkpointing, --compile (TRL beside it when time is left);
#   3. hf generation in am-eval's pattern (8 conditions x 32 samples, 512-token replies) at both shapes:
#      batched vs one at a time, shared-prefix cache on and off.
# MFU everywhere is msmtools/train/flops.py's count: 6N full, 4N + 6N_adapter LoRA, plus attention.
#
# Run from anywhere; the package need not be installed (PYTHONPATH=src):
#   benchmarks/gpu_check.sh --tokenizer DIR [--wheels DIR] [--out DIR] [--full] [--tiny]
#     --tokenizer DIR  the embedded model's tokenizer files (tokenizer.json, tokenizer_config.json,
#                      chat_template.jinja); no GGUF conversion happens here
#     --wheels DIR     wheels to install into a private folder when missing: orjson, trl, datasets,
#                      dill, multiprocess (see docs/training.md for the exact versions)
#     --out DIR        work folder (default /tmp/msm-gpu-check); summary.json and metrics land there
#     --full           also compare full fine-tuning (adds about 2 minutes)
#     --tiny           tiny model and data: a smoke test of this script on CPU
set -euo pipefail
cd "$(dirname "$0")/.."
TOK="" WHEELS="" OUT="/tmp/msm-gpu-check" EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tokenizer) TOK="$2"; shift 2 ;;
    --wheels) WHEELS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --full|--tiny|--no-aft) EXTRA+=("$1"); shift ;;
    *) echo "gpu_check.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$TOK" ] || { echo "gpu_check.sh: --tokenizer DIR is required" >&2; exit 2; }
PY="${PYTHON:-python3}"
SITE="${OUT}/site"
mkdir -p "$OUT"
if [ -n "$WHEELS" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl
fi
export PYTHONPATH="$PWD/src:$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi (CPU run)"
"$PY" - <<'EOF'
import importlib
vers = {}
for m in ("torch", "transformers", "peft", "trl", "datasets", "orjson"):
    try:
        vers[m] = importlib.import_module(m).__version__
    except Exception as e:
        vers[m] = f"missing ({type(e).__name__})"
print("versions:", ", ".join(f"{k} {v}" for k, v in vers.items()))
EOF
start=$(date +%s)
status=0
TINY=""; for e in "${EXTRA[@]}"; do [ "$e" = "--tiny" ] && TINY="--tiny"; done
echo "== 1. 0.5B shapes: msm vs TRL wrapped"
timeout 240 "$PY" benchmarks/train_gpu.py --tokenizer "$TOK" --out "$OUT/0.5b" "${EXTRA[@]}" --steps 15 2> "$OUT/train_0.5b.log" || status=$?
grep -E "^(msm|step|ERROR|skipping)" "$OUT/train_0.5b.log" | tail -12 >&2 || true
echo "== 2. 7B shapes: LoRA r64, 8192-token rows, gradient checkpointing, compiled"
if [ -n "$TINY" ]; then
  timeout 120 "$PY" benchmarks/train_gpu.py --tokenizer "$TOK" --out "$OUT/7b" --tiny --no-aft --no-trl 2> "$OUT/train_7b.log" || status=$?
else
  timeout 200 "$PY" benchmarks/train_gpu.py --tokenizer "$TOK" --out "$OUT/7b" --shape 7b --grad-checkpointing --no-aft \
    --docs 600 --steps 8 --warmup 3 --timeout 190 --budget-s 150 2> "$OUT/train_7b.log" || status=$?
fi
grep -E "^(msm|step|ERROR|skipping)" "$OUT/train_7b.log" | tail -12 >&2 || true
echo "== 3. hf generation, am-eval's access pattern"
timeout 150 "$PY" benchmarks/gen_gpu.py --tokenizer "$TOK" --out "$OUT/gen" $TINY 2> "$OUT/gen.log" || status=$?
tail -8 "$OUT/gen.log" >&2 || true
echo "gpu_check: $(( $(date +%s) - start )) s, exit $status; details in $OUT (*/summary.json, gen/gen_summary.json, *.log)"
exit $status
