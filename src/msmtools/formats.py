"""One output vocabulary for every command that prints, and one rule for the default.

    jsonl     records, one JSON object a line (what the next command reads)
    table     aligned text for people
    markdown  a Markdown table
    csv       comma-separated rows
    text      spec-render only: the rendered spec texts

Each command accepts the subset it can write (`check`); the default (`default_format`) comes from the -o
extension, else a table when stdout is a terminal and jsonl when it is piped.
"""

from __future__ import annotations

import sys
from pathlib import Path

FORMATS = ("jsonl", "table", "markdown", "csv", "text")
BY_SUFFIX = {".txt": "table", ".md": "markdown", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}
STDIO = "-"


def default_format(output: str, allowed: tuple[str, ...] = FORMATS[:4]) -> str:
    """From the output file's extension; on stdout a table for a person at a terminal, JSONL for a pipe."""
    if output != STDIO:
        fmt = BY_SUFFIX.get(Path(output).suffix.lower(), "jsonl")
        return fmt if fmt in allowed else "jsonl"
    return "table" if sys.stdout.isatty() and "table" in allowed else "jsonl"


def choose(fmt: str | None, output: str, allowed: tuple[str, ...], command: str) -> str:
    """The format to write: `fmt` if given (checked against what `command` writes), else the default."""
    from .errors import MsmError

    if fmt is None:
        return default_format(output, allowed)
    if fmt not in FORMATS:
        raise MsmError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    if fmt not in allowed:
        raise MsmError(f"--format {fmt}: msm {command} writes {', '.join(allowed)}")
    return fmt


def write_text(path: str, text: str) -> None:
    """Text to stdout ('-') or atomically to a path."""
    if path == STDIO:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from .outputs import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)
