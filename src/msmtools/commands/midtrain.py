"""`msm midtrain`: continued pretraining on a document corpus -> LoRA adapter (or full weights) + record."""

from __future__ import annotations

from typing import Annotated

import typer

from ..cli_options import config_options, shared
from ..train.config import MidtrainConfig
from ..train.options import TrainRun


@config_options(TrainRun, name="run")
@config_options(MidtrainConfig)
@shared("output", "model", "label", "trust_remote_code", "allow_pickle", output=None)
def midtrain(
    docs: Annotated[list[str], typer.Argument(help="Document JSONL files (`text` field; '-' = stdin).", metavar="DOCS...")],
    *,
    cfg: MidtrainConfig,
    run: TrainRun,
    output: str | None,
    model: str,
    label: str | None,
    trust_remote_code: bool,
    allow_pickle: bool,
) -> None:
    """Midtrain a model on documents (LoRA r64 on all projections by default); print one checkpoint record.

    Documents are tokenized with EOS after each, packed best-fit into rows of --seq-len tokens with
    positions restarting per document and attention kept inside each document.
    """
    from ..errors import MsmError
    from ..train import stage

    if output is None:
        raise MsmError("-o OUTDIR is required (the checkpoint folder to write)")
    stage.midtrain(docs, output, model, cfg, resume=run.resume, restart_changed=run.restart_changed,
                   save_every=run.save_every, metrics=run.metrics, label=label, fsdp=run.fsdp,
                   trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)


def register(app: typer.Typer) -> None:
    app.command("midtrain")(midtrain)
