#!/usr/bin/env bash
# GPU check (issues 6 and 7): msm midtrain + msm aft on a ~0.5B model (Qwen2.5-0.5B shapes, random
# init) and TRL's SFTTrainer (packing_strategy="wrapped") back to back on one GPU; prints real
# tokens/s, MFU and the ratio. Budget: under 8 minutes on one H100.
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
timeout 450 "$PY" benchmarks/train_gpu.py --tokenizer "$TOK" --out "$OUT" "${EXTRA[@]}" 2> "$OUT/train_gpu.log" || status=$?
grep -E "^(msm|step|ERROR|skipping)" "$OUT/train_gpu.log" | tail -40 >&2 || true
echo "gpu_check: $(( $(date +%s) - start )) s, exit $status; details in $OUT (summary.json, *.jsonl, train_gpu.log)"
exit $status
