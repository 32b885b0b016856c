"""Shared by the scripts that generate docs: write the text, or with --check fail when the file is stale."""

from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(doc: Path, text: str, script: str) -> None:
    if "--check" in sys.argv:
        if not doc.exists() or doc.read_text() != text:
            print(f"{doc} is stale: run python scripts/{script}", file=sys.stderr)
            sys.exit(1)
        return
    doc.write_text(text)
    print(f"wrote {doc}", file=sys.stderr)
