"""The one stage loop: every command that turns items into JSONL records runs its items through `Stage`.

A stage owns what every evaluator and generator needs and none should write again:

- the output, opened (and locked, its torn last line cut) before anything reads it: appended record by
  record for a resumable stage, or written atomically for one rebuilt on every run (docgen, from its cache);
- resuming: the ids already in the output are done; so are the ids of error records marked final
  (`retry: false`: the item itself is bad), while failures of a backend (`retry: true`) are tried again;
- sharding: `mine(keys)` for a run whose whole item set is known (balanced, see `jsonl.Shard.select`),
  `owns(key)` for a stream;
- chunking, error records (one default rejects path, `OUTPUT.rejects.jsonl`), a progress bar on stderr
  and the final counts line.

A stage keeps only its own logic: what an item is, its record id, and how to solve a chunk. The simple
form is `Stage.run(items, solve)`; stages with their own scheduling (am-eval's generation and grading
overlap) use `todo`, `write` and `reject` from worker threads (both are thread-safe).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from . import jsonl

T = TypeVar("T")


def rejects_path(output: str, rejects: str | None = None) -> str | None:
    """Where error records go: `--rejects`, else OUTPUT.rejects.jsonl beside a file output, else stderr."""
    if rejects:
        return rejects
    if output == jsonl.STDIO:
        return None
    p = Path(output)
    return str(p.with_name(p.name.removesuffix(".jsonl") + ".rejects.jsonl"))


@dataclass
class Counts:
    """What happened to every input: written + rejected + done before + other shards = inputs."""

    inputs: int = 0
    other_shard: int = 0
    done_before: int = 0
    written: int = 0
    rejected: int = 0
    retry: int = 0  # of rejected: failures a rerun tries again
    extra: dict[str, int] = field(default_factory=dict)  # a stage's own tallies (null verdicts, retries)

    def add(self, name: str, k: int = 1) -> None:
        self.extra[name] = self.extra.get(name, 0) + k

    def line(self, name: str, unit: str = "records") -> str:
        extra = "".join(f", {v} {k}" for k, v in self.extra.items())
        retry = f" ({self.retry} to retry: rerun)" if self.retry else ""
        return (f"msm: {name}: {self.written} {unit} written{extra}, {self.rejected} rejected{retry}, "
                f"{self.done_before} already done, {self.other_shard} in other shards")


class Stage:
    """One run of a stage over one output: `with Stage(...) as st:` opens it; leaving closes everything."""

    def __init__(self, name: str, output: str, *, rejects: str | None = None, shard: jsonl.Shard | None = None,
                 chunk_size: int = 64, progress: bool = True, append: bool = True, kinds: Iterable[str] | None = None,
                 describe: Callable[[dict[str, Any]], str] | None = None, unit: str = "records"):
        self.name = name
        self.output = output
        self.rejects_path = rejects_path(output, rejects)
        self.shard = shard or jsonl.Shard()
        self.chunk_size = max(1, chunk_size)
        self.progress = progress
        self.append = append and output != jsonl.STDIO
        self.kinds = None if kinds is None else set(kinds)
        self.unit = unit
        self.counts = Counts()
        self.done: set[str] = set()
        self._describe = describe or (lambda r: f"{name}: error: {r.get('input', r.get('input_id', r.get('id')))}")
        self._lock = threading.Lock()
        self._writer: jsonl.Writer | None = None
        self._rejects: jsonl.Rejects | None = None
        self._bar: Any = None
        self._read = False

    # -- opening and resuming ----------------------------------------------------------------------

    def __enter__(self) -> Stage:
        # opened (locked, torn tail repaired) before the output is read for resuming
        self._writer = jsonl.Writer(self.output, append=self.append)
        if self.append:
            self._rejects = jsonl.Rejects(self.rejects_path, describe=self._describe)
        else:  # rebuilt every run: the error records are rebuilt too, written whole at the end
            self._rejects = _AtomicRejects(self.rejects_path)
        return self

    def existing(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """(line, record) of the records already in the output (of the stage's kinds), each id once; their ids
        become done. Read it once, before `todo`, where a stage checks or summarises earlier records."""
        if self._read or not self.append or not Path(self.output).exists():
            return
        self._read = True
        for line, rec in jsonl.iter_lines(self.output):
            rid = rec.get("id")
            if not isinstance(rid, str) or (self.kinds is not None and rec.get("kind") not in self.kinds):
                continue
            if rid in self.done:
                continue  # a repeated id (two writers before locking existed) counts once
            self.done.add(rid)
            yield line, rec

    def resume(self) -> set[str]:
        """Read the output and the rejects file: the ids not to do again."""
        for _ in self.existing():
            pass
        if self.append and self.rejects_path and Path(self.rejects_path).exists():
            self.done |= {str(r["id"]) for _, r in jsonl.iter_lines(self.rejects_path)
                          if "id" in r and r.get("retry") is False}
        return self.done

    # -- which items ----------------------------------------------------------------------------------

    def mine(self, keys: Iterable[str]) -> set[str]:
        """The keys this shard owns among the run's whole set (balanced)."""
        return self.shard.select(keys)

    def owns(self, key: str) -> bool:
        """Membership from the key alone, for a stream of unknown size."""
        return self.shard.owns(key)

    def todo(self, items: Iterable[T], *, key: Callable[[T], str], record_id: Callable[[T], str | tuple[str, ...]],
             known: bool = True) -> list[T]:
        """The items of this shard not done yet; counts the rest. `record_id` gives the id(s) an item's outcome
        would have (a record's, an error record's). `known`: the items are the run's whole set (balanced
        shards); a stream is split by key alone."""
        items = list(items)
        mine = self.mine(key(it) for it in items) if known else None
        out = []
        for it in items:
            self.counts.inputs += 1
            if not (key(it) in mine if mine is not None else self.owns(key(it))):
                self.counts.other_shard += 1
            elif _any_done(record_id(it), self.done):
                self.counts.done_before += 1
            else:
                out.append(it)
        return out

    def chunks(self, items: list[T], size: int | None = None) -> Iterator[list[T]]:
        size = max(1, size or self.chunk_size)
        for start in range(0, len(items), size):
            yield items[start:start + size]

    # -- writing ------------------------------------------------------------------------------------

    def write(self, rec: dict[str, Any]) -> None:
        with self._lock:
            self._writer.write(rec)
            self.counts.written += 1

    def reject(self, rec: dict[str, Any], *, retry: bool = True) -> None:
        """An error record: `retry` (a backend failed) is tried by the next run, a final one (bad item) is not."""
        rec = {"kind": "error", "stage": self.name, **rec, "retry": retry}
        with self._lock:
            self._rejects.write(rec)
            self.counts.rejected += 1
            self.counts.retry += retry

    def emit(self, rec: dict[str, Any]) -> None:
        """A solver's outcome: error records go to the rejects, the rest to the output."""
        if rec.get("kind") == "error":
            self.reject({k: v for k, v in rec.items() if k != "retry"}, retry=rec.get("retry", True))
        else:
            self.write(rec)

    def run(self, items: list[T], solve: Callable[[list[T]], Iterable[dict[str, Any]]], *,
            size: int | None = None, desc: str | None = None) -> Counts:
        """Solve `items` (already filtered by `todo`) chunk by chunk; every outcome is written as it comes."""
        for chunk in self.chunks(items, size):
            for rec in solve(chunk):
                self.emit(rec)
            self.advance(len(chunk), desc)
        return self.counts

    # -- progress and closing -------------------------------------------------------------------------

    def bar(self, total: int, desc: str | None = None) -> None:
        from tqdm import tqdm

        if self._bar is not None:
            self._bar.close()
        self._bar = tqdm(total=total, desc=desc or self.name, unit="item", file=sys.stderr,
                         disable=not self.progress, leave=False)

    def advance(self, k: int = 1, desc: str | None = None) -> None:
        if self._bar is not None:
            self._bar.update(k)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        ok = exc_type is None
        if self._bar is not None:
            self._bar.close()
        try:
            if self._rejects is not None:
                if isinstance(self._rejects, _AtomicRejects):
                    self._rejects.close(ok)
                else:
                    self._rejects.close()
        finally:
            if self._writer is not None:
                self._writer.close(ok=ok)

    def report(self) -> None:
        """The final counts on stderr, and where the error records are."""
        if not self.progress:
            return
        print(self.counts.line(self.name, self.unit), file=sys.stderr)
        if self.counts.rejected:
            where = self.rejects_path or "the log above"
            print(f"msm: {self.name}: error records in {where}"
                  + (" (a rerun retries the failed ones)" if self.counts.retry else ""), file=sys.stderr)


def _any_done(ids: str | tuple[str, ...], done: set[str]) -> bool:
    return ids in done if isinstance(ids, str) else any(i in done for i in ids)


class _AtomicRejects:
    """Error records of a stage rebuilt every run: kept in memory, written whole (atomically) on success."""

    def __init__(self, path: str | None):
        self.path = path
        self.records: list[dict[str, Any]] = []
        self.count = 0

    def write(self, rec: dict[str, Any]) -> None:
        from . import redact

        self.records.append(rec | {"message": redact.scrub(str(rec.get("message", "")))})
        self.count += 1

    def close(self, ok: bool = True) -> None:
        if ok and self.path is not None:
            jsonl.write(self.path, self.records)
