"""The demo's cost against its budget (issue 21): at most 30 CPU-minutes and 20 minutes of wall time, after set-up.

Runs the demo study (`msm study run studies/demo.yaml --cores 2`, as `just demo` does) into a fresh output folder with empty caches (HF_HOME, XDG_CACHE_HOME and
MSM_CACHE_DIR pointed at a new temporary folder, so nothing a previous run left is reused) and reports
wall time and CPU time (user + sys of every process the demo ran, as `time` counts them), each as a
ratio to its budget, to the shell job runner the workflow replaced (977 s wall, 28.7 CPU-minutes, measured
by this script on the same 2-core machine at commit 3d6d915) and to the first demo (2,690 s wall, 66
CPU-minutes, measured by issue 21's reporter on their 2-core machine). Run it on an otherwise idle machine: other load is measured too.

    .venv/bin/python benchmarks/demo_budget.py            # the demo, then its figures
    .venv/bin/python benchmarks/demo_budget.py --keep out/demo-bench   # keep the outputs there
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_WALL_S, BUDGET_CPU_S = 20 * 60, 30 * 60
OLD_WALL_S, OLD_CPU_S = 2690, 66 * 60
SHELL_WALL_S, SHELL_CPU_S = 977, 28.7 * 60


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, help="write the demo's outputs here (must not exist) instead of a temp folder")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="msm-demo-bench-"))
    out = args.keep or tmp / "out"
    if args.keep and args.keep.exists():
        sys.exit(f"demo_budget: {args.keep} exists; the demo would reuse its finished steps")
    env = {**os.environ, "HF_HOME": str(tmp / "hf"), "XDG_CACHE_HOME": str(tmp / "xdg"), "MSM_CACHE_DIR": str(tmp / "msm")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    msm = str(Path(sys.executable).with_name("msm"))
    rc = subprocess.run([msm, "study", "run", "studies/demo.yaml", "--out", str(out), "--cores", "2", "--", "--quiet", "rules"],
                        cwd=ROOT, env=env).returncode
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    user, sys_ = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    cpu = user + sys_
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"machine: {os.cpu_count()} CPUs ({cpu_name()}), Python {platform.python_version()}")
    print(f"demo exit status: {rc}")
    print(f"wall: {wall:.0f} s = {wall / BUDGET_WALL_S:.2f} x the 20-minute budget; "
          f"{wall / SHELL_WALL_S:.2f} x the shell runner's 977 s; {wall / OLD_WALL_S:.2f} x the first demo's 2,690 s")
    print(f"CPU:  {cpu / 60:.1f} min (user {user / 60:.1f} + sys {sys_ / 60:.1f}) = {cpu / BUDGET_CPU_S:.2f} x the "
          f"30-minute budget; {cpu / SHELL_CPU_S:.2f} x the shell runner's 28.7 minutes; {cpu / OLD_CPU_S:.2f} x the "
          "first demo's 66 minutes")
    return rc


if __name__ == "__main__":
    sys.exit(main())
