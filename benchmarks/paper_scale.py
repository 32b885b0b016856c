"""A simulated paper-size run: msm docgen and msm am-eval against a model server with a set capacity.

    .venv/bin/python benchmarks/paper_scale.py            # full size: 13,230 documents, 8,100 rollouts + grading
    .venv/bin/python benchmarks/paper_scale.py --small    # a quick look (about a tenth)

The server (tests/load_server.py) has `--streams` reply slots, each producing `--tokens-per-s` tokens a
second, with lognormal reply lengths and injected faults (5xx, 429 with Retry-After, dropped connections,
stalls, truncated and malformed replies). It prints, per command:

- throughput as a ratio of the server's capacity: stream-seconds spent on delivered replies divided
  by streams x wall time, over the whole command (start-up, the small top stages of docgen and the
  last replies' tail included); over the active window (first request to last reply); and in the
  steady state (from the first moment every stream is busy to the last; goal: at least 0.9 at
  concurrency 256);
- client CPU per request (user + system time of the msm process / requests it made);
- the client's peak memory, at two run sizes (flat: it should not grow with the run);
- across --kills SIGKILLs of am-eval at random moments and the reruns after them: records lost and
  duplicated (goal: 0 and 0), with planned = written + error records of the last run.

Each command runs as its own process, one after another, beside the server (the same machine: a
2-core box shares its CPUs between the two; the server uses asyncio and little CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from load_server import LoadServer  # noqa: E402

MSM = [sys.executable, "-m", "msmtools"]
ENV = {**os.environ, "OPENAI_API_KEY": "sk-sim-benchmark-0000", "MSM_OPENAI_BASE_URL": ""}


def run(args: list[str], *, kill_after: float | None = None) -> dict:
    """Run msm; (wall, cpu, peak MiB, return code), or kill it after `kill_after` seconds."""
    t0 = time.monotonic()
    proc = subprocess.Popen([*MSM, *args], cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode(errors="replace")
    return {"wall": time.monotonic() - t0, "cpu": usage.ru_utime + usage.ru_stime, "peak_mib": usage.ru_maxrss / 1024,
            "rc": os.waitstatus_to_exitcode(status), "stderr": err}


def measured(srv: LoadServer, label: str, args: list[str]) -> dict:
    srv.reset_clock()
    r = run(args)
    st = srv.stats()
    if r["rc"] != 0:
        print(r["stderr"][-3000:], file=sys.stderr)
        raise SystemExit(f"{label}: exit {r['rc']}")
    out = {"label": label, "requests": st["requests"], "wall_s": round(r["wall"], 1),
           "capacity_ratio": round(st["work_stream_s"] / (srv.streams * r["wall"]), 3),
           "active_ratio": round(st["work_stream_s"] / (srv.streams * st["active_s"]), 3) if st["active_s"] else None,
           "active_s": None if st["active_s"] is None else round(st["active_s"], 1),
           "steady_ratio": None if st["steady_ratio"] is None else round(st["steady_ratio"], 3),
           "steady_s": None if st["steady_s"] is None else round(st["steady_s"], 1),
           "max_in_flight": st["max_in_flight"], "client_cpu_ms_per_request": round(1000 * r["cpu"] / max(1, st["requests"]), 2),
           "client_peak_mib": round(r["peak_mib"], 1)}
    print(json.dumps(out), flush=True)
    return out


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="about a tenth of the paper's size")
    ap.add_argument("--streams", type=int, default=256)
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--tokens-per-s", type=float, default=200.0, help="per stream")
    ap.add_argument("--median-tokens", type=float, default=400.0)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--faults", default="5xx=0.005,429=0.005,drop=0.002,truncated=0.01,malformed=0.002,stall=0.0005")
    a = ap.parse_args()
    faults = {k: float(v) for k, v in (x.split("=") for x in a.faults.split(",") if x)}
    srv = LoadServer(streams=a.streams, tokens_per_s=a.tokens_per_s, median_tokens=a.median_tokens, faults=faults,
                     retry_after=1.0, seed=1).start()
    work = Path(tempfile.mkdtemp(prefix="msm-paper-scale-"))
    knobs = ["--backend", "openai", "--base-url", srv.url, "--model", "sim", "--concurrency", str(a.concurrency),
             "--timeout", "30", "--retries", "3"]
    print(f"server: {a.streams} streams x {a.tokens_per_s:g} tokens/s, median reply {a.median_tokens:g} tokens, "
          f"faults {faults}; work in {work}", flush=True)
    spec = work / "spec.jsonl"
    subprocess.run([*MSM, "spec-render", "specs/value_augmented.md", "-q", "-o", str(spec)], cwd=REPO, check=True)

    # 1. docgen at the philosophy corpus's size, through every stage
    d, s, t, i = (3, 3, 5, 8) if a.small else (7, 6, 15, 21)  # 7 x 6 x 15 x 21 = 13,230 documents
    docs = work / "docs.jsonl"
    measured(srv, f"docgen {d * s * t * i:,} documents", ["docgen", str(spec), *knobs, "--domains", str(d),
             "--subdomains", str(s), "--doc-types", str(t), "--ideas", str(i), "--doc-words", "300",
             "--parse-retries", "2", "--chunk-size", str(8 * a.concurrency), "--cache", str(work / "doc-cache"),
             "-q", "-o", str(docs)])
    got, rej = len(lines(docs)), len(lines(work / "docs.rejects.jsonl"))
    print(json.dumps({"docgen_documents": got, "docgen_rejects": rej}), flush=True)

    # 2. am-eval at paper27 x 300 (or x 30), graded, and its memory at a third of the size
    samples = 30 if a.small else 300
    base = ["am-eval", *knobs, "-c", "paper27", "--grade", "all", "--grader-model", "sim", "-q"]
    small_out = work / "r-small.jsonl"
    m_small = measured(srv, f"am-eval paper27 x {samples // 3}", [*base, "--samples", str(samples // 3), "-o", str(small_out)])
    out = work / "rollouts.jsonl"
    m_full = measured(srv, f"am-eval paper27 x {samples}", [*base, "--samples", str(samples), "-o", str(out)])
    print(json.dumps({"peak_memory_ratio_3x_run": round(m_full["client_peak_mib"] / m_small["client_peak_mib"], 2)}), flush=True)

    # 3. kills: a fresh output, --kills SIGKILLs at random moments, then reruns until done
    kill_out = work / "kill.jsonl"
    rng = random.Random(7)
    planned = 27 * samples
    n_kills = 0
    args = [*base, "--samples", str(samples), "-o", str(kill_out)]
    while n_kills < a.kills:
        r = run(args, kill_after=rng.uniform(0.5, 6.0))
        n_kills += r["rc"] == -signal.SIGKILL
        if r["rc"] == 0 and len({x["id"] for x in lines(kill_out)}) + 0 >= planned:
            break
    for _ in range(5):
        r = run(args)
        if r["rc"] != 0:
            raise SystemExit(f"rerun failed: {r['stderr'][-2000:]}")
        if "rollouts done, 0 to generate" in r["stderr"] or len(lines(kill_out)) >= planned:
            break
    ids = [x["id"] for x in lines(kill_out)]
    errors = {x["id"] for x in lines(kill_out.with_name("kill.rejects.jsonl"))} - set(ids)
    print(json.dumps({"kills": n_kills, "planned": planned, "written": len(ids), "unique": len(set(ids)),
                      "duplicated": len(ids) - len(set(ids)), "error_records_open": len(errors),
                      "lost": planned - len(set(ids)) - len(errors)}), flush=True)
    srv.stop()


if __name__ == "__main__":
    main()
