"""The one exception type for bad input: the CLI prints it as a single line and exits with code 2.

A traceback from `msm` therefore always means a bug in msmtools, never a mistake by the user.
"""

from __future__ import annotations


class MsmError(Exception):
    """A user-facing problem (bad input, missing file, unreachable server)."""

    exit_code = 2


def at(path: str, line: int | None, field: str | None, message: str) -> MsmError:
    """An error that names the place: `file:line: field: message`."""
    where = str(path) if line is None else f"{path}:{line}"
    return MsmError(f"{where}: {field}: {message}" if field else f"{where}: {message}")
