"""The one training loop (midtrain and aft), nanoGPT-style: read it top to bottom.

Launch:
    msm midtrain docs.jsonl -o ckpt/                                  # one device (GPU if present)
    torchrun --nproc-per-node 8 -m msmtools midtrain docs.jsonl -o ckpt/         # DDP, 8 GPUs
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d \\
        --rdzv-endpoint $HEAD:29500 -m msmtools midtrain docs.jsonl -o ckpt/ --fsdp   # FSDP, 2 nodes
Distributed training is detected from the variables torchrun (or `accelerate launch`) sets.

One optimizer step consumes `rows_per_step` packed rows (`--batch-tokens` / `--seq-len`), dealt to
ranks round-robin and split into micro-batches of `--micro-batch` rows (gradient accumulation). The
row order is a pure function of the seed and the epoch, so a resumed run sees exactly the batches
the uninterrupted run would have. The loss is a sum over target tokens divided by the step's target
count (all ranks, all micro-batches): every token weighs the same however the rows fall.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import attention, checkpoint, flops
from .config import TrainConfig
from .data import IGNORE, Packed

# Dense bf16 tensor-core peaks (FLOP/s) by device name; the first match wins. MFU = FLOPs per token (train/flops.py:
# 6N full, 4N + 6N_adapter for LoRA, plus document-masked attention) x tokens/s / peak.
PEAK_BF16 = (
    ("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12), ("H200", 989e12), ("H800", 989e12),
    ("GH200", 989e12), ("B200", 2250e12), ("B100", 1750e12), ("A100", 312e12), ("A800", 312e12),
    ("L40S", 362e12), ("L4", 121e12), ("A10G", 70e12), ("A10", 125e12), ("RTX 4090", 165e12),
    ("RTX 3090", 71e12), ("V100", 125e12), ("MI300X", 1307e12), ("MI250X", 383e12),
)


def peak_flops(device: Any) -> float | None:
    import torch

    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16 if k in name), None)


@dataclass
class Dist:
    """Process group facts from the launcher's environment (torchrun / accelerate launch)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Dist:
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()


@dataclass
class Job:
    """Everything the loop needs; built by `msmtools.train.stage` from the command line."""

    stage: str
    cfg: TrainConfig
    model_path: str
    packed: Packed
    tokenizer: Any
    out: Path
    metrics: Path
    record: dict[str, Any]  # the checkpoint record's fields known before training
    resume: bool = False
    adapter_from: str | None = None
    fsdp: bool = False
    trust_remote_code: bool = False
    allow_pickle: bool = False
    progress: bool = True
    fingerprint: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# --- the plan ---------------------------------------------------------------------------------


class Schedule:
    """Which packed rows each optimizer step trains on: seeded permutation per epoch, cut into steps."""

    def __init__(self, packed: Packed, cfg: TrainConfig, world: int):
        self.packed = packed
        self.unit = unit = world * cfg.micro_batch
        want = max(1, cfg.batch_tokens // packed.seq_len)
        self.rows_per_step = math.ceil(want / unit) * unit
        self.stream = np.concatenate([np.random.default_rng([cfg.seed, e]).permutation(packed.rows)
                                      for e in range(cfg.epochs)])
        steps = math.ceil(len(self.stream) / self.rows_per_step)
        self.steps = min(steps, cfg.max_steps) if cfg.max_steps else steps
        c = packed.corpus
        real = c.lengths()
        tgt = real - 1 if c.train is None else np.add.reduceat(c.train.astype(np.int64), c.offsets[:-1])
        self.row_real = np.array([int(real[b].sum()) for b in packed.bins], dtype=np.int64)
        self.row_tgt = np.array([int(tgt[b].sum()) for b in packed.bins], dtype=np.int64)

    def rows(self, step: int) -> list[int]:
        return self.stream[step * self.rows_per_step:(step + 1) * self.rows_per_step].tolist()

    def for_rank(self, step: int, rank: int, world: int) -> list[int | None]:
        rows: list[int | None] = list(self.rows(step))
        # A short last step: all-padding rows up to whole micro-batches on every rank (fixed shapes, and
        # every rank runs the same number of backward passes).
        rows += [None] * (-len(rows) % self.unit)
        return rows[rank::world]

    def counts(self, step: int) -> tuple[int, int]:
        r = self.rows(step)
        return int(self.row_real[r].sum()), int(self.row_tgt[r].sum())

    def batch_sha(self, step: int) -> str:
        return hashlib.sha256(json.dumps(self.rows(step)).encode()).hexdigest()[:16]


def lr_lambda(cfg: TrainConfig, total: int):
    warm = math.ceil(cfg.warmup_ratio * total) if cfg.warmup_ratio > 0 else 0

    def f(s: int) -> float:
        if s < warm:
            return (s + 1) / warm
        progress = (s - warm) / max(1, total - warm)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return f


# --- model ------------------------------------------------------------------------------------


def load_model(job: Job, device: Any, dtype: Any, attn_name: str) -> Any:
    import torch

    from .. import models
    from ..errors import MsmError

    model = models.load_model(job.model_path, dtype=dtype, device=str(device), attn_implementation=attn_name,
                              trust_remote_code=job.trust_remote_code, allow_pickle=job.allow_pickle)
    model.config.use_cache = False
    cfg = job.cfg
    if cfg.grad_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.full:
        if job.adapter_from:
            raise MsmError("--full cannot continue a LoRA adapter; train full on the merged model instead")
        model.float() if dtype == torch.float32 else None
        return model
    torch.manual_seed(cfg.seed)  # LoRA init
    if job.adapter_from:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, job.adapter_from, is_trainable=True)
    else:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                                 target_modules=list(cfg.lora_targets), task_type="CAUSAL_LM"))
    return model


def decoder_layers(model: Any) -> Any:
    """The model's list of transformer blocks (compiled one by one: one graph, reused by every layer)."""
    import torch

    n = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for mod in model.modules():
        if isinstance(mod, torch.nn.ModuleList) and len(mod) == n and len({type(m) for m in mod}) == 1:
            return mod
    return None


def token_loss_sum(logits: Any, targets: Any) -> Any:
    import torch.nn.functional as F

    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE, reduction="sum")


def weights_digest(model: Any, full: dict[str, Any] | None = None) -> str:
    """Hash of the trainable weights (this rank's view; under FSDP the gathered full weights on rank 0,
    and each rank's own shard elsewhere, so only DDP/single runs compare across ranks)."""
    h = hashlib.sha256()
    for n, p in sorted(model.named_parameters()):
        if p.requires_grad:
            t = full[n] if full else (p.to_local() if hasattr(p, "to_local") else p)
            h.update(n.encode())
            h.update(t.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


# --- the loop ---------------------------------------------------------------------------------


class _Restart(Exception):
    """--resume --restart-changed met state saved for other data or settings: start over without it."""

    def __init__(self, work: Path):
        self.work = work


def run(job: Job) -> dict[str, Any] | None:
    """Train; return the checkpoint record on rank 0 (None on other ranks)."""
    try:
        return _run(job)
    except _Restart as r:
        import dataclasses
        import shutil

        if Dist.from_env().main:
            print(f"msm: {r.work}: saved for other data or settings; --restart-changed: starting over",
                  file=sys.stderr, flush=True)
            shutil.rmtree(r.work, ignore_errors=True)
        return _run(dataclasses.replace(job, resume=False))


def _run(job: Job) -> dict[str, Any] | None:
    import torch

    cfg, packed = job.cfg, job.packed
    dist = Dist.from_env()
    if torch.cuda.is_available():
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        device = torch.device("cpu")
    if dist.world > 1:
        import torch.distributed as tdist

        if not tdist.is_initialized():
            tdist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if dist.main else (lambda msg: None)

    bf16 = cfg.bf16 if cfg.bf16 is not None else device.type == "cuda"
    # LoRA: frozen base in bf16, adapters in fp32 (peft). Full: fp32 master weights, bf16 autocast.
    dtype = torch.bfloat16 if (bf16 and not cfg.full) else torch.float32
    impl = attention.choose(cfg.attn, device.type)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    model = load_model(job, device, dtype, attention.hf_name(impl))
    save_dtype = getattr(model.config, "dtype", None) or torch.bfloat16
    if isinstance(save_dtype, str):
        save_dtype = getattr(torch, save_dtype)

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    if bf16 and not cfg.full:  # autocast already runs LoRA matmuls in bf16: skip peft's fp32 input copies
        from peft.tuners.tuners_utils import BaseTunerLayer

        for m in model.modules():
            if isinstance(m, BaseTunerLayer):
                m.cast_input_dtype_enabled = False

    window = attention.sliding_window(model.config)  # flex: sliding-window layers get their own document mask
    isolated = attention.check_isolation(model, impl, packed.pad_id, device, autocast)
    if not isolated and dist.main:
        attention.warn_crossing(impl)

    n_params = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen, trainable = flops.matmul_params(model)
    fpt = flops.flops_per_token(model.config, frozen, trainable, full=cfg.full, isolated=isolated, seq_len=packed.seq_len,
                                doc_lengths=np.minimum(packed.corpus.lengths(), packed.seq_len))

    # Compile (each decoder layer: one graph reused by all), then wrap for DDP/FSDP, then the optimizer
    # (FSDP replaces parameters with shards, so the optimizer must see the wrapped ones).
    fwd_model = model
    if cfg.compile:
        import torch._dynamo

        for knob in ("cache_size_limit", "recompile_limit"):  # one graph per layer is the goal; never fall back
            if hasattr(torch._dynamo.config, knob):
                setattr(torch._dynamo.config, knob, max(64, getattr(torch._dynamo.config, knob)))
        layers = decoder_layers(model)
        if layers is None:
            fwd_model = torch.compile(model)
        else:
            for layer in layers:
                layer.compile()
    loss_fn = torch.compile(token_loss_sum) if cfg.compile else token_loss_sum
    ddp = None
    fsdp = dist.world > 1 and job.fsdp
    if fsdp:
        fwd_model = _fsdp_wrap(model, bf16)
    elif dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ddp = fwd_model = DDP(fwd_model, device_ids=[device.index] if device.type == "cuda" else None)

    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, betas=(cfg.adam_beta1, cfg.adam_beta2),
                            fused=device.type == "cuda")
    sched_plan = Schedule(packed, cfg, dist.world)
    total = sched_plan.steps
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg, total))

    # Resume: weights, optimizer, scheduler, RNG and the step (which fixes the data position).
    work = checkpoint.work_dir_for(job.out)
    start, tokens_done, last_loss = 0, 0, None
    if job.resume:
        checkpoint.clean_partial(work) if dist.main else None
        dist.barrier()
        st = checkpoint.latest_state(work)
        if st is not None:
            meta = checkpoint.load_state(st, model, opt, sched, fsdp=fsdp)
            if meta.get("fingerprint") != job.fingerprint:
                from ..errors import MsmError

                if not job.extra.get("restart_changed"):
                    raise MsmError(f"{st}: saved for a different run (data or settings changed); remove {work} to "
                                   "start over (or pass --restart-changed)")
                # The loaded state is thrown away with the model and optimizer it filled: rebuild both.
                raise _Restart(work)
            start, tokens_done, last_loss = meta["step"], meta["tokens"], meta.get("loss")
            log(f"msm: resuming from {st.name} (step {start} of {total})")
    if dist.main:
        _prepare_metrics(job.metrics, start)

    peak = peak_flops(device)
    stats = packed.stats()
    log(f"msm: {job.stage}: {stats['items']} items, {stats['real_tokens']:,} tokens in {stats['rows']} rows of "
        f"{packed.seq_len} ({stats['padding_fraction']:.2%} padding, {stats['truncated_tokens']:,} tokens truncated, "
        f"{stats['dropped_items']} items dropped)")
    log(f"msm: {n_params / 1e6:.1f}M parameters, {n_train / 1e6:.2f}M trainable ({'full' if cfg.full else 'LoRA'}); "
        f"{total} steps x {sched_plan.rows_per_step} rows; attention {impl} "
        f"({'documents kept apart' if isolated else 'documents NOT kept apart'}); {dist.world} x {device.type}"
        f"{'; bf16' if bf16 else ''}{'; compiled' if cfg.compile else ''}")
    if dist.main:
        _append(job.metrics, {"kind": "train_start", "stage": job.stage, "steps": total, "start_step": start,
                              "rows_per_step": sched_plan.rows_per_step, "params": n_params, "trainable": n_train,
                              "attention": impl, "attention_isolated": isolated, "world_size": dist.world,
                              "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                              "peak_flops": peak, "flops_per_token": fpt, **stats})

    model.train()
    log_every = max(1, total // 50)
    t_run = time.perf_counter()
    for step in range(start, total):
        t0 = time.perf_counter()
        real, n_tgt = sched_plan.counts(step)
        mine = sched_plan.for_rank(step, dist.rank, dist.world)
        chunks = [mine[i:i + cfg.micro_batch] for i in range(0, len(mine), cfg.micro_batch)]
        loss_sum = torch.zeros((), device=device)
        for k, rows in enumerate(chunks):
            arrays = packed.batch(rows)
            kw = attention.model_inputs(impl, arrays, device, window)
            targets = torch.as_tensor(arrays["targets"]).to(device, non_blocking=True)
            sync = ddp.no_sync() if ddp is not None and k < len(chunks) - 1 else contextlib.nullcontext()
            with sync:
                with autocast():
                    logits = fwd_model(**kw).logits
                    ls = loss_fn(logits, targets)
                (ls * (dist.world / max(1, n_tgt))).backward()
            loss_sum += ls.detach()
            del logits, ls
        if dist.world > 1:
            import torch.distributed as tdist

            tdist.all_reduce(loss_sum)
        gnorm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip) if cfg.grad_clip > 0 else None
        opt.step()
        lr = sched.get_last_lr()[0]
        sched.step()
        opt.zero_grad(set_to_none=True)
        loss = loss_sum.item() / max(1, n_tgt)
        dt = time.perf_counter() - t0
        tokens_done += real
        last_loss = loss
        tps = real / dt
        rec = {"kind": "train_step", "stage": job.stage, "step": step + 1, "steps": total, "loss": round(loss, 6),
               "lr": lr, "grad_norm": None if gnorm is None else round(float(gnorm), 6), "tokens": real,
               "target_tokens": n_tgt, "tokens_total": tokens_done, "step_time_s": round(dt, 4),
               "tokens_per_s": round(tps, 1),
               "mfu": None if peak is None else round(flops.mfu(fpt["total"], tps, peak, dist.world), 4),
               "peak_mem_gb": _peak_mem(device), "batch_sha": sched_plan.batch_sha(step)}
        if dist.main:
            _append(job.metrics, rec)
            if step == start or (step + 1) % log_every == 0 or step + 1 == total:
                mfu = f" | mfu {rec['mfu']:.1%}" if rec["mfu"] is not None else ""
                log(f"step {step + 1}/{total} | loss {loss:.4f} | lr {lr:.2e} | {f'{tps / 1e3:.1f}k' if tps >= 1e3 else f'{tps:.0f}'} tok/s{mfu} | "
                    f"mem {rec['peak_mem_gb']:.1f} GB")
        if cfg_save_due(job, step + 1, total):
            checkpoint.save_state(work, step + 1, model, opt, sched,
                                  {"fingerprint": job.fingerprint, "tokens": tokens_done, "loss": loss,
                                   "batch_sha": rec["batch_sha"]}, main=dist.main, fsdp=fsdp)
            dist.barrier()
        checkpoint._fault("kill-after-step", step + 1)

    elapsed = time.perf_counter() - t_run
    full_state = checkpoint.full_state(model) if fsdp else None  # collective: every rank takes part
    digest = weights_digest(model, full_state)
    digests = [digest]
    if dist.world > 1 and not fsdp:  # DDP replicas must agree bit for bit
        import torch.distributed as tdist

        digests = [None] * dist.world
        tdist.all_gather_object(digests, digest)
    if len(set(digests)) > 1:
        log(f"msm: warning: ranks ended with different weights: {digests}")
    record = None
    if dist.main:
        _append(job.metrics, {"kind": "train_end", "stage": job.stage, "steps": total, "tokens": tokens_done,
                              "loss": last_loss, "elapsed_s": round(elapsed, 2), "weights_sha_by_rank": digests})
        record = {**job.record, "tokens": tokens_done, "steps": total, "loss": last_loss,
                  "attention": impl, "attention_isolated": isolated, "world_size": dist.world,
                  "target_tokens": int(sum(sched_plan.counts(s)[1] for s in range(total))),
                  "padding_fraction": round(stats["padding_fraction"], 6),
                  "truncated_tokens": stats["truncated_tokens"], "dropped_items": stats["dropped_items"]}
        checkpoint.save_final(job.out, model, job.tokenizer, adapter=not cfg.full, dtype=save_dtype, record=record,
                              metrics=job.metrics, state_dict=full_state)
        import shutil

        shutil.rmtree(work, ignore_errors=True)  # the states (and default metrics file) served their purpose
    dist.barrier()
    if dist.world > 1:
        import torch.distributed as tdist

        tdist.destroy_process_group()
    return record


def cfg_save_due(job: Job, done: int, total: int) -> bool:
    every = job.extra.get("save_every", 0)
    return bool(every) and done % every == 0 and done < total


def _fsdp_wrap(model: Any, bf16: bool) -> Any:
    """FSDP2: shard every decoder layer, then the root; parameter names stay as they were."""
    import torch
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 else MixedPrecisionPolicy()
    for layer in decoder_layers(model) or ():
        fully_shard(layer, mp_policy=mp)
    fully_shard(model, mp_policy=mp)
    return model


def _peak_mem(device: Any) -> float:
    import torch

    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**30, 3)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)


def _prepare_metrics(path: Path, keep_until: int) -> None:
    """Start the metrics file, or on resume keep only what the restored state had already logged."""
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = []
    if keep_until and path.exists():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if rec.get("kind") != "train_step" or rec.get("step", 0) <= keep_until:
                kept.append(line)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(f"{k}\n" for k in kept))
    os.replace(tmp, path)


def _append(path: Path, rec: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(rec) + "\n")
