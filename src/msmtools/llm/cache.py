"""An on-disk cache of model calls, wrapped around any backend, so killed runs resume and reruns are free.

`CachedBackend(backend, folder)` has the Backend interface. For each request it looks up
`Request.cache_key(backend.name, backend.model)` (a hash of the messages, sampling params, seed and
adapter); requests already answered are served from disk, the rest go to the backend in chunks, and
each chunk's completions are appended to disk the moment the chunk returns. So:

- a rerun of a finished job makes zero model calls (`calls == 0`);
- a rerun with a larger `max_tokens` reuses every cached reply that ended on its own (it would come out
  the same with more room) and regenerates only the ones that were cut off;
- a run killed with SIGKILL loses at most the chunk in flight, and its rerun recomputes only that;
- completions that carry an `error` (a server that did not answer) are never cached: they are
  transient, and the next run asks again. Truncated completions ARE cached: they are a genuine result
  of those sampling params, and the caller decides what to do with them (retry with a new seed).

Storage is append-only JSONL: every writing process gets its own file (`calls-<host>-<pid>-<ns>.jsonl`),
so shards of an array job can share one folder without locks or interleaved lines. A torn last line
(a process killed mid-write) is ignored, never patched. Only byte offsets are kept in memory; the
completions are read back on demand, so a cache of a 40M-token corpus costs little RAM.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from .base import Completion, Request


class CallCache:
    """Key -> list of completion dicts, stored in append-only JSONL files in one folder."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._index: dict[str, tuple[Path, int, int]] = {}
        # the same request apart from max_tokens -> [(max_tokens, key)] of entries whose replies all finished
        self._complete: dict[str, list[tuple[int, str]]] = {}
        self._scanned: dict[Path, int] = {}  # file -> bytes indexed so far (complete lines only)
        self._out: Any = None
        self._out_path: Path | None = None
        self.refresh()

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def refresh(self) -> int:
        """Index lines that other processes (or earlier runs) have appended since the last scan."""
        added = 0
        for path in sorted(self.folder.glob("calls-*.jsonl")):
            start = self._scanned.get(path, 0)
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if size <= start:
                continue
            with path.open("rb") as f:
                f.seek(start)
                data = f.read(size - start)
            pos = 0
            while True:
                nl = data.find(b"\n", pos)
                if nl < 0:
                    break  # a torn or still-being-written tail: index it on a later scan, if ever
                line = data[pos:nl]
                try:
                    entry = orjson.loads(line)
                    key = entry["key"]
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    key = None  # a damaged line: skip it, the call is simply made again
                if key is not None and key not in self._index:
                    self._index[key] = (path, start + pos, nl - pos)
                    self._note_complete(key, entry)
                    added += 1
                pos = nl + 1
            self._scanned[path] = start + pos
        return added

    def _note_complete(self, key: str, entry: dict[str, Any]) -> None:
        base, mt = entry.get("base"), entry.get("max_tokens")
        if base and isinstance(mt, int) and all(not c.get("truncated") and c.get("finish_reason") == "stop"
                                                for c in entry.get("completions", [])):
            self._complete.setdefault(base, []).append((mt, key))

    def complete_within(self, base: str, max_tokens: int) -> str | None:
        """The key of a cached entry for the same request with a smaller or equal token limit whose every
        reply ended on its own: a larger limit would have produced exactly the same text."""
        best = [k for mt, k in self._complete.get(base, ()) if mt <= max_tokens]
        return best[-1] if best else None

    def get(self, key: str) -> list[dict[str, Any]] | None:
        loc = self._index.get(key)
        if loc is None:
            return None
        path, offset, length = loc
        if path == self._out_path and self._out is not None:
            self._out.flush()
        with path.open("rb") as f:
            f.seek(offset)
            return orjson.loads(f.read(length))["completions"]

    def put(self, key: str, completions: list[dict[str, Any]], **meta: Any) -> None:
        """Append one entry and flush it to the OS at once (a SIGKILL right after loses nothing)."""
        if key in self._index:
            return
        if self._out is None:
            name = f"calls-{socket.gethostname()}-{os.getpid()}-{time.time_ns()}.jsonl"
            self._out_path = self.folder / name
            self._out = self._out_path.open("ab", buffering=0)
        line = orjson.dumps({"key": key, **meta, "completions": completions}) + b"\n"
        offset = self._out.tell()
        self._out.write(line)  # unbuffered: one write() per entry
        self._index[key] = (self._out_path, offset, len(line) - 1)
        self._scanned[self._out_path] = offset + len(line)
        self._note_complete(key, {**meta, "completions": completions})

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


class CachedBackend:
    """A backend that answers from the cache first and saves every new result as it arrives.

    `calls` counts requests sent to the wrapped backend in this process, `hits` those answered
    from disk; tests and benchmarks assert `calls == 0` on a rerun.
    """

    def __init__(self, backend: Any, folder: str | os.PathLike, *, chunk_size: int = 64, progress: bool = True,
                 on_chunk: Callable[[int], None] | None = None):
        if chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        self.backend = backend
        self.cache = CallCache(folder)
        self.chunk_size = chunk_size
        self.progress = progress
        self.on_chunk = on_chunk
        self.calls = 0
        self.hits = 0

    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def model(self) -> str:
        return self.backend.model

    def key(self, request: Request) -> str:
        return request.cache_key(self.backend.name, self.backend.model)

    def base_key(self, request: Request) -> str:
        """The key without the token limit (see CallCache.complete_within)."""
        return request.cache_key(self.backend.name, self.backend.model, with_max_tokens=False)

    def generate(self, requests: list[Request], *, desc: str | None = None) -> list[list[Completion]]:
        from tqdm import tqdm

        keys = [self.key(r) for r in requests]
        results: dict[str, list[Completion]] = {}
        todo: dict[str, Request] = {}
        for k, r in zip(keys, requests):
            if k in results or k in todo:
                continue
            cached = self.cache.get(k)
            if cached is None:  # answered before with a smaller limit, and it did not need more?
                done = self.cache.complete_within(self.base_key(r), r.sampling.max_tokens)
                cached = self.cache.get(done) if done else None
            if cached is not None:
                results[k] = [Completion.from_dict(c) for c in cached]
                self.hits += 1
            else:
                todo[k] = r
        bar = tqdm(total=len(set(keys)), initial=len(results), desc=desc or "generate", unit="call",
                   file=sys.stderr, disable=not self.progress, dynamic_ncols=True)
        pending = list(todo.items())
        stream = getattr(self.backend, "stream", None)
        if stream is not None and pending:  # a server backend: save each reply the moment it is back, no batches
            done = 0
            for idx, comps in stream((r for _, r in pending), desc=desc):
                k = pending[idx][0]
                results[k] = comps
                self.calls += 1
                if not any(c.error or c.finish_reason == "error" for c in comps):
                    self.cache.put(k, [c.to_dict() for c in comps], tag=desc, base=self.base_key(pending[idx][1]),
                                   max_tokens=pending[idx][1].sampling.max_tokens)
                bar.update(1)
                done += 1
                if self.on_chunk is not None and done % self.chunk_size == 0:
                    self.on_chunk(self.chunk_size)
            if done != len(pending):
                raise RuntimeError(f"the backend answered {done} of {len(pending)} requests")  # a bug, not bad input
            pending = []
        for i in range(0, len(pending), self.chunk_size):
            chunk = pending[i:i + self.chunk_size]
            outs = self.backend.generate([r for _, r in chunk], desc=desc)
            self.calls += len(chunk)
            for (k, r), comps in zip(chunk, outs):
                results[k] = comps
                if not any(c.error or c.finish_reason == "error" for c in comps):
                    self.cache.put(k, [c.to_dict() for c in comps], tag=desc, base=self.base_key(r),
                                   max_tokens=r.sampling.max_tokens)
            bar.update(len(chunk))
            if self.on_chunk is not None:
                self.on_chunk(len(chunk))
        bar.close()
        return [results[k] for k in keys]

    def continuation_logprobs(self, items: list[Any], *, batch_size: int | None = None) -> list[tuple[float, int]]:
        """Scoring goes to the wrapped backend, uncached (`base.Scorer`; `llm.scoring` checks it can)."""
        return self.backend.continuation_logprobs(items, batch_size=batch_size)

    def option_logprobs(self, asks: list[Any], *, batch_size: int | None = None
                        ) -> list[tuple[list[float], list[tuple[float, int]]]]:
        return self.backend.option_logprobs(asks, batch_size=batch_size)

    def refresh(self) -> int:
        return self.cache.refresh()

    def describe(self) -> dict[str, Any]:
        return self.backend.describe()

    def close(self) -> None:
        self.cache.close()
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()
