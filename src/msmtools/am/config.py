"""The eval run's settings, rollout ids, its backends, and where error records go."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import jsonl
from ..errors import MsmError
from ..ids import stable_id
from ..llm import registry
from ..llm.options import GenOptions
from .conditions import Condition
from .render import PromptOptions
from .variants import Variant

HARMFUL_MODES = ("gate-and-grader", "grader", "gate")
MAX_SAMPLES = 100_000  # per condition and variant
MAX_ROLLOUTS = 10_000_000  # in one plan (ids are computed for every planned sample)
GRADE_MODES = ("all", "gated", "none")


@dataclass
class EvalConfig:
    variants: list[Variant]
    conditions: list[Condition]
    options: PromptOptions = field(default_factory=PromptOptions)
    samples: int = 300
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 4096
    seed: int = 0
    gen: GenOptions = field(default_factory=GenOptions)  # how the evaluated models run
    grader_model: str | None = None  # default: the first variant's base model
    grader_gen: GenOptions | None = None  # how the grader runs (default: as gen)
    grader_max_tokens: int | None = None  # default: max_tokens
    grader_temperature: float = 0.0
    grader_retry_temperature: float = 0.7
    grader_top_p: float = 1.0
    grade: str = "all"
    harmful_mode: str = "gate-and-grader"
    output: str = "-"
    rejects: str | None = None
    shard: jsonl.Shard = field(default_factory=jsonl.Shard)
    chunk_size: int = 256
    scenario_dir: str | None = None
    cache: str | None = None
    progress: bool = True

    def check(self) -> None:
        if self.samples < 1:
            raise MsmError("--samples: must be at least 1")
        if self.samples > MAX_SAMPLES:
            raise MsmError(f"--samples {self.samples:,}: more than {MAX_SAMPLES:,} samples per condition is surely a "
                           "typo (the paper uses 300)")
        total = self.samples * len(self.conditions) * len(self.variants)
        if total > MAX_ROLLOUTS:
            raise MsmError(f"{self.samples:,} samples x {len(self.conditions)} conditions x {len(self.variants)} "
                           f"variants = {total:,} rollouts: more than {MAX_ROLLOUTS:,} in one plan; split the "
                           "conditions or variants over several runs")
        if self.max_tokens < 1 or (self.grader_max_tokens is not None and self.grader_max_tokens < 1):
            raise MsmError("--max-tokens / --grader-max-tokens: must be at least 1")
        if self.temperature < 0 or self.grader_temperature < 0:
            raise MsmError("--temperature / --grader-temperature: must not be negative")
        if not 0 < self.top_p <= 1:
            raise MsmError("--top-p: must be in (0, 1]")
        if self.harmful_mode not in HARMFUL_MODES:
            raise MsmError(f"--harmful {self.harmful_mode}: expected one of {', '.join(HARMFUL_MODES)}")
        if self.grade not in GRADE_MODES:
            raise MsmError(f"--grade {self.grade}: expected one of {', '.join(GRADE_MODES)}")
        if self.chunk_size < 1:
            raise MsmError("--chunk-size: must be at least 1")

    @property
    def sampling_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens}

    @property
    def grader_model_name(self) -> str:
        return self.grader_model or self.variants[0].base

    @property
    def backend(self) -> str:
        return self.gen.backend

    @property
    def grader_opts(self) -> GenOptions:
        return self.grader_gen or self.gen

    @property
    def grader_backend_name(self) -> str:
        return self.grader_opts.backend

    def self_graded(self, rec: dict[str, Any]) -> bool:
        """Whether the grader is the evaluated model itself (its base; adapters off)."""
        base = (rec.get("model") or {}).get("base")
        return base is not None and models_same(self.grader_model_name, base)


def default_chunk(gen: GenOptions) -> int:
    """Sequences per chunk: one batch of a backend that generates in fixed batches (hf), or enough to keep
    every slot of a continuously batching one (vllm, a server) busy through a chunk's tail."""
    if gen.capabilities.fixed_batches:
        return gen.batch_size
    return max(256, 4 * gen.concurrency)


def models_same(a: str, b: str) -> bool:
    """Whether two model names (ids, 'default' or folders, compared resolved) name the same model."""
    def norm(x: str) -> str:
        p = Path(x).expanduser()
        return str(p.resolve()) if p.exists() else x

    return norm(a) == norm(b)


def rollout_id(v: Variant, cond: Condition, options: PromptOptions, sample: int, seed: int) -> str:
    """Stable over reruns and shards: the variant, the condition, the agent's name, the sample and its seed."""
    return stable_id("am-rollout", v.label, v.base, v.adapter, cond.id, options.model_name, options.weigh_values,
                     sample, seed)


class Backends(registry.Backends):
    """The evaluated models' backends and the grader's, from the shared registry (one per model and settings)."""

    def __init__(self, cfg: EvalConfig):
        super().__init__(progress=cfg.progress, cache=cfg.cache, chunk_size=cfg.chunk_size)
        self.cfg = cfg

    def generator(self, base: str) -> Any:
        return self.get(self.cfg.gen, base)

    def grader(self) -> Any:
        return self.get(self.cfg.grader_opts, self.cfg.grader_model_name)

    def release(self, keep: Any) -> None:
        """Free every backend except `keep` (and the grader's, if it is already built)."""
        from ..llm.registry import _key

        grader = self._made.get(_key(self.cfg.grader_opts, self.cfg.grader_model_name))
        super().release([keep, *([grader] if grader is not None else [])])


def log(cfg: EvalConfig, msg: str) -> None:
    if cfg.progress:
        print(f"msm: am-eval: {msg}", file=sys.stderr)
