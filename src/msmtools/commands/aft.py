"""`msm aft`: supervised fine-tuning on chats (assistant tokens only), by default continuing midtrain's adapter."""

from __future__ import annotations

from typing import Annotated

import typer

from ..cli_options import config_options, shared
from ..train.config import AftConfig
from ..train.options import TrainRun


@config_options(TrainRun, name="run")
@config_options(AftConfig)
@shared("output", "from_", "model", "label", "trust_remote_code", "allow_pickle", output=None, unset_none=("model",))
def aft(
    chats: Annotated[list[str], typer.Argument(help="Chat JSONL files (`messages`, optional `reasoning`; '-' = stdin).", metavar="CHATS...")],
    show_mask: Annotated[bool, typer.Option("--show-mask", help="Print the first chat as rendered, trained spans between ⟦ ⟧, and exit.")] = False,
    *,
    cfg: AftConfig,
    run: TrainRun,
    output: str | None,
    from_: str | None,
    model: str | None,
    label: str | None,
    trust_remote_code: bool,
    allow_pickle: bool,
) -> None:
    """Fine-tune on chat demonstrations with loss on assistant tokens only; print one checkpoint record.

    `msm midtrain docs.jsonl -o mid/ | msm aft chats.jsonl --from - -o aft/` continues the midtrained
    LoRA adapter on the same base model, as the paper does.
    """
    from ..train import stage

    stage.aft(chats, output, model, cfg, from_=from_, resume=run.resume, restart_changed=run.restart_changed,
              save_every=run.save_every, metrics=run.metrics, label=label, show_mask=show_mask, fsdp=run.fsdp,
              trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)


def register(app: typer.Typer) -> None:
    app.command("aft")(aft)
