"""Options shared by several subcommands: one definition, one help text, the same meaning everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

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
TrustRemoteCode = Annotated[
    bool, typer.Option("--trust-remote-code", help="Allow model repositories to run their own Python code.")
]
AllowPickle = Annotated[
    bool, typer.Option("--allow-pickle", help="Also load pickle weights (pytorch_model.bin); they can run code when loaded. Default: safetensors only.")
]
Backend = Annotated[
    str, typer.Option("--backend", "-b", help="Generation backend: hf (transformers), vllm (offline engine) or openai (HTTP).")
]
BaseUrl = Annotated[
    str | None,
    typer.Option("--base-url", envvar="MSM_OPENAI_BASE_URL", help="openai backend: server URL, e.g. http://127.0.0.1:8000/v1 (env MSM_OPENAI_BASE_URL)."),
]
Format = Annotated[str, typer.Option("--format", "-f", help="Output format.")]
ApiKeyEnv = Annotated[
    str,
    typer.Option("--api-key-env", help="openai backend: name of the environment variable holding the API key (the key is never logged or recorded).", metavar="VAR"),
]
Concurrency = Annotated[int, typer.Option("--concurrency", help="openai backend: requests in flight at once.", min=1)]
RequestTimeout = Annotated[
    float, typer.Option("--timeout", help="openai backend: seconds to wait to connect and for each read of a reply (then retried with backoff).")
]
TensorParallel = Annotated[
    int, typer.Option("--tensor-parallel-size", help="vllm backend: number of GPUs to split the model over.", min=1)
]
