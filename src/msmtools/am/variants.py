"""Which models an eval run covers: a base model, adapters on it, or checkpoint records from training.

A variant is one (base model, adapter) pair with a label; the label names it in rollout ids, in the
summary and in `compare`. Checkpoint records come from `msm aft` / `msm midtrain`:
an adapter checkpoint evaluates `base_model` + `path`, a full one evaluates `path` itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import jsonl, models
from ..errors import MsmError, at

_GENERIC = {"final", "adapter", "adapters", "best", "last", "latest", "model", "lora", "output", "out"}


@dataclass(frozen=True)
class Variant:
    base: str  # what the backend loads: 'default', a folder, or a hub id
    adapter: str | None  # absolute path of a LoRA adapter folder
    label: str
    training_seed: int | None = None
    stage: str | None = None  # checkpoint stage (aft, midtrain) when it came from a record
    checkpoint: str | None = None  # checkpoint path when it came from a record

    @property
    def shard_key(self) -> str:
        return f"{self.label}|{self.base}|{self.adapter or ''}"


def _norm_model(name: str) -> str:
    p = Path(name).expanduser()
    return str(p.resolve()) if p.exists() else name


def _norm_adapter(path: str, where: str = "--adapter") -> str:
    p = Path(path).expanduser()
    if not p.is_dir():
        raise MsmError(f"{where} {path}: no such folder")
    if not (p / "adapter_config.json").exists():
        raise MsmError(f"{where} {path}: no adapter_config.json (not a PEFT adapter folder)")
    return str(p.resolve())


def derive_label(base: str, adapter: str | None) -> str:
    """A readable label: the adapter folder name (with its parent when the name is generic), else the model's."""
    if adapter is None:
        return models.label(base)
    p = Path(adapter)
    name = p.name
    if name.lower() in _GENERIC or name.startswith("checkpoint"):
        name = f"{p.parent.name}/{name}"
    return name


def from_args(model: str | None, adapters: list[str], labels: list[str]) -> list[Variant]:
    if not model:
        raise MsmError("--model: required (a model, or '-' to read checkpoint records from stdin)")
    base = _norm_model(model)
    if adapters:
        out = [Variant(base, _norm_adapter(a), "") for a in adapters]
    else:
        out = [Variant(base, None, "")]
    return _label(out, labels, model)


def from_checkpoints(path: str, labels: list[str]) -> list[Variant]:
    """Variants from checkpoint JSONL records (`-` = stdin)."""
    out = []
    for name, line, rec in jsonl.read_many([path]):
        where = (name, line)
        if rec.get("kind") != "checkpoint":
            raise at(name, line, "kind", f"expected a checkpoint record (from msm aft or midtrain), got {rec.get('kind')!r}")
        ckpt = jsonl.field(rec, "path", str, where)
        is_adapter = jsonl.field(rec, "adapter", bool, where)
        cfg: Any = rec.get("config") or {}
        seed = cfg.get("seed") if isinstance(cfg, dict) else None
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise at(name, line, "config.seed", f"expected int, got {type(seed).__name__}")
        if is_adapter:
            base = _norm_model(jsonl.field(rec, "base_model", str, where))
            try:
                adapter = _norm_adapter(ckpt, f"{name}:{line}: path")
            except MsmError as e:
                raise MsmError(str(e)) from None
        else:
            base, adapter = _norm_model(ckpt), None
        label = rec.get("label") if isinstance(rec.get("label"), str) and rec.get("label") else ""
        out.append(Variant(base, adapter, label, seed, jsonl.field(rec, "stage", str, where, None), ckpt))
    if not out:
        raise MsmError(f"{jsonl.display_name(path)}: no checkpoint records")
    return _label(out, labels, None)


def _label(variants: list[Variant], labels: list[str], model: str | None) -> list[Variant]:
    if labels and len(labels) != len(variants):
        raise MsmError(f"--label: given {len(labels)} times for {len(variants)} models/adapters (give one per adapter)")
    out = []
    for i, v in enumerate(variants):
        label = labels[i] if labels else v.label or derive_label(model if (model and v.adapter is None) else v.base, v.adapter)
        out.append(Variant(v.base, v.adapter, label, v.training_seed, v.stage, v.checkpoint))
    seen: dict[str, Variant] = {}
    for v in out:
        if v.label in seen and seen[v.label] != v:
            raise MsmError(f"label {v.label!r} names two different models/adapters; give distinct --label values")
        seen[v.label] = v
    return list(dict.fromkeys(out))


def describe(v: Variant) -> dict[str, Any]:
    return {"base": v.base, "adapter": v.adapter, "label": v.label}
