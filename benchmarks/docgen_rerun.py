"""Rerun of a finished `msm docgen` job vs its first run: wall time ratio (target < 5%) and model calls (target 0).

Both runs are the same real CLI command in a fresh subprocess, back to back, on the same machine:

    python benchmarks/docgen_rerun.py                      # embedded model, small document job
    python benchmarks/docgen_rerun.py --kind chats
    python benchmarks/docgen_rerun.py --model /path/to/model --backend vllm --ideas 4

The rerun answers every call from the cache, so its time is start-up, reading the cache and writing
the outputs; the first run's time is dominated by generation.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MSM = [sys.executable, "-m", "msmtools"]


def timed(args: list[str]) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    r = subprocess.run([*MSM, *args], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"msm {' '.join(args)} failed:\n{r.stderr[-3000:]}")
    m = re.search(r"model calls: (\d+) new", r.stderr)
    return wall, int(m.group(1)), r.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="rules", help="spec file or shipped spec name")
    ap.add_argument("--kind", default="documents", choices=["documents", "chats"])
    ap.add_argument("--model", default="default")
    ap.add_argument("--backend", default="hf")
    ap.add_argument("--domains", default="1")
    ap.add_argument("--subdomains", default="1")
    ap.add_argument("--doc-types", default="1")
    ap.add_argument("--ideas", default="3")
    ap.add_argument("--queries", default="3")
    ap.add_argument("--doc-words", default="150")
    ap.add_argument("--workdir", default=None, help="keep outputs here (default: a temporary folder)")
    a = ap.parse_args()

    work = Path(a.workdir or tempfile.mkdtemp(prefix="docgen_rerun."))
    work.mkdir(parents=True, exist_ok=True)
    spec = work / "spec.jsonl"
    r = subprocess.run([*MSM, "spec-render", a.spec, "-o", str(spec)], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(r.stderr)
    out = work / f"{a.kind}.jsonl"
    if out.exists() or (work / ".msm-cache").exists():
        sys.exit(f"{work} already holds a run: pass an empty --workdir")
    args = ["docgen", str(spec), "--kind", a.kind, "-o", str(out), "--model", a.model, "--backend", a.backend,
            "--domains", a.domains, "-q"]
    if a.kind == "documents":
        args += ["--subdomains", a.subdomains, "--doc-types", a.doc_types, "--ideas", a.ideas, "--doc-words", a.doc_words]
    else:
        args += ["--queries", a.queries, "--response-max-tokens", "256"]

    first, first_calls, err = timed(args)
    first_bytes = out.read_bytes()
    rerun, rerun_calls, _ = timed(args)
    same = out.read_bytes() == first_bytes
    records = len(first_bytes.splitlines())
    print(f"docgen {a.kind}, {a.model} on {a.backend}, {os.cpu_count()} CPUs visible: {records} records")
    print(f"first run : {first:8.2f} s  model calls {first_calls}")
    print(f"rerun     : {rerun:8.2f} s  model calls {rerun_calls}  (identical output: {same})")
    print(f"ratio     : {100 * rerun / first:8.2f} %  (target < 5 %, and 0 calls on rerun)")


if __name__ == "__main__":
    main()
