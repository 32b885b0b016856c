"""JSONL in and out for every stage: `-` means stdin/stdout, errors name file:line, writes never tear.

Reading streams line by line (constant memory on any file size). Writing has two modes:

- atomic (default for a path): records go to a temporary file beside the target, renamed over it
  on success, so a killed run leaves either the old file or the complete new one;
- append (for resumable stages): one record per write, flushed at once; a torn last line left by a
  SIGKILL mid-write is cut off before the next append, so readers never choke on it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from .errors import MsmError, at

STDIO = "-"


def display_name(path: str | os.PathLike) -> str:
    return "<stdin>" if str(path) == STDIO else str(path)


def _open_in(path: str | os.PathLike) -> BinaryIO:
    if str(path) == STDIO:
        return sys.stdin.buffer
    p = Path(path)
    if not p.exists():
        raise MsmError(f"{p}: no such file")
    if p.is_dir():
        raise MsmError(f"{p}: is a folder, expected a JSONL file")
    return p.open("rb")


def iter_lines(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, record) for each non-blank line; a bad line raises MsmError naming it."""
    name = display_name(path)
    f = _open_in(path)
    try:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                rec = orjson.loads(raw)
            except orjson.JSONDecodeError as e:
                raise at(name, lineno, None, f"invalid JSON ({e.args[0].split(':')[0]})") from None
            if not isinstance(rec, dict):
                raise at(name, lineno, None, f"expected a JSON object, got {type(rec).__name__}")
            yield lineno, rec
    finally:
        if f is not sys.stdin.buffer:
            f.close()


def read(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Records of a JSONL file (or `-`), streamed."""
    for _, rec in iter_lines(path):
        yield rec


def read_many(paths: Iterable[str | os.PathLike]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(file name, line number, record) over several inputs in order."""
    for p in paths:
        for lineno, rec in iter_lines(p):
            yield display_name(p), lineno, rec


_MISSING = object()


def field(rec: dict, name: str, typ: type | tuple[type, ...], where: tuple[str, int], default: Any = _MISSING,
          *, parent: str = "") -> Any:
    """Fetch a required field with a type check; the error names file, line and field (`parent.name`
    for a field of a nested object, e.g. messages[0].content)."""
    full = f"{parent}.{name}" if parent else name
    if name not in rec or rec[name] is None:
        if default is not _MISSING:
            return default
        raise at(where[0], where[1], full, "missing")
    value = rec[name]
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        want = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
        raise at(where[0], where[1], full, f"expected {want}, got {type(value).__name__}")
    return value


def dumps(rec: dict[str, Any]) -> bytes:
    return orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY)


def _repair_tail(path: Path) -> None:
    """Cut a torn final line (no trailing newline) left by a killed writer."""
    size = path.stat().st_size
    if size == 0:
        return
    with path.open("rb+") as f:
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        # walk back to the previous newline
        pos, chunk = size, 65536
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            buf = f.read(pos - start)
            i = buf.rfind(b"\n")
            if i >= 0:
                f.truncate(start + i + 1)
                return
            pos = start
        f.truncate(0)


class Rejects:
    """Error records, in a file opened only when the first one arrives (a run without failures, or one that
    fails before its first item, leaves no empty rejects file). Safe to share between threads."""

    def __init__(self, path: str | os.PathLike | None, *, describe: Any = None):
        import threading

        self.path = None if path is None else str(path)
        self.writer: Writer | None = None
        self.count = 0
        self._describe = describe or (lambda r: f"{r.get('stage', 'msm')}: error: {r.get('input', r.get('id'))}")
        self._lock = threading.Lock()

    def write(self, rec: dict[str, Any]) -> None:
        from . import redact

        rec = rec | {"message": redact.scrub(str(rec.get("message", "")))}
        with self._lock:
            if self.path is None:
                print(f"msm: {self._describe(rec)}: {rec['message']}", file=sys.stderr)
            else:
                if self.writer is None:
                    self.writer = Writer(self.path, append=True)
                self.writer.write(rec)
            self.count += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class Writer:
    """Write records to stdout (`-`/None), atomically to a path, or appending with a flush per record.

    An append-mode output is locked for the writer's lifetime (a second writer stops with a clear error,
    see `outputs.lock`), and a file this writer created but never wrote to is removed again on failure,
    so a failed run leaves no empty output behind.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, append: bool = False):
        from . import outputs

        self.path = None if path is None or str(path) == STDIO else Path(path)
        self.append = append
        self.count = 0
        self._tmp: str | None = None
        self._created = False
        if self.path is None:
            self._f: BinaryIO = sys.stdout.buffer
            return
        if self.path.is_dir():
            raise MsmError(f"{self.path}: is a folder; give a file name")
        if append:
            outputs.make_parent(self.path)
            self._created = not self.path.exists()
            try:
                self._f = self.path.open("ab")
            except OSError as e:
                raise MsmError(f"{self.path}: cannot open for writing ({e.strerror})") from None
            try:
                outputs.lock(self._f, str(self.path))
            except MsmError:
                # Never remove the file here: the writer holding the lock may have created it a moment
                # ago and be writing into it (an unlinked file would swallow all its records).
                self._f.close()
                raise
            _repair_tail(self.path)
        else:
            fd, self._tmp = outputs.temp_beside(self.path)
            self._f = os.fdopen(fd, "wb")

    def write(self, rec: dict[str, Any]) -> None:
        self._f.write(dumps(rec))
        self.count += 1
        if self.append or self.path is None:
            self._f.flush()

    def write_all(self, recs: Iterable[dict[str, Any]]) -> int:
        for r in recs:
            self.write(r)
        return self.count

    def close(self, ok: bool = True) -> None:
        if self.path is None:
            try:
                self._f.flush()
            except BrokenPipeError:
                pass
            return
        if self._f.closed:
            return
        self._f.flush()
        if self._tmp is not None:
            os.fsync(self._f.fileno())
        elif not ok and self._created and self.count == 0 and os.fstat(self._f.fileno()).st_size == 0:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()  # still under our lock, so no other writer is using it
        self._f.close()
        if self._tmp is not None:
            if ok:
                os.replace(self._tmp, self.path)
            else:
                os.unlink(self._tmp)
            self._tmp = None

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(ok=exc_type is None)


def write(path: str | os.PathLike | None, recs: Iterable[dict[str, Any]], *, append: bool = False) -> int:
    with Writer(path, append=append) as w:
        return w.write_all(recs)


def existing(path: str | os.PathLike | None, key: str = "id") -> set[str]:
    """Keys already present in an append-mode output, for resuming without duplicates."""
    if path is None or str(path) == STDIO or not Path(path).exists():
        return set()
    p = Path(path)
    _repair_tail(p)
    return {str(rec[key]) for _, rec in iter_lines(p) if key in rec}


# --- sharding -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shard:
    """Shard i of n (0-based, like SLURM_ARRAY_TASK_ID); membership depends only on an item's key."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str | None) -> Shard:
        if not text:
            return cls()
        try:
            i, n = (int(x) for x in text.split("/"))
        except ValueError:
            raise MsmError(f"--shard {text!r}: expected i/n, for example 0/8") from None
        if n < 1 or not 0 <= i < n:
            raise MsmError(f"--shard {text!r}: need 0 <= i < n")
        return cls(i, n)

    @staticmethod
    def _hash(key: str) -> int:
        return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")

    def owns(self, key: str) -> bool:
        """Membership from the key alone, for a stream whose whole set is not known in advance
        (tag-reasoning); shard sizes then vary by chance (few keys, many shards: some get none)."""
        if self.count == 1:
            return True
        return self._hash(key) % self.count == self.index

    def select(self, keys: Iterable[str]) -> set[str]:
        """The keys this shard owns among the run's whole set, balanced by construction: keys are
        ranked by hash (independent of input order) and dealt round-robin, so shard sizes differ by at
        most one (27 conditions over 27 shards: one each). The set must be the same in every shard."""
        keys = sorted(set(keys), key=lambda k: (self._hash(k), k))
        return set(keys[self.index::self.count])

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
