"""Checkpoints: resumable training state, and the final folder other tools load.

Training state lives in a work folder beside the output (`.<name>.train/`): `step-00000120/` holds
the trainable weights (safetensors), optimizer, scheduler, RNG states and the data position. A save
writes a temporary folder and renames it into place, so a kill mid-save leaves the previous state
whole; only after the rename is the older state removed.

The final output is a standard folder: a peft adapter (adapter_config.json + adapter_model.safetensors)
or full safetensors weights with config, plus the tokenizer and `msm_checkpoint.json` (the record).
It is also written to a temporary folder and renamed, so it exists complete or not at all.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

RECORD_FILE = "msm_checkpoint.json"
_STEP_DIR = re.compile(r"^step-(\d{8})$")


def work_dir_for(out: Path) -> Path:
    return out.parent / f".{out.name}.train"


def _fault(kind: str, step: int) -> None:
    """Test hook (MSM_TRAIN_FAULT=kind:step): SIGKILL this process at a chosen point."""
    spec = os.environ.get("MSM_TRAIN_FAULT", "")
    if spec and spec == f"{kind}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)


def _mkdtemp(prefix: str, dir: Path) -> Path:
    """A temporary folder with the permissions a plain mkdir would give (mkdtemp makes it 0700)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=dir))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    return tmp


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for p in path.iterdir():
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(path)


def trainable_state(model: Any) -> dict[str, Any]:
    """Trainable parameters by name, as contiguous CPU tensors (for safetensors)."""
    return {n: p.detach().to("cpu").contiguous() for n, p in model.named_parameters() if p.requires_grad}


def rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def full_state(model: Any) -> dict[str, Any]:
    """FSDP: the whole model's weights gathered to rank 0 (empty elsewhere). Every rank must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def save_state(work: Path, step: int, model: Any, optimizer: Any, scheduler: Any, meta: dict[str, Any], *,
               main: bool = True, fsdp: bool = False) -> Path | None:
    """Write `step-XXXXXXXX/` atomically, then drop older states. Under FSDP every rank calls this
    (gathering is collective) and rank 0 writes."""
    import torch
    from safetensors.torch import save_file

    if fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        full = full_state(model)
        weights = {n: full[n].contiguous() for n, p in model.named_parameters() if p.requires_grad and n in full}
        optim = get_optimizer_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    else:
        weights, optim = trainable_state(model), optimizer.state_dict()
    if not main:
        return None
    work.mkdir(parents=True, exist_ok=True)
    tmp = _mkdtemp(f".step-{step:08d}.", work)
    save_file(weights, str(tmp / "trainable.safetensors"))
    _fault("kill-in-save", step)
    torch.save({"optimizer": optim, "scheduler": scheduler.state_dict(), "rng": rng_state()}, tmp / "optim.pt")
    (tmp / "state.json").write_text(json.dumps({**meta, "step": step, "fsdp": fsdp}, indent=1))
    _fsync_tree(tmp)
    final = work / f"step-{step:08d}"
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(work)
    for old in states(work):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def states(work: Path) -> list[Path]:
    """Complete saved states, oldest first (temporary folders from an interrupted save are ignored)."""
    if not work.is_dir():
        return []
    return sorted(p for p in work.iterdir() if p.is_dir() and _STEP_DIR.match(p.name) and (p / "state.json").exists())


def latest_state(work: Path) -> Path | None:
    found = states(work)
    return found[-1] if found else None


def clean_partial(work: Path) -> None:
    """Remove temporary folders left by a save that was killed."""
    if work.is_dir():
        for p in work.iterdir():
            if p.name.startswith(".step-") and p.name.endswith(".tmp"):
                shutil.rmtree(p, ignore_errors=True)


def load_state(path: Path, model: Any, optimizer: Any, scheduler: Any, *, fsdp: bool = False) -> dict[str, Any]:
    """Restore weights, optimizer, scheduler and RNG from a saved state; returns its meta (step, ...)."""
    import torch
    from safetensors.torch import load_file

    weights = load_file(str(path / "trainable.safetensors"))
    meta = json.loads((path / "state.json").read_text())
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    if names != set(weights) or bool(meta.get("fsdp")) != fsdp:
        raise RuntimeError(f"{path}: saved weights do not match the model (or FSDP was switched)")
    st = torch.load(path / "optim.pt", map_location="cpu", weights_only=False)
    if fsdp:
        from torch.distributed.checkpoint.state_dict import (StateDictOptions, set_model_state_dict,
                                                             set_optimizer_state_dict)

        opts = StateDictOptions(full_state_dict=True, strict=False)
        set_model_state_dict(model, weights, options=opts)
        set_optimizer_state_dict(model, optimizer, optim_state_dict=st["optimizer"], options=opts)
    else:
        params = dict(model.named_parameters())
        with torch.no_grad():
            for n, w in weights.items():
                params[n].copy_(w.to(params[n].device, params[n].dtype))
        optimizer.load_state_dict(st["optimizer"])
    scheduler.load_state_dict(st["scheduler"])
    set_rng_state(st["rng"])
    return meta


def save_final(out: Path, model: Any, tokenizer: Any, *, adapter: bool, dtype: Any, record: dict[str, Any],
               metrics: Path | None, state_dict: dict[str, Any] | None = None) -> None:
    """Write the final folder atomically: adapter or full weights, tokenizer, record, metrics.
    `state_dict`: the gathered weights when the model is sharded (FSDP)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _mkdtemp(f".{out.name}.", out.parent)
    try:
        if adapter:
            model.save_pretrained(str(tmp), **({"state_dict": state_dict} if state_dict else {}))
        else:
            if hasattr(model, "set_attn_implementation"):
                model.set_attn_implementation("sdpa")
            if state_dict:
                sd = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state_dict.items()}
                model.save_pretrained(str(tmp), state_dict=sd, safe_serialization=True)
            else:
                model.to(dtype).save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        if metrics is not None and metrics.exists():
            shutil.copyfile(metrics, tmp / "metrics.jsonl")
        (tmp / RECORD_FILE).write_text(json.dumps(record, indent=1) + "\n")
        _fsync_tree(tmp)
        os.replace(tmp, out)
        _fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_record(source: str) -> dict[str, Any]:
    """A checkpoint record from `-` (stdin, the piped output of midtrain), a JSON/JSONL file, or a folder."""
    import sys

    from ..errors import MsmError

    if source == "-":
        text = sys.stdin.read()
        where = "<stdin>"
    else:
        p = Path(source)
        if p.is_dir():
            p = p / RECORD_FILE
        if not p.exists():
            raise MsmError(f"--from {source}: no such checkpoint record or folder")
        text, where = p.read_text(), str(p)
    recs = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            try:
                recs.append(json.loads(line))
            except json.JSONDecodeError:
                recs = []
                break
    if not recs:
        try:
            recs = [json.loads(text)]
        except json.JSONDecodeError:
            raise MsmError(f"--from {where}: not a checkpoint record (invalid JSON)") from None
    recs = [r for r in recs if isinstance(r, dict) and r.get("kind") == "checkpoint"]
    if len(recs) != 1:
        raise MsmError(f"--from {where}: expected exactly one checkpoint record, found {len(recs)}")
    rec = recs[0]
    for key, typ in (("path", str), ("base_model", str), ("adapter", bool)):
        if key not in rec:
            raise MsmError(f"--from {where}: checkpoint record has no '{key}'")
        if not isinstance(rec[key], typ):
            raise MsmError(f"--from {where}: {key}: expected {typ.__name__}, got {type(rec[key]).__name__}")
    if not Path(rec["path"]).is_dir():
        raise MsmError(f"--from {where}: checkpoint folder {rec['path']} does not exist")
    if rec["adapter"]:
        cfg = Path(rec["path"]) / "adapter_config.json"
        try:
            lc = json.loads(cfg.read_text())
            int(lc["r"]), int(lc["lora_alpha"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise MsmError(f"--from {where}: the adapter in {rec['path']} has no readable adapter_config.json "
                           f"with r and lora_alpha ({type(e).__name__})") from None
    return rec
