"""A study's jobs: every output path and the `msm` command that makes it, from a checked config.

The Snakefile asks this module for paths and commands and holds no policy of its own, so the same plan
drives the local run, the SLURM run, the dry run and the size table. Layout under the study's `out`:

    specs/NAME.jsonl                      spec-render
    corpora/NAME[-sSEED]/docs.jsonl       docgen (shards in parts/, checked against the size contract)
    chats/NAME[-sSEED]/chats.jsonl        docgen --kind chats (checked against the size contract)
    runs/ARM-sSEED/{midtrain,aft}.json    midtrain, aft (checkpoints beside them)
    evals/EVAL/parts/RUN-SHARD.jsonl      am-eval / value-eval, one job per run and shard
    evals/EVAL/records.jsonl              the parts gathered (tagged.jsonl: with tag-reasoning)
    compare/EVAL.{txt,jsonl}              msm compare
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from .config import Arm, Study, flag_args

PARTIAL = ".partial"  # a command writes here and the job renames it: a killed job leaves no finished-looking file


@dataclass(frozen=True)
class Run:
    """One trained model (arm, seed) or an untouched baseline arm (seed None)."""

    arm: Arm
    seed: int | None

    @property
    def name(self) -> str:
        return self.arm.name if self.seed is None else f"{self.arm.name}-s{self.seed}"


def q(x: object) -> str:
    return shlex.quote(str(x))


class Plan:
    def __init__(self, study: Study, python: str | None = None):
        self.s = study
        self.out = Path(study.out)
        self.python = q(python or sys.executable)
        self.msm = f"{self.python} -m msmtools"
        self.runs = {r.name: r for a in study.arms.values()
                     for r in ([Run(a, s) for s in a.seeds] if a.trained else [Run(a, None)])}

    # -- paths ---------------------------------------------------------------------------------
    def spec(self, path: str) -> str:
        return str(self.out / "specs" / f"{Path(path).stem}.jsonl")

    def corpus_id(self, corpus: str, seed: int | None) -> str:
        return corpus if not self.s.corpora[corpus].per_seed else f"{corpus}-s{seed}"

    def chats_id(self, chats: str, seed: int | None) -> str:
        return chats if not self.s.chats[chats].per_seed else f"{chats}-s{seed}"

    def docs(self, cid: str) -> str:
        return str(self.out / "corpora" / cid / "docs.jsonl")

    def doc_part(self, cid: str, i: int) -> str:
        return str(self.out / "corpora" / cid / "parts" / f"{i}.jsonl")

    def chats(self, cid: str) -> str:
        c = self.s.chats[self._base(cid, self.s.chats)]
        return c.file if c.file else str(self.out / "chats" / cid / "chats.jsonl")

    def run_dir(self, run: str) -> Path:
        return self.out / "runs" / run

    def checkpoint(self, run: str) -> str | None:
        """The record of a run's last training stage (None for an untouched arm)."""
        r = self.runs[run]
        if not r.arm.trained:
            return None
        return str(self.run_dir(run) / ("aft.json" if r.arm.aft else "midtrain.json"))

    def stage_record(self, run: str, stage: str) -> str:
        return str(self.run_dir(run) / f"{stage}.json")

    def eval_runs(self, ev: str) -> list[str]:
        return [n for n, r in self.runs.items() if r.arm.name in self.s.evals[ev].arms]

    def eval_part(self, ev: str, run: str, i: int, tagged: bool = False) -> str:
        return str(self.out / "evals" / ev / "parts" / f"{run}-{i}{'.tagged' if tagged else ''}.jsonl")

    def eval_parts(self, ev: str, tagged: bool = False) -> list[str]:
        return [self.eval_part(ev, run, i, tagged) for run in self.eval_runs(ev) for i in range(self.s.evals[ev].shards)]

    def eval_records(self, ev: str) -> str:
        return str(self.out / "evals" / ev / ("tagged.jsonl" if self.s.evals[ev].tags else "records.jsonl"))

    def compare(self, ev: str, ext: str) -> str:
        return str(self.out / "compare" / f"{ev}.{ext}")

    def report(self) -> str:
        return str(self.out / "report.txt")

    def targets(self) -> list[str]:
        t = [self.compare(e, x) for e in self.s.evals for x in ("txt", "jsonl")]
        return t + ([self.report()] if self.s.report else [])

    # -- the inverse maps the Snakefile's wildcards use -------------------------------------------
    @staticmethod
    def _base(cid: str, table: dict) -> str:
        if cid in table:
            return cid
        name, _, seed = cid.rpartition("-s")
        if name in table and seed.isdigit():
            return name
        raise KeyError(cid)

    def corpus_ids(self) -> list[str]:
        return sorted({self.corpus_id(r.arm.msm, r.seed) for r in self.runs.values() if r.arm.msm})

    def chat_ids(self) -> list[str]:
        return sorted({self.chats_id(r.arm.aft, r.seed) for r in self.runs.values()
                       if r.arm.aft and self.s.chats[r.arm.aft].spec})

    def spec_paths(self) -> list[str]:
        paths = {c.spec for c in self.s.corpora.values()} | {c.spec for c in self.s.chats.values() if c.spec}
        paths |= {e.tags for e in self.s.evals.values() if e.tags}
        return sorted(paths)

    def spec_source(self, stem: str) -> str:
        return next(p for p in self.spec_paths() if Path(p).stem == stem)

    # -- commands ------------------------------------------------------------------------------
    def _env(self) -> str:
        n = self.s.threads
        return f"OMP_NUM_THREADS={n} MKL_NUM_THREADS={n} " if n else ""

    def _finish(self, cmd: str, output: str, check: str = "") -> str:
        """Write to OUTPUT.partial, check it if asked, then rename: the output exists only when whole."""
        tmp = q(output + PARTIAL)
        return f"{cmd} && {check.replace('@', tmp)}{' && ' if check else ''}mv {tmp} {q(output)}"

    def _contract(self, kind: str, target: int | None, name: str) -> str:
        """The size check between generation and the rename (`@` is the generated file); none without a target."""
        if not target:
            return ""
        return (f"{self.python} -m msmtools.study.contract {kind} @ "
                f"--target {target} --min-fraction {self.s.min_fraction} --name {q(name)}")

    def spec_cmd(self, stem: str, output: str) -> str:
        src = self.spec_source(stem)
        args = " ".join(q(a) for a in ["--tokenizer", self.s.model, *flag_args(self.s.render)])
        return self._finish(f"{self.msm} spec-render {q(src)} {args} -q -o {q(output + PARTIAL)}", output)

    def _docgen(self, spec: str, kind: str, flags: dict, seed: int | None) -> str:
        args = ["--kind", kind, "--tokenizer", self.s.model]
        if kind != "passages":
            args += flag_args(self.s.generator) + ["--cache", str(self.out / "cache")]
        if seed is not None:
            args += ["--seed", str(seed)]
        args += flag_args(flags)
        return f"{self._env()}{self.msm} docgen {q(self.spec(spec))} {' '.join(q(a) for a in args)}"

    def corpus_of(self, cid: str):
        """(the corpus, its seed or None) of a corpus id (`NAME`, or `NAME-sSEED` for a per-seed corpus)."""
        return self._of(cid, self.s.corpora)

    def _of(self, cid: str, table: dict):
        c = table[self._base(cid, table)]
        return c, (int(cid.rpartition("-s")[2]) if c.per_seed else None)

    def doc_part_cmd(self, cid: str, i: int, output: str) -> str:
        c, seed = self.corpus_of(cid)
        extra = f" --target-tokens {c.target_tokens}" if c.target_tokens else ""
        return self._finish(f"{self._docgen(c.spec, c.kind, c.flags, seed)}{extra} --shard {i}/{c.shards} "
                            f"-q -o {q(output + PARTIAL)}", output)

    def docs_cmd(self, cid: str, output: str) -> str:
        """The whole corpus: with shards, an unsharded pass over the shared cache (no model calls), which
        also token-matches to the target; then the size contract."""
        c, seed = self.corpus_of(cid)
        extra = f" --target-tokens {c.target_tokens}" if c.target_tokens else ""
        return self._finish(f"{self._docgen(c.spec, c.kind, c.flags, seed)}{extra} -q -o {q(output + PARTIAL)}",
                            output, self._contract("documents", c.target_tokens, cid))

    def chats_cmd(self, cid: str, output: str) -> str:
        c, seed = self._of(cid, self.s.chats)
        extra = f" --target-chats {c.target_chats}" if c.target_chats else ""
        return self._finish(f"{self._docgen(c.spec, 'chats', c.flags, seed)}{extra} -q -o {q(output + PARTIAL)}",
                            output, self._contract("chats", c.target_chats, cid))

    def midtrain_input(self, run: str) -> str:
        r = self.runs[run]
        return self.docs(self.corpus_id(r.arm.msm, r.seed))

    def aft_inputs(self, run: str) -> list[str]:
        r = self.runs[run]
        ins = [self.chats(self.chats_id(r.arm.aft, r.seed))]
        return ins + ([str(self.run_dir(run) / "midtrain.json")] if r.arm.msm else [])

    def train_cmd(self, stage: str, run: str, output: str) -> str:
        r = self.runs[run]
        d = self.run_dir(run)
        model = r.arm.model or self.s.model
        if stage == "midtrain":
            src, label, flags = self.midtrain_input(run), f"{r.arm.record_label}-msm", r.arm.msm_flags
            start = ["--model", model]
        else:
            src, label, flags = self.aft_inputs(run)[0], r.arm.record_label, r.arm.aft_flags
            start = ["--from", str(d / "midtrain.json")] if r.arm.msm else ["--model", model]
        # Snakemake runs this job only when its record is missing or stale, so a finished folder is stale (or
        # orphaned by a lost record) and goes; an interrupted run's state resumes, or starts over when it was
        # saved for other data or settings (--restart-changed).
        args = [src, *start, "--seed", str(r.seed), "--label", label, *flag_args(flags), "--resume", "--restart-changed",
                "-o", str(d / stage)]
        gpus = int(self.resources("train").get("gpu") or 0)
        # More than one GPU: one process per GPU under torchrun (msm's training detects it; rank 0 prints the record).
        launch = (f"{self.python} -m torch.distributed.run --standalone --nproc-per-node {gpus} -m msmtools"
                  if gpus > 1 else self.msm)
        return self._finish(f"rm -rf {q(d / stage)} && {self._env()}{launch} {stage} {' '.join(q(a) for a in args)} "
                            f"> {q(output + PARTIAL)}", output)

    def eval_cmd(self, ev: str, run: str, i: int, output: str) -> str:
        e, r = self.s.evals[ev], self.runs[run]
        ck = self.checkpoint(run)
        who = ["--from", ck] if ck else ["--model", r.arm.model or self.s.model, "--label", r.arm.record_label]
        cmd = "am-eval" if e.kind == "am" else "value-eval"
        args = [*e.values, *who, *flag_args(e.flags), "--shard", f"{i}/{e.shards}", "-q"]
        return self._finish(f"{self._env()}{self.msm} {cmd} {' '.join(q(a) for a in args)} -o {q(output + PARTIAL)}",
                            output)

    def tag_cmd(self, ev: str, source: str, output: str) -> str:
        e = self.s.evals[ev]
        args = [source, "--spec", self.spec(e.tags), *flag_args(e.tag_flags), "-q"]
        return self._finish(f"{self._env()}{self.msm} tag-reasoning {' '.join(q(a) for a in args)} "
                            f"-o {q(output + PARTIAL)}", output)

    def compare_cmd(self, ev: str, records: str, table: str, recs: str) -> str:
        e = self.s.evals[ev]
        base = (f"{self.msm} compare {q(records)}"
                + (f" --baseline {q(self.s.arms[e.baseline].record_label)}" if e.baseline else "")
                + (f" --across {q(e.across)}" if e.across else ""))
        plot = f" --plot {q(self.compare(ev, 'png'))}" if e.plot else ""
        return (self._finish(f"{base} --format table{plot} > {q(table + PARTIAL)}", table) + " && "
                + self._finish(f"{base} --format jsonl > {q(recs + PARTIAL)}", recs))

    def report_cmd(self, output: str) -> str:
        cmd = (self.s.report or "").replace("{out}", q(self.out)).replace("{python}", q(sys.executable))
        return self._finish(f"{cmd} > {q(output + PARTIAL)}", output)

    # -- resources -----------------------------------------------------------------------------
    def resources(self, role: str) -> dict:
        return dict(self.s.resources.get(role, {}))
