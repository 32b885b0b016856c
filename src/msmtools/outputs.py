"""Opening outputs safely: checked before any work starts, never over an input, one writer at a time.

Every command that writes files goes through here:
- `check` runs before anything heavy loads: an output that is an existing folder, sits in a folder that
  cannot be created or written, or resolves (through symlinks too) to one of the command's inputs is a
  one-line error, so a bad `-o` costs nothing and never destroys an input;
- `temp_beside` makes the temporary file of an atomic write with the mode a plain `open` would give
  (mkstemp's 0600 ignores the umask), in the target's folder so `os.replace` is atomic;
- `lock` takes an exclusive, non-blocking lock on an append-mode output: a second msm writing the same
  file stops at once with a clear message instead of duplicating every record.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from .errors import MsmError

STDIO = "-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def resolved(path: str | os.PathLike) -> str:
    """The real path a name refers to, following symlinks (also for a file that does not exist yet)."""
    return os.path.realpath(os.path.expanduser(os.fspath(path)))


def check(outputs: Iterable[tuple[str, str | os.PathLike | None]],
          inputs: Iterable[tuple[str, str | os.PathLike | None]] = (), *, folders: Iterable[str] = ()) -> None:
    """Refuse bad outputs before any work: (flag, path) pairs; '-' and None are stdio / not given.

    `folders` names the flags whose output is a folder (a training run's `-o`).
    """
    folder_flags = set(folders)
    ins = {}
    for flag, p in inputs:
        if p is None or str(p) == STDIO:
            continue
        ins.setdefault(resolved(p), (flag, str(p)))
    seen: dict[str, str] = {}
    for flag, p in outputs:
        if p is None:
            continue
        name = os.fspath(p)
        if name == STDIO:
            if flag in folder_flags:
                raise MsmError(f"{flag} -: a folder is needed here, not stdout")
            continue
        real = resolved(name)
        if real in ins:
            iflag, iname = ins[real]
            what = f"{iflag} {iname}" if iflag else iname
            raise MsmError(f"{flag} {name}: is also an input ({what}); writing it would destroy the input. "
                           "Write to another file")
        if real in seen:
            raise MsmError(f"{flag} {name}: is also the output of {seen[real]}; give each output its own file")
        seen[real] = flag
        target = Path(real)
        if flag in folder_flags:
            if target.exists() and not target.is_dir():
                raise MsmError(f"{flag} {name}: exists and is not a folder")
            _writable_folder(flag, name, target if target.exists() else target.parent)
            continue
        if target.is_dir():
            raise MsmError(f"{flag} {name}: is a folder; give a file name")
        if target.exists() and not os.access(target, os.W_OK):
            raise MsmError(f"{flag} {name}: not writable")
        _writable_folder(flag, name, target.parent)


def _writable_folder(flag: str, name: str, folder: Path) -> None:
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise MsmError(f"{flag} {name}: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise MsmError(f"{flag} {name}: cannot write in {probe} (permission denied)")


def make_parent(path: Path, flag: str = "-o") -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MsmError(f"{flag} {path}: cannot create its folder ({e.strerror})") from None


def temp_beside(path: Path, suffix: str = ".tmp") -> tuple[int, str]:
    """(fd, name) of a new temporary file next to `path`, with the umask's permissions."""
    make_parent(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as e:
        raise MsmError(f"{path}: cannot write in {path.parent} ({e.strerror})") from None
    os.fchmod(fd, 0o666 & ~_umask())
    return fd, tmp


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """A temporary path beside `path`, renamed over it when the block succeeds and removed when it fails."""
    target = Path(path)
    fd, tmp = temp_beside(target, ".tmp" + target.suffix)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def lock(f: IO, name: str) -> None:
    """An exclusive lock on an open output; a second writer gets a clear error at once."""
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise MsmError(f"{name}: another msm process is writing this file right now; wait for it to finish "
                       "(a rerun then resumes where it stopped) or write to another file") from None
    except OSError:
        pass  # a file system without locks (some network mounts): nothing to hold
