"""Options shared by several subcommands: one definition, one help text, the same meaning everywhere."""

from __future__ import annotations

from typing import Annotated

import typer


def _gen_help(name: str) -> str:
    from dataclasses import fields

    from ..llm.options import GenOptions

    return next(f.metadata["help"] for f in fields(GenOptions) if f.name == name)


Output = Annotated[
    str, typer.Option("-o", "--output", help="Write JSONL records here ('-' = stdout).", metavar="PATH")
]
Rejects = Annotated[
    str | None,
    typer.Option("--rejects", help="Write error records here (default: OUTPUT with .rejects.jsonl; stderr summary).", metavar="PATH"),
]
Shard = Annotated[
    str | None,
    typer.Option("--shard", help="Process only shard i of n (0-based, e.g. 3/16); shard outputs concatenate to the full run.", metavar="I/N"),
]
Seed = Annotated[int, typer.Option("--seed", help="Base random seed (sampling, data order, init).")]
Model = Annotated[
    str,
    typer.Option("--model", "-m", help="'default' (embedded SmolLM2-135M-Instruct), a local HF folder, or a hub id."),
]
# The two model-safety flags are GenOptions fields; commands that load a model without generating
# (training, token counting) take them from the same definition.
TrustRemoteCode = Annotated[bool, typer.Option("--trust-remote-code", help=_gen_help("trust_remote_code"))]
AllowPickle = Annotated[bool, typer.Option("--allow-pickle", help=_gen_help("allow_pickle"))]
