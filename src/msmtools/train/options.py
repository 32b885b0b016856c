"""The training run's own CLI options (not hyperparameters), shared by `msm midtrain` and `msm aft`.

Hyperparameters are `TrainConfig`'s fields (config.py); these say how a run is carried out. Both become
typer options through `cli_options.config_options`. Stdlib only: imported when the CLI starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..cli_options import flag

SAVE_EVERY = 200


@dataclass(frozen=True)
class TrainRun:
    """How a training run is carried out: checkpoints, resumption, metrics, processes."""

    save_every: int = flag(SAVE_EVERY, "save-every", "Save resumable state every N steps (0 = never; a kill then "
                           "restarts from scratch).")
    resume: bool = flag(False, "resume", "Continue an interrupted run into the same -o folder: same data order, "
                        "same final step count.")
    restart_changed: bool = flag(False, "restart-changed", "With --resume: state an interrupted run saved for other "
                                 "data or settings is discarded and training starts over, instead of stopping (for "
                                 "workflows, which rerun a job because its inputs changed).")
    metrics: str | None = flag(None, "metrics", "Write per-step metrics JSONL here (default: OUTDIR/metrics.jsonl).",
                               metavar="FILE")
    fsdp: bool = flag(False, "fsdp", "Under torchrun with several processes: shard weights, gradients and optimizer "
                      "state (FSDP2) instead of DDP.")
