"""The size contract of a study: a corpus or chat set short of its target fails before anything trains on it.

`msm docgen` alone only warns when a corpus falls short of `--target-tokens` (and a chats run whose
domain reply was unusable plans a small fraction of `--target-chats`); in a study that shortfall would
flow silently into training, so the workflow runs this check between generation and training:

    python -m msmtools.study.contract documents FILE --target N [--min-fraction F] [--name NAME]
    python -m msmtools.study.contract chats FILE --target N ...

Documents count the `tokens` docgen recorded (with the trained model's tokenizer, as the study asks);
chats count records. Exit 0 with one line on stderr when the contract holds, 1 with the shortfall and
what to do when it does not (the generated file stays beside the output, as FILE, for inspection).
"""

from __future__ import annotations

import argparse
import sys

from .. import jsonl


def measure(kind: str, path: str) -> int:
    total = 0
    for _, rec in jsonl.iter_lines(path):
        if rec.get("kind") == "error" or rec.get("error"):
            continue
        total += int(rec.get("tokens") or 0) if kind == "documents" else 1
    return total


def check(kind: str, path: str, target: int, min_fraction: float = 1.0, name: str = "") -> tuple[bool, str]:
    got = measure(kind, path)
    unit = "tokens" if kind == "documents" else "chats"
    need = int(target * min_fraction + 0.999999)
    label = f"{kind} {name}".strip()
    if got >= need:
        return True, f"msm study: {label}: {got:,} {unit} (target {target:,}): size contract holds"
    fix = ("raise the corpus's docgen sizes (ideas, doc-types) or leave them out so the target sizes them"
           if kind == "documents" else
           "see the docgen log: too few conversation domains or queries were planned (an unusable domain "
           "reply falls back to the spec's section titles); raise queries or fix the generator")
    return False, (f"msm study: {label}: {got:,} {unit}, short of the {need:,} the study asks for "
                   f"(target {target:,} x min_fraction {min_fraction}); nothing trains on it. {fix}, then rerun: "
                   f"the cache keeps everything made ({path})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m msmtools.study.contract", description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=["documents", "chats"])
    ap.add_argument("file")
    ap.add_argument("--target", type=int, required=True)
    ap.add_argument("--min-fraction", type=float, default=1.0)
    ap.add_argument("--name", default="")
    a = ap.parse_args(argv)
    ok, line = check(a.kind, a.file, a.target, a.min_fraction, a.name)
    print(line, file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
