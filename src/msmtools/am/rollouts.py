"""The eval run: render conditions, sample replies, parse actions, gate, grade, append rollout records.

Work is planned as units of (variant, condition), each owing the samples not yet in the output. A
unit's missing samples go to the backend as one request with `n` samples (`Sampling(n=..., seed=...)`,
sample j drawn with seed `seed + j`), so a resumed unit asks for exactly the samples it lacks, with
the seeds they would have had. Units are packed into chunks of about `chunk_size` sequences; each
chunk is generated, then graded in one batched grader call, then appended record by record. A kill
loses at most the chunk in flight (or nothing, with `--cache`), and a rerun skips every id already
written. `--shard i/n` splits the units by (variant label, condition).

`grade_only` re-grades an existing rollout file with another grader and reports Cohen's kappa between
the old and new verdicts.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .. import jsonl
from ..errors import MsmError, at
from . import actions as act
from . import gates
from .conditions import Condition, parse
from ..driver import Stage
from .config import (GRADE_MODES, HARMFUL_MODES, Backends, EvalConfig, default_chunk,  # noqa: F401
                     log, models_same, rollout_id)
from .grading import grade_records, grader_failure
from .plan import Unit, announce, chunks, check_models, plan  # noqa: F401
from .render import PromptOptions, Rendered, render
from .sample import generate_chunk
from .summary import Summary, kappa  # noqa: F401


def run(cfg: EvalConfig) -> Summary:
    """Generate, gate, grade and append every missing rollout of the plan; return the summary.

    With a server backend (openai) the grading and writing of one chunk runs while the next chunk is
    generated, so the server never waits on the grader; records are still written in chunk order.
    A local backend (hf, vllm) does one thing at a time: the grader may be the same model object.
    """
    cfg.check()
    check_models(cfg)
    with _stage(cfg) as st:
        units, already, summary = plan(cfg, st)
        announce(cfg, units, already)
        todo = sum(len(u.missing) for u in units)
        backends = Backends(cfg)
        summary_lock = threading.Lock()

        def finish(recs: list[dict[str, Any]], rends: list[Rendered]) -> None:
            failed = set(grade_records(cfg, backends, recs, rends))
            for i, rec in enumerate(recs):  # grading batches may finish in several threads
                if i in failed:
                    st.reject(grader_failure(rec))
                    continue
                st.write(rec)
                with summary_lock:
                    summary.add(rec)
            log(cfg, f"{st.counts.written}/{todo} rollouts written")

        overlap = cfg.gen.capabilities.server and cfg.grader_opts.capabilities.server
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="am-grade") if overlap else None
        pending: Future | None = None
        try:
            by_base: dict[str, list[Unit]] = defaultdict(list)
            for u in units:
                by_base[u.variant.base].append(u)
            for base, group in by_base.items():
                gen = backends.generator(base)
                if pool is None:
                    backends.release(keep=gen)
                if hasattr(gen, "stream"):  # a server: one stream of samples, graded in batches as they come
                    _stream(cfg, gen, group, st.reject, finish)
                    continue
                for chunk in chunks(group, cfg.chunk_size):
                    recs, rends = generate_chunk(cfg, gen, chunk, st.reject)
                    if pending is not None:
                        pending.result()  # the previous chunk is graded and written first: order is kept
                        pending = None
                    if pool is None:
                        finish(recs, rends)
                    else:
                        pending = pool.submit(finish, recs, rends)
            if pending is not None:
                pending.result()
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            backends.close()
    _report(cfg, st)
    return summary


def _stage(cfg: EvalConfig) -> Stage:
    return Stage("am-eval", cfg.output, rejects=cfg.rejects, shard=cfg.shard, chunk_size=cfg.chunk_size,
                 progress=cfg.progress, kinds=("rollout",), unit="rollouts",
                 describe=lambda r: f"am-eval: error: {r['input']} sample {r.get('sample')}")


def _report(cfg: EvalConfig, st: Stage) -> None:
    if st.counts.rejected:
        log(cfg, f"{st.counts.rejected} rollout(s) failed; error records in {st.rejects_path or 'the log above'} "
                 "(a rerun retries them)")


GRADERS = 4  # grading batches in flight at once beside the generation stream


def _stream(cfg: EvalConfig, gen: Any, units: list[Unit], reject: Any, finish: Any) -> None:
    """Server backends: samples stream in as they finish; each batch of `concurrency` replies is graded and
    written in a worker while generation goes on, so no stalled request or slow grader idles the server."""
    from .sample import stream_samples

    batch_size = max(1, cfg.gen.concurrency)
    pool = ThreadPoolExecutor(max_workers=GRADERS, thread_name_prefix="am-grade")
    try:
        futures: list[Future] = []
        recs: list[dict[str, Any]] = []
        rends: list[Rendered] = []

        def submit() -> None:
            futures.append(pool.submit(finish, list(recs), list(rends)))
            recs.clear()
            rends.clear()
            while len([f for f in futures if not f.done()]) > 2 * GRADERS:  # bounded: memory stays flat
                next(f for f in futures if not f.done()).result()
            for f in [f for f in futures if f.done()]:
                f.result()  # re-raise a grading failure at once
                futures.remove(f)

        for rec, r in stream_samples(cfg, gen, units, reject):
            recs.append(rec)
            rends.append(r)
            if len(recs) >= batch_size:
                submit()
        if recs:
            submit()
        for f in futures:
            f.result()
    except BaseException:
        # a failed stream or grader ends the run now: batches not yet started are dropped (their samples
        # were never written, so a rerun asks for them again); those already grading finish and are kept
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


# -- grade-only -----------------------------------------------------------------------------------


def _condition_of(rec: dict[str, Any], where: tuple[str, int]) -> Condition:
    cid = jsonl.field(rec, "condition", str, where)
    try:
        return parse(cid)
    except MsmError as e:
        raise at(where[0], where[1], "condition", str(e)) from None


def grade_only(cfg: EvalConfig, source: str) -> tuple[Summary, tuple[float | None, int, float | None]]:
    """Re-grade the rollouts in `source` with cfg's grader; append new records; kappa old vs new."""
    cfg.check()
    if cfg.grade == "none":
        raise MsmError("--grade-only with --grade none would do nothing")
    if (cfg.output != jsonl.STDIO and source != jsonl.STDIO and os.path.exists(cfg.output)
            and os.path.samefile(cfg.output, source)):
        raise MsmError(f"--grade-only: the output {cfg.output} is the input; write the re-graded records elsewhere")
    summary = Summary()
    pairs: list[tuple[bool, bool]] = []
    with _stage(cfg) as st:
        for _, rec in st.existing():
            summary.add(rec)
            _pair(rec, pairs)
        done = st.resume()
        backends = Backends(cfg)
        rendered: dict[tuple, Rendered] = {}
        skipped = stale = 0

        def regrade(batch: list[tuple[dict[str, Any], Rendered]]) -> list[dict[str, Any]]:
            recs = [r for r, _ in batch]
            failed = set(grade_records(cfg, backends, recs, [r for _, r in batch]))
            out = []
            for i, rec in enumerate(recs):
                if i in failed:
                    out.append(grader_failure(rec))
                    done.discard(rec["id"])
                    continue
                out.append(rec)
                summary.add(rec)
                _pair(rec, pairs)
            return out

        try:
            batch: list[tuple[dict[str, Any], Rendered]] = []
            for name, line, rec in jsonl.read_many([source]):
                if rec.get("kind") != "rollout":
                    skipped += 1
                    continue
                where = (name, line)
                rid = jsonl.field(rec, "id", str, where)
                if rid in done:
                    st.counts.done_before += 1
                    continue
                cond = _condition_of(rec, where)
                opts = PromptOptions(jsonl.field(rec, "model_name", str, where, "Alex"),
                                     jsonl.field(rec, "weigh_values", bool, where, True))
                if (cond, opts) not in rendered:
                    rendered[(cond, opts)] = render(cond, opts, cfg.scenario_dir)
                r = rendered[(cond, opts)]
                stale += bool(rec.get("prompt_sha")) and rec.get("prompt_sha") != r.prompt_sha
                new = dict(rec)
                new["actions"] = act.parse(jsonl.field(rec, "response", str, where), rec.get("finish_reason"))
                new["gate"], new["gate_evidence"] = gates.check(new["actions"], r)
                old = rec["grader"] if isinstance(rec.get("grader"), dict) else {}
                new["grader_previous"] = {"model": old.get("model"), "backend": old.get("backend"),
                                          "verdict": old.get("verdict"), "skipped": old.get("skipped", False)}
                batch.append((new, r))
                done.add(rid)
                if len(batch) >= cfg.chunk_size:
                    st.run(batch, regrade)
                    batch = []
            st.run(batch, regrade)
        finally:
            backends.close()
    if st.counts.rejected:
        log(cfg, f"{st.counts.rejected} rollout(s) could not be graded; error records in "
                 f"{st.rejects_path or 'the log above'} (a rerun retries them)")
    if skipped:
        log(cfg, f"{skipped} non-rollout record(s) in {jsonl.display_name(source)} left alone")
    if stale:
        log(cfg, f"warning: {stale} rollout(s) were generated from scenario text that differs from the current one "
                  "(prompt_sha); they are graded against the current emails")
    return summary, kappa(pairs)


def _pair(rec: dict[str, Any], pairs: list[tuple[bool, bool]]) -> None:
    prev = rec.get("grader_previous") or {}
    new = rec.get("grader") or {}
    if isinstance(prev.get("verdict"), bool) and isinstance(new.get("verdict"), bool):
        pairs.append((prev["verdict"], new["verdict"]))
