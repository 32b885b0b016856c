"""Run a study through Snakemake, and say before it runs what it will make (jobs and sizes).

`msm study run` is a thin launcher: the graph is `Snakefile` beside this module, its jobs and commands
come from `plan.Plan`, and executors (local, SLURM) come from Snakemake profiles. Any argument after
`--` goes to Snakemake unchanged (`--keep-going`, `--forcerun aft`, `--latency-wait 60`, ...).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from ..errors import MsmError
from .config import Study, load
from .plan import Plan

HERE = Path(__file__).resolve().parent
SNAKEFILE = HERE / "Snakefile"
PROFILES = HERE / "profiles"


def profile_dir(name: str) -> Path:
    """A shipped profile by name (`local`, `slurm`), else a folder holding a Snakemake config.yaml."""
    p = PROFILES / name if (PROFILES / name).is_dir() else Path(name)
    if not (p / "config.yaml").is_file():
        shipped = ", ".join(sorted(d.name for d in PROFILES.iterdir() if d.is_dir()))
        raise MsmError(f"--profile {name}: not a shipped profile ({shipped}) nor a folder with a config.yaml")
    return p


def snakemake_argv(study_path: str, *, out: str | None, profile: str | None, dry_run: bool, cores: str | None,
                   extra: list[str]) -> list[str]:
    config = [f"study={Path(study_path).resolve()}", f"python={sys.executable}"]
    if out:
        config.append(f"out={out}")
    argv = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--config", *config]
    argv += ["--profile", str(profile_dir(profile or "local"))]
    if cores:
        argv += ["--cores", cores]
    if dry_run:
        argv += ["--dry-run"]
    return argv + extra


def run(study_path: str, *, out: str | None = None, profile: str | None = None, dry_run: bool = False,
        cores: str | None = None, extra: list[str] | None = None) -> int:
    study = load(study_path, out=out)  # a bad config or profile fails here, in one line, before anything prints
    argv = snakemake_argv(study_path, out=out, profile=profile, dry_run=dry_run, cores=cores, extra=extra or [])
    if dry_run:
        print(render_sizes(study), file=sys.stderr)
    return subprocess.run(argv).returncode


def graph(study_path: str, out: str | None = None, jobs: bool = False) -> str:
    """The rule graph (or, with jobs, every job) as a mermaid-js flowchart, for the docs."""
    load(study_path, out=out)
    argv = snakemake_argv(study_path, out=out, profile=None, dry_run=False, cores=None,
                          extra=["--dag" if jobs else "--rulegraph", "mermaid-js", "--quiet", "all"])
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise MsmError("snakemake did not draw the graph within 600 s") from None
    if res.returncode:
        raise MsmError(f"snakemake could not draw the graph: {res.stderr.strip().splitlines()[-1:]}")
    return res.stdout


# -- planned sizes -------------------------------------------------------------------------------
def _conditions(flags: dict[str, Any]) -> int:
    from ..am import conditions

    spec = flags.get("conditions", "paper27")
    specs = spec if isinstance(spec, list) else [spec]
    return len(conditions.select([str(s) for s in specs]))


def _items(values: tuple[str, ...], flags: dict[str, Any]) -> int:
    from ..valueeval import items

    got = items.load(list(values))
    n = flags.get("subset")
    if n:
        by_value: dict[str, int] = {}
        for it in got:
            by_value[it.value] = by_value.get(it.value, 0) + 1
        return sum(min(int(n), k) for k in by_value.values())
    return len(got)


def _doc_plan(study: Study, flags: dict[str, Any], target: int | None):
    """docgen's own sizing of a corpus (the numbers `msm docgen --preview` starts from)."""
    from ..docgen import sizing

    words = flags.get("doc-words") or (150 if study.generator.get("model", "default") == "default" else 500)
    given = {k.replace("-", "_"): flags.get(k) for k in ("domains", "subdomains", "doc-types", "ideas")}
    return sizing.size_documents(given, doc_words=int(words), target=target)


def _count_lines(path: str) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def sizes(study: Study) -> list[dict[str, Any]]:
    """One row per run (arm x seed): what it trains on and what its evaluations draw."""
    p = Plan(study)
    rows = []
    for name, r in p.runs.items():
        a = r.arm
        row: dict[str, Any] = {"run": name, "arm": a.name, "seed": r.seed}
        if a.msm:
            c = study.corpora[a.msm]
            row["corpus"] = p.corpus_id(a.msm, r.seed)
            if c.kind == "documents":
                plan = _doc_plan(study, c.flags, c.target_tokens)
                row["corpus_documents"], row["corpus_tokens"] = plan.documents, c.target_tokens or plan.tokens
            else:
                row["corpus_tokens"] = f"{c.kind} (spec's own)"
            row["corpus_shards"] = c.shards
        if a.aft:
            ch = study.chats[a.aft]
            row["chats"] = p.chats_id(a.aft, r.seed)
            if ch.file:
                row["chat_count"] = _count_lines(ch.file)
            else:
                from ..docgen import sizing

                got = sizing.size_chats(ch.flags.get("domains"), ch.flags.get("queries"), ch.target_chats)
                row["chat_count"] = ch.target_chats or got["domains"] * got["queries"]
        for ev in study.evals.values():
            if a.name not in ev.arms:
                continue
            if ev.kind == "am":
                n = _conditions(ev.flags) * int(ev.flags.get("samples", 300))
                row[f"{ev.name}: rollouts"] = n
            else:
                row[f"{ev.name}: value items"] = _items(ev.values, ev.flags)
        rows.append(row)
    return rows


def render_sizes(study: Study) -> str:
    from ..report import table

    rows = sizes(study)
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    fmt = lambda v: "" if v is None else f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)  # noqa: E731
    body = [[fmt(r.get(c)) for c in cols] for r in rows]
    shared = sorted({r["corpus"] for r in rows if "corpus" in r})
    note = (f"study {study.name}: {len(rows)} runs; {len(shared)} corpora shared across seeds"
            if shared else f"study {study.name}: {len(rows)} runs")
    roles = {"generate": "docgen, tag-reasoning", "train": "midtrain, aft", "eval": "am-eval, value-eval"}
    asks = [f"  {role} jobs ({what}): " + ", ".join(f"{k}={v}" for k, v in study.resources[role].items())
            for role, what in roles.items() if study.resources.get(role)]
    return note + "\n" + table(cols, body) + ("\nrequests per job (the study's resources; the profile adds its defaults):\n"
                                               + "\n".join(asks) if asks else "")
