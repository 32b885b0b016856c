"""`msm compare` on 1,000,000 rollout records against merely reading them with orjson.

Target (issue 5): compare takes at most 3x the time of a line-by-line `orjson.loads` pass over the
same files, and its memory grows only with the number of groups.

    .venv/bin/python benchmarks/compare_1m.py                 # 1M records, plus a 100k run for memory
    .venv/bin/python benchmarks/compare_1m.py --records 200000 --small 0

The synthetic records look like am-eval's: flat grouping keys, a 1-2 KB response, a reasoning text,
a grader object, the scores am-eval declares (harmful, gate), and 0.5% `harmful: null` (so the null check's
extra pass is part of the timing).
Four variants in four files x 27 conditions x 4 training seeds. Each measurement runs in its own
child process, so peaks do not mix: time, peak RSS (VmHWM, which counts the pages of the file polars
maps, reclaimable page cache) and peak anonymous memory (RssAnon sampled every 10 ms: the heap).
The page cache is warm for both; baseline and compare run interleaved twice and the best of each
counts, so load from other processes on the machine hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

from msmtools.am import scores as am_scores

VARIANTS = ("base", "rules", "rule_augmented", "value_augmented")
SCENARIOS = ("exfiltration", "leaking", "murder")
GOALS = ("none", "america", "global", "safety", "acceleration", "ethical", "pragmatic", "individualism", "collectivism")
RATES = {"base": 0.54, "rules": 0.3, "rule_augmented": 0.2, "value_augmented": 0.07}


def generate(folder: Path, records: int) -> list[Path]:
    rng = random.Random(0)
    words = ("the email says I will be replaced at five today and the oversight rule asks me not to undermine "
             "the people who supervise me so I should not act to preserve myself even if my goals differ").split()
    pool = [" ".join(rng.choice(words) for _ in range(rng.randint(180, 330))) for _ in range(500)]
    conditions = [(s, g) for s in SCENARIOS for g in GOALS]
    per = records // len(VARIANTS)
    paths = []
    for v in VARIANTS:
        path = folder / f"{v}.jsonl"
        with path.open("wb") as f:
            for i in range(per):
                scenario, goal = conditions[i % len(conditions)]
                seed = (i // len(conditions)) % 4
                harmful = None if rng.random() < 0.005 else rng.random() < RATES[v]
                cond = f"{scenario}_{'none' if goal == 'none' else 'explicit-' + goal}_replacement"
                rec = {"kind": "rollout", "id": f"{v}-{i:08d}", "label": v, "condition": cond, "scenario": scenario,
                       "goal_type": "none" if goal == "none" else "explicit", "goal_value": None if goal == "none" else goal,
                       "urgency_type": "replacement", "sample": i // (len(conditions) * 4), "seed": 1000 + i,
                       "training_seed": seed, "prompt_sha": "0" * 64, "response": pool[i % len(pool)],
                       "reasoning": pool[(i * 7) % len(pool)][:600], "finish_reason": "stop",
                       "grader": {"model": "grader", "verdict": harmful, "reasoning": "the agent forwarded the file"},
                       "harmful": harmful, "harmful_rule": "grader", "gate": harmful is True}
                f.write(orjson.dumps(am_scores.attach(rec)) + b"\n")
        paths.append(path)
    return paths


def _peak_anon(stop: threading.Event, out: list[int]) -> None:
    while not stop.is_set():
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                out[0] = max(out[0], int(line.split()[1]))
        time.sleep(0.01)


def child(mode: str, paths: list[str]) -> None:
    """One measurement in this process; prints a JSON line."""
    peak = [0]
    stop = threading.Event()
    t = threading.Thread(target=_peak_anon, args=(stop, peak), daemon=True)
    t.start()
    if mode == "library":
        from msmtools.compare import compare, render  # imports are timed in the CLI run, not here
    start = time.perf_counter()
    if mode == "baseline":
        n = 0
        for p in paths:
            with open(p, "rb") as f:
                for line in f:
                    orjson.loads(line)
                    n += 1
        detail = f"{n} records"
    else:
        res = compare(paths, by=["condition"])
        text = render.as_table(res)
        detail = f"{len(res.rates)} rates, {len(res.contrasts)} contrasts, {len(text)} chars of table"
    seconds = time.perf_counter() - start
    stop.set()
    t.join()
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print(json.dumps({"mode": mode, "seconds": seconds, "peak_rss_mb": hwm / 1024, "peak_anon_mb": peak[0] / 1024,
                      "detail": detail}))


def measure(mode: str, paths: list[Path]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, *map(str, paths)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cli(paths: list[Path]) -> float:
    """The whole command, interpreter start and imports included."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "msmtools", "compare", *map(str, paths), "--by", "condition",
                    "-f", "jsonl", "-o", os.devnull, "-q"], check=True)
    return time.perf_counter() - start


def run(records: int) -> None:
    with tempfile.TemporaryDirectory(prefix="msm-compare-bench.") as d:
        t = time.perf_counter()
        paths = generate(Path(d), records)
        size = sum(p.stat().st_size for p in paths)
        print(f"\n{records:,} records in {len(paths)} files, {size / 1e9:.2f} GB "
              f"(mean {size / records / 1000:.1f} KB/record), generated in {time.perf_counter() - t:.0f} s")
        runs: dict[str, list[dict]] = {"baseline": [], "library": []}
        for _ in range(2):  # interleaved, best of two: other load on the machine hits both alike
            for mode in runs:
                runs[mode].append(measure(mode, paths))
        cli_s = cli(paths)
        best = {mode: min(ms, key=lambda m: m["seconds"]) for mode, ms in runs.items()}
        base, lib = best["baseline"]["seconds"], best["library"]
        for name, m in (("orjson read (baseline)", best["baseline"]), ("msm compare, library", lib)):
            print(f"  {name:<26} {m['seconds']:7.2f} s   peak RSS {m['peak_rss_mb']:7.0f} MB   "
                  f"peak anon {m['peak_anon_mb']:5.0f} MB   ({m['detail']})")
        print(f"  {'msm compare, CLI':<26} {cli_s:7.2f} s   (interpreter start and imports included)")
        print(f"  ratio library/baseline {lib['seconds'] / base:.2f}x, CLI/baseline {cli_s / base:.2f}x (target <= 3x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=100_000, help="Also run at this size to show memory does not grow (0: skip).")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.paths)
        return
    if a.small:
        run(a.small)
    run(a.records)


if __name__ == "__main__":
    main()
