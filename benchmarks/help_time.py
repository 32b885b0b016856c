"""Wall time of `msm --help` and `msm <cmd> --help` (issue 2: under 0.5 s; heavy imports must stay lazy).

Baseline for the ratio: the bare interpreter start (`python -c pass`), measured back to back.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

MSM = str(Path(sys.executable).with_name("msm"))


def wall(cmd: list[str], reps: int = 7) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t)
    return min(times)  # least disturbed by other load on the machine


def main() -> None:
    base = wall([sys.executable, "-c", "pass"])
    print(f"python -c pass           {base:.3f} s")
    import typer.main

    from msmtools.cli import app

    cmds = list(typer.main.get_command(app).commands)
    worst = 0.0
    for args in [["--help"]] + [[c, "--help"] for c in cmds]:
        t = wall([MSM, *args])
        worst = max(worst, t)
        print(f"msm {' '.join(args):<22} {t:.3f} s  ({t / base:.1f}x interpreter start)")
    print(f"worst {worst:.3f} s; target < 0.5 s: {'OK' if worst < 0.5 else 'MISSED'}")


if __name__ == "__main__":
    main()
