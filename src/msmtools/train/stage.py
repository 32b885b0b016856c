"""The two stages as functions: check every input, build the packed data, hand a Job to the loop.

All checks (model folder, input records, output folder, leftover state) run before anything is
written, so bad input leaves nothing behind. Only rank 0 prints the checkpoint record.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .. import models
from ..errors import MsmError
from ..ids import stable_id
from . import checkpoint, data
from .config import AftConfig, MidtrainConfig, TrainConfig


def _reprint(output: str, done: dict | None) -> bool:
    """A finished run asked to --resume prints its record again (so pipelines go on) and does nothing else."""
    if done is None:
        return False
    print(f"msm: {output} is already complete; printing its record", file=sys.stderr)
    sys.stdout.write(json.dumps(done) + "\n")
    return True


def _out_paths(output: str, resume: bool, inputs: list[str] = ()) -> tuple[Path, Path, dict | None]:
    """(output folder, work folder, finished record if the output is already complete and --resume).

    Checked before any model or data loads: a bad -o costs nothing."""
    from .. import outputs

    outputs.check([("-o", output)], [("", p) for p in inputs], folders=["-o"])
    out = Path(output).expanduser().resolve()
    work = checkpoint.work_dir_for(out)
    if out.exists():
        rec_file = out / checkpoint.RECORD_FILE
        if resume and rec_file.exists():
            return out, work, json.loads(rec_file.read_text())
        raise MsmError(f"-o {output}: already exists; choose a new folder or remove it")
    if not resume and checkpoint.latest_state(work) is not None:
        raise MsmError(f"-o {output}: an interrupted run left its state in {work}; pass --resume to continue it, "
                       "or remove that folder to start over")
    return out, work, None


def _main_rank() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def _check_cfg(cfg: TrainConfig) -> None:
    for name in ("seq_len", "batch_tokens", "micro_batch", "epochs", "lora_rank"):
        if getattr(cfg, name) < 1:
            raise MsmError(f"--{name.replace('_', '-')} {getattr(cfg, name)}: must be at least 1")
    if cfg.max_steps is not None and cfg.max_steps < 1:
        raise MsmError(f"--max-steps {cfg.max_steps}: must be at least 1")
    import math

    for name in ("lr", "warmup_ratio", "weight_decay", "grad_clip", "lora_dropout"):
        v = getattr(cfg, name, 0.0)
        if v is not None and not math.isfinite(v):
            raise MsmError(f"--{name.replace('_', '-')} {v}: must be a finite number")
    if cfg.lr <= 0:
        raise MsmError(f"--lr {cfg.lr}: must be positive")
    if not 0 <= cfg.warmup_ratio < 1 or cfg.weight_decay < 0 or cfg.grad_clip < 0 or not 0 <= cfg.lora_dropout < 1:
        raise MsmError("--warmup-ratio and --lora-dropout must be in [0, 1); --weight-decay and --grad-clip not negative")
    from .config import ATTN_CHOICES

    if cfg.attn not in ATTN_CHOICES:
        raise MsmError(f"--attn {cfg.attn}: expected one of {', '.join(ATTN_CHOICES)}")


def _clamp_seq_len(cfg: TrainConfig, model_path: str, trust_remote_code: bool) -> None:
    from transformers import AutoConfig

    try:
        mc = AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise MsmError(f"model {model_path}: cannot read its config ({str(e).splitlines()[0]})") from None
    limit = getattr(mc, "max_position_embeddings", None)
    if limit and cfg.seq_len > limit:
        print(f"msm: note: --seq-len {cfg.seq_len} is more than the model's {limit} positions; using {limit}",
              file=sys.stderr)
        cfg.seq_len = int(limit)


def _stop_ids(tok: Any, model_path: str) -> set[int]:
    """Token ids that end generation: the tokenizer's EOS and the model's generation_config EOS."""
    ids = {tok.eos_token_id} if tok.eos_token_id is not None else set()
    gc = Path(model_path) / "generation_config.json"
    if gc.exists():
        eos = json.loads(gc.read_text()).get("eos_token_id")
        ids |= set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    return {int(i) for i in ids if i is not None}


def _finish(job: Any) -> None:
    from . import loop

    rec = loop.run(job)
    if rec is not None:
        sys.stdout.write(json.dumps(rec) + "\n")
        sys.stdout.flush()


def _job(stage: str, cfg: TrainConfig, model: str, model_path: str, packed: data.Packed, tok: Any, out: Path,
         metrics: str | None, label: str | None, dsha: str, resume: bool, save_every: int, fsdp: bool,
         trust_remote_code: bool, adapter_from: str | None = None, extra_record: dict | None = None,
         allow_pickle: bool = False, restart_changed: bool = False) -> Any:
    from .loop import Job

    hp = cfg.hyperparameters()
    rid = stable_id("checkpoint", stage, models.label(model), dsha, hp, (extra_record or {}).get("from"))
    mpath = Path(metrics).expanduser().resolve() if metrics else checkpoint.work_dir_for(out) / "metrics.jsonl"
    final_metrics = mpath if metrics else out / "metrics.jsonl"
    record = {"kind": "checkpoint", "id": rid, "stage": stage, "path": str(out), "base_model": model,
              "model_label": models.label(model), "adapter": not cfg.full, "label": label or out.name,
              "data_sha": dsha, "tokens": None, "steps": None, "loss": None, "config": hp,
              "metrics_path": str(final_metrics), **(extra_record or {})}
    return Job(stage=stage, cfg=cfg, model_path=model_path, packed=packed, tokenizer=tok, out=out, metrics=mpath,
               record=record, resume=resume, adapter_from=adapter_from, fsdp=fsdp, trust_remote_code=trust_remote_code,
               allow_pickle=allow_pickle,
               fingerprint=stable_id(rid, packed.rows, cfg.seq_len), extra={"save_every": save_every,
                                                                            "restart_changed": restart_changed})


def midtrain(inputs: list[str], output: str, model: str, cfg: MidtrainConfig, *, resume: bool = False,
             restart_changed: bool = False, save_every: int = 0, metrics: str | None = None, label: str | None = None, fsdp: bool = False,
             trust_remote_code: bool = False, allow_pickle: bool = False) -> None:
    _check_cfg(cfg)
    out, _, done = _out_paths(output, resume, inputs)
    if _reprint(output, done):
        return
    model_path = models.resolve(model, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    texts = data.read_docs(inputs)
    _clamp_seq_len(cfg, model_path, trust_remote_code)
    tok = models.load_tokenizer(model, trust_remote_code=trust_remote_code)
    corpus = data.tokenize_docs(tok, texts, cfg.seq_len, progress=_main_rank())
    if cfg.train_tokens is not None:
        corpus = data.token_budget(corpus, cfg.train_tokens, cfg.seed)
    packed = data.Packed.pack(corpus, cfg.seq_len, tok.pad_token_id)
    job = _job("midtrain", cfg, model, model_path, packed, tok, out, metrics, label, data.data_sha(texts), resume,
               save_every, fsdp, trust_remote_code, allow_pickle=allow_pickle, restart_changed=restart_changed)
    _finish(job)


def aft(inputs: list[str], output: str | None, model: str | None, cfg: AftConfig, *, from_: str | None = None,
        resume: bool = False, restart_changed: bool = False, save_every: int = 0, metrics: str | None = None,
        label: str | None = None, show_mask: bool = False, fsdp: bool = False, trust_remote_code: bool = False, allow_pickle: bool = False) -> None:
    _check_cfg(cfg)
    if cfg.reasoning not in ("keep", "strip"):
        raise MsmError(f"--reasoning {cfg.reasoning}: expected keep or strip")
    if from_ == "-" and "-" in inputs:
        raise MsmError("--from - reads the checkpoint record from stdin, so the chats must come from a file")
    mixes = data.parse_mix(cfg.mix)
    prev = checkpoint.read_record(from_) if from_ else None
    extra: dict[str, Any] = {}
    adapter_from = None
    if prev is not None:
        if model is not None and model != prev["base_model"]:
            raise MsmError(f"--model {model}: the --from checkpoint was trained on {prev['base_model']}")
        model = prev["base_model"]
        extra["from"] = prev.get("id")
        extra["from_path"] = prev["path"]
        if prev["adapter"]:
            if cfg.full:
                raise MsmError("--full cannot continue a LoRA adapter (the --from checkpoint is an adapter)")
            adapter_from = prev["path"]
            lc = json.loads((Path(prev["path"]) / "adapter_config.json").read_text())
            cfg.lora_rank, cfg.lora_alpha = int(lc["r"]), int(lc["lora_alpha"])
            cfg.lora_dropout = float(lc.get("lora_dropout", 0.0))
            tm = lc.get("target_modules")
            cfg.lora_targets = tuple(sorted(tm)) if isinstance(tm, list) else cfg.lora_targets
    model = model or models.DEFAULT
    out = work = None
    if not show_mask:
        if output is None:
            raise MsmError("-o OUTDIR is required (the checkpoint folder to write)")
        out, work, done = _out_paths(output, resume, [*inputs, from_] if from_ else inputs)
        if _reprint(output, done):
            return
    base_path = models.resolve(model, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    # A full fine-tuned --from checkpoint is itself the model to continue; an adapter sits on the base.
    model_path = prev["path"] if prev is not None and not prev["adapter"] else base_path
    if prev is not None and not prev["adapter"] and not cfg.full:
        model = prev["path"]  # a new adapter on the midtrained weights: that folder is its base model
    chats = data.read_chats(inputs, cfg.reasoning)
    records_for_sha = [c[2] for c in chats]
    if mixes:
        chats, counts = data.mix_in(chats, mixes, cfg.reasoning, cfg.seed)
        extra["mix_counts"] = counts
        records_for_sha = [c[2] for c in chats]
    tok = models.load_tokenizer(model_path, trust_remote_code=trust_remote_code)
    renderer = data.ChatRenderer(tok, _stop_ids(tok, model_path))
    extra["prompt_format"] = renderer.prompt_format  # how the chats were rendered: as the evals prompt this model
    if show_mask:
        name, line, msgs = chats[0]
        ids, mask = renderer(msgs, (name, line))
        n = sum(mask)
        sys.stdout.write(f"# {name}:{line}: {len(ids)} tokens, {n} trained (between ⟦ and ⟧); "
                         f"reasoning={cfg.reasoning}\n")
        sys.stdout.write(data.show_mask(tok, ids, mask) + "\n")
        return
    _clamp_seq_len(cfg, model_path, trust_remote_code)
    corpus = data.tokenize_chats(renderer, chats, cfg.seq_len, progress=_main_rank())
    if cfg.train_tokens is not None:
        corpus = data.token_budget(corpus, cfg.train_tokens, cfg.seed)
    packed = data.Packed.pack(corpus, cfg.seq_len, tok.pad_token_id)
    job = _job("aft", cfg, model, model_path, packed, tok, out, metrics, label, data.data_sha(records_for_sha), resume,
               save_every, fsdp, trust_remote_code, adapter_from=adapter_from, extra_record=extra, allow_pickle=allow_pickle,
               restart_changed=restart_changed)
    _finish(job)
