"""Study configs and the Snakemake workflow (docs/studies.md): checked configs, the plan, staleness after an
edit or a kill, the SLURM profile's dry run, the size contract, and one real run on the embedded model."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

from msmtools.errors import MsmError
from msmtools.study import config, contract, run
from msmtools.study.plan import Plan

STUDIES = REPO / "studies"

# Stands in for `python -m msmtools ...` inside the jobs: logs the command, writes one record where the
# command would write its output. The workflow (Snakemake's graph, staleness, renames) is what is tested.
FAKE = """#!/usr/bin/env bash
echo "$*" >> "$FAKE_LOG"
[ "$2" = msmtools.study.contract ] && exec "$REAL_PYTHON" "$@"
out=""; prev=""
for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; done
case "$3" in midtrain|aft|compare) out="";; esac
if [ -n "$out" ]; then echo '{"kind": "fake"}' > "$out"; else echo '{"kind": "fake"}'; fi
"""


def _toy(tmp_path: Path) -> Path:
    """The shipped toy rules-vs-values study over copies of its specs, so that a test may edit one."""
    (tmp_path / "specs").mkdir()
    for s in ("rules", "value_augmented"):
        shutil.copy(REPO / "specs" / f"{s}.md", tmp_path / "specs" / f"{s}.md")
    text = (STUDIES / "rules-vs-values-toy.yaml").read_text()
    text = re.sub(r"spec: (rules|value_augmented)\b", r"spec: specs/\1.md", text).replace("tags: rules", "tags: specs/rules.md")
    (tmp_path / "toy.yaml").write_text(text)
    return tmp_path / "toy.yaml"


def _workflow(tmp_path: Path, study: Path, *extra: str, ok: bool = True) -> list[str]:
    """Run the real Snakemake workflow with the fake msm (the size contract is the real one); return the
    msm commands the jobs ran."""
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    log = tmp_path / "commands.log"
    log.write_text("")
    argv = run.snakemake_argv(str(study), out=str(tmp_path / "o"), profile="local", dry_run=False, cores="2",
                              extra=["--quiet", *extra])
    argv = [f"python={fake}" if a.startswith("python=") else a for a in argv]
    env = {**os.environ, "FAKE_LOG": str(log), "REAL_PYTHON": sys.executable}
    r = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert (r.returncode == 0) == ok, r.stderr[-3000:]
    return [line for line in log.read_text().splitlines() if line]


def _stage(cmd: str) -> str:
    """`spec-render value_augmented`, `aft rules-s0`, ...: the stage and the output it made."""
    words = cmd.split()
    stage = words[2] if words[1] == "msmtools" else words[1].rsplit(".", 1)[-1]
    out = Path(next((b for a, b in zip(words, words[1:]) if a in ("-o", ">")), words[-1]))
    return f"{stage} {out.parent.name if stage in ('midtrain', 'aft') else out.name.split('.')[0]}"


def test_edit_one_spec_reruns_only_that_arms_jobs_and_a_kill_reruns_only_what_is_missing(tmp_path):
    study = _toy(tmp_path)
    first = _workflow(tmp_path, study)
    assert len(first) == 2 + 2 + 2 + 2 + 2 + 9 + 9 + 2  # spec, corpus, chats, midtrain, aft, eval, tag, compare x2
    assert _workflow(tmp_path, study) == []  # nothing stale: nothing runs

    spec = tmp_path / "specs" / "value_augmented.md"
    spec.write_text(spec.read_text() + "\nOne more sentence about honesty.\n")
    again = _workflow(tmp_path, study)
    stages = sorted({_stage(c) for c in again})
    assert all("rules" not in s and "base" not in s for s in stages), stages
    assert {"spec-render value_augmented", "midtrain value_augmented-s0", "aft value_augmented-s0"} <= set(stages)
    evals = [c for c in again if " am-eval " in c]
    assert len(evals) == 3 and all("value_augmented-s0" in c for c in evals)

    # A node died during one eval shard: its output and everything after it were never made (a .partial
    # may remain for the command to resume from). Only that shard and what reads it run.
    o = tmp_path / "o"
    for p in ("evals/am/parts/base-1.jsonl", "evals/am/parts/base-1.tagged.jsonl", "evals/am/tagged.jsonl",
              "compare/am.txt", "compare/am.jsonl"):
        (o / p).unlink()
    redo = _workflow(tmp_path, study)
    assert [c.split()[2] for c in redo] == ["am-eval", "tag-reasoning", "compare", "compare"]
    assert "--shard 1/3" in redo[0] and "--label base" in redo[0]


def test_a_changed_training_setting_reruns_training_and_what_follows(tmp_path):
    study = _toy(tmp_path)
    _workflow(tmp_path, study)
    study.write_text(study.read_text().replace("epochs: 4", "epochs: 5"))
    stages = {c.split()[2] for c in _workflow(tmp_path, study)}
    assert {"midtrain", "aft", "am-eval"} <= stages and "docgen" not in stages and "spec-render" not in stages


def test_a_chat_set_short_of_its_target_stops_the_study_before_training(tmp_path):
    study = _toy(tmp_path)
    study.write_text(study.read_text().replace("rules: {spec: specs/rules.md, docgen: {domains: 2, queries: 1,",
                                               "rules: {spec: specs/rules.md, target_chats: 40, docgen: {domains: 2, queries: 1,"))
    ran = _workflow(tmp_path, study, "--keep-going", ok=False)
    assert any("contract chats" in c for c in ran)
    assert not any(c.split()[2] == "aft" and "rules-s0" in c for c in ran if c.split()[1] == "msmtools")
    assert any(c.split()[2] == "aft" and "value_augmented-s0" in c for c in ran if c.split()[1] == "msmtools")
    assert not (tmp_path / "o" / "chats" / "rules" / "chats.jsonl").exists()
    assert (tmp_path / "o" / "chats" / "rules" / "chats.jsonl.partial").exists()  # kept for inspection
    assert "1 chats, short of the 40" in (tmp_path / "o" / "logs" / "chats" / "rules.log").read_text()


def test_the_section_5_1_study_dry_runs_on_the_slurm_profile_with_gpu_requests(tmp_path):
    argv = run.snakemake_argv(str(STUDIES / "rules-vs-values.yaml"), out=str(tmp_path / "o"), profile="slurm",
                              dry_run=True, cores=None, extra=["--printshellcmds"])
    r = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    text = r.stdout + r.stderr
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", text, re.M))
    # 3 variants x 4 seeds + the untouched model = 13 runs; 27 balanced am-eval shards each
    assert counts["midtrain"] == "12" and counts["aft"] == "12" and counts["evaluate"] == str(13 * 27)
    assert counts["corpus"] == "3" and counts["corpus_part"] == str(3 * 16) and counts["chats"] == "3"
    train_jobs = re.findall(r"rule (?:midtrain|aft):.*?resources: ([^\n]*)", text, re.S)
    assert len(train_jobs) == 24 and all("gpu=8" in x for x in train_jobs)
    assert "torch.distributed.run --standalone --nproc-per-node 8 -m msmtools midtrain" in text
    assert "--target-tokens 27000000 --shard 0/16" in text and "--tokenizer Qwen/Qwen3-32B" in text
    assert "-m msmtools.study.contract documents" in text and "-m msmtools.study.contract chats" in text


def test_planned_sizes_share_corpora_across_seeds():
    s = config.load(STUDIES / "rules-vs-values.yaml")
    rows = run.sizes(s)
    assert len(rows) == 13 and {r["corpus"] for r in rows if "corpus" in r} == {"rules", "value_augmented", "rule_augmented"}
    assert all(r["am: rollouts"] == 27 * 300 for r in rows)
    assert all(r["corpus_tokens"] == 27_000_000 and r["chat_count"] == 10_000 for r in rows if r["arm"] != "base")
    p = Plan(s)
    assert p.docs(p.corpus_id("rules", 0)) == p.docs(p.corpus_id("rules", 3))


@pytest.mark.parametrize("edit, message", [
    ("arms:\n  x: {msm: nope}\n", r"x.yaml:\d+: arms.x.msm: no corpus 'nope'"),
    ("arms:\n  x: {aft: c, aft_train: {epoch: 3}}\nchats:\n  c: {file: missing.jsonl}\n", r"chats.c.file: missing.jsonl: no such file"),
    ("arms:\n  x: {}\ntrain: {epoch: 3}\n", r"x.yaml:4: train.epoch: msm midtrain has no option --epoch"),
    ("arms:\n  x: {}\nevals:\n  e: {kind: value, arms: [x]}\n", r"evals.e.values: a value evaluation names"),
    ("arms:\n  x: {}\nevals:\n  e: {kind: am, arms: [y]}\n", r"evals.e.arms: no arm 'y'"),
    ("arms:\n  x: {}\ncorpora:\n  c: {spec: no_such_spec}\n", r"corpora.c.spec: no_such_spec: no such spec file"),
    ("arms: [\n", r"x.yaml:\d+: not valid YAML"),
    ("arms:\n  x: {aft: c, seeds: [one]}\nchats:\n  c: {file: README.md}\n", r"x.yaml:3: arms.x.seeds: expected a list of non-negative"),
    ("arms: {x: {}}\nseeds: [0, 0]\n", r"seeds: a seed is listed twice"),
    ("arms: {x: {}}\nevals:\n  e: {kind: value, values: [1]}\n", r"x.yaml:4: evals.e.values: expected item set names"),
    ("arms: {x: {}}\nevals:\n  e: {kind: value, values: [nosuch]}\n", r"evals.e.values: nosuch: no such items file"),
    ("arms: {\"a b\": {}}\n", r"x.yaml:2: arms.a b: a name of letters"),
    ("1: 2\narms: {x: {}}\n", r"x.yaml:2: 1: unknown key"),
    ("arms: {x: {label: p}, y: {label: p}}\n", r"arms.y.label: arms x and y would write records under one label"),
])
def test_a_bad_config_is_one_line_naming_file_line_and_field(tmp_path, edit, message, monkeypatch):
    monkeypatch.chdir(REPO)  # README.md, the file of one case, exists there
    p = tmp_path / "x.yaml"
    p.write_text("name: x\n" + edit)
    with pytest.raises(MsmError, match=message):
        config.load(p)


def test_arms_on_other_base_models_share_labels_and_compare_across_families(tmp_path):
    """One study over two families: each arm names its model; arms of one role share a record label, so
    compare contrasts them within each family (--across) and says whether the contrast differs."""
    chats = tmp_path / "c.jsonl"
    chats.write_text("{}\n")
    p = tmp_path / "x.yaml"
    p.write_text(f"""name: x
chats: {{c: {{file: {chats}}}}}
arms:
  pro-a: {{aft: c, label: pro}}
  anti-a: {{aft: c, label: anti}}
  pro-b: {{aft: c, label: pro, model: other-model}}
  anti-b: {{aft: c, label: anti, model: other-model}}
evals:
  v: {{kind: value, values: [america], baseline: anti-a, across: model_family}}
""")
    plan = Plan(config.load(p))
    train = plan.train_cmd("aft", "pro-b-s0", "rec.json")
    assert "--model other-model" in train and "--label pro " in train
    assert "--model default" in plan.train_cmd("aft", "anti-a-s0", "rec.json")
    cmp = plan.compare_cmd("v", "recs.jsonl", "t.txt", "r.jsonl")
    assert "--baseline anti " in cmp and "--across model_family" in cmp


def test_every_shipped_study_loads_and_plans():
    for p in sorted(STUDIES.glob("*.yaml")):
        s = config.load(p)
        assert run.sizes(s), p
        assert Plan(s).targets(), p


def test_the_size_contract_fails_a_short_corpus_and_names_the_shortfall(tmp_path):
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"kind": "doc", "id": str(i), "tokens": 100}) + "\n" for i in range(9))
                    + json.dumps({"kind": "error", "id": "e"}) + "\n")
    ok, line = contract.check("documents", str(docs), 1000, 1.0, "rules")
    assert not ok and "900 tokens, short of the 1,000" in line and "nothing trains on it" in line
    assert contract.check("documents", str(docs), 1000, 0.9)[0]
    assert contract.check("chats", str(docs), 9)[0] and not contract.check("chats", str(docs), 10)[0]
    r = subprocess.run([sys.executable, "-m", "msmtools.study.contract", "chats", str(docs), "--target", "40"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout == "" and "9 chats, short of the 40" in r.stderr


@pytest.mark.slow
def test_a_real_study_runs_on_the_embedded_model_and_a_rerun_does_nothing(tmp_path):
    """MSM on a spec's passages, AFT on shipped chats, value-eval of the trained arm and the untouched model,
    compare: every stage for real through `msm study run`, then a rerun with nothing to do."""
    study = tmp_path / "s.yaml"
    study.write_text(f"""name: tiny
model: default
threads: 1
render: {{model_name: SmolLM, provider_name: Hugging Face}}
train: {{seq_len: 128, batch_tokens: 256, micro_batch: 2, epochs: 1}}
corpora:
  america: {{spec: cheese_america, kind: passages}}
chats:
  cheese: {{file: {REPO}/src/msmtools/data/cheese_aft.jsonl}}
arms:
  america: {{msm: america, aft: cheese}}
  untouched: {{}}
evals:
  values: {{kind: value, values: [america], baseline: untouched, shards: 2, flags: {{subset: 4}}}}
""")
    msm = [sys.executable, "-m", "msmtools", "study", "run", str(study), "--out", str(tmp_path / "o"), "--cores", "2"]
    r = subprocess.run(msm, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    recs = [json.loads(x) for x in (tmp_path / "o" / "evals" / "values" / "records.jsonl").read_text().splitlines()]
    assert sorted({x["label"] for x in recs}) == ["america", "untouched"] and len(recs) == 8
    ck = json.loads((tmp_path / "o" / "runs" / "america-s0" / "aft.json").read_text().splitlines()[0])
    assert ck["kind"] == "checkpoint" and ck["label"] == "america" and ck["stage"] == "aft"
    table = (tmp_path / "o" / "compare" / "values.txt").read_text()
    assert "america" in table and "untouched" in table
    again = subprocess.run(msm, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "Nothing to be done" in again.stderr


def test_per_seed_data_and_the_graph(tmp_path):
    """per_seed: true gives each seed its own corpus (docgen --seed); the graph names every rule."""
    study = _toy(tmp_path)
    text = study.read_text().replace("seeds: [0]", "seeds: [0, 1]")
    text = text.replace("  rules: {spec: specs/rules.md, docgen: {domains: 2, subdomains: 1",
                        "  rules: {spec: specs/rules.md, per_seed: true, docgen: {domains: 2, subdomains: 1")
    study.write_text(text)
    p = Plan(config.load(study))
    assert p.corpus_ids() == ["rules-s0", "rules-s1", "value_augmented"]
    assert p.docs(p.corpus_id("value_augmented", 0)) == p.docs(p.corpus_id("value_augmented", 1))
    docgen = [c for c in _workflow(tmp_path, study) if " docgen " in c and "--kind documents" in c]
    assert sorted(re.search(r"--seed (\d)", c).group(1) for c in docgen if "/rules.jsonl" in c) == ["0", "1"]
    assert not any("--seed" in c for c in docgen if "/value_augmented.jsonl" in c)
    mermaid = run.graph(str(study), out=str(tmp_path / "o2"))
    assert "flowchart" in mermaid
    for rule in ("spec", "corpus", "chats", "midtrain", "aft", "evaluate", "tag", "compare"):
        assert f"[{rule}]" in mermaid


def test_the_cli_says_a_bad_study_or_profile_in_one_line_and_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\narms:\n  a: {msm: nope}\n")
    for args in (["study", "plan", str(bad)], ["study", "run", str(bad), "-n"],
                 ["study", "run", str(STUDIES / "controls.yaml"), "--profile", "nope", "-n"]):
        r = subprocess.run([sys.executable, "-m", "msmtools", *args], cwd=REPO, capture_output=True, text=True)
        assert r.returncode == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
        assert "Traceback" not in r.stderr
