"""How to run a model, as one typed config: every generating command's backend flags come from here.

`GenOptions` is the single definition of each knob (its flag, default, type and help, as TRL's config
dataclasses are); `generation_options("grader")` adds the flags to a typer command for the main role
and for each named role. A role's flags carry its prefix (`--grader-concurrency`) and default to the
main role's value, plus `--<role>-model`. The command receives `gen`, a dict role -> `Role` (the model
name, if the role names one, and its `GenOptions`). So a knob means the same on every command, and adding
one is one line here.
"""

from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import dataclass, field, fields, replace
from typing import Annotated, Any

from . import backends


def _f(default: Any, flag: str, help: str, *, metavar: str | None = None, shared: bool = False,
       short: str | None = None, envvar: str | None = None, minimum: float | None = None) -> Any:
    return field(default=default, metadata={"flag": flag, "help": help, "metavar": metavar, "shared": shared,
                                            "short": short, "envvar": envvar, "min": minimum})


@dataclass(frozen=True)
class GenOptions:
    """How a model runs: which backend, and that backend's scale and safety settings."""

    backend: str = _f("hf", "backend", f"Generation backend: {backends.choices_help()}.",
                      metavar="|".join(backends.names()), short="-b")
    base_url: str | None = _f(None, "base-url", "openai: server URL, e.g. http://127.0.0.1:8000/v1 (env "
                              "MSM_OPENAI_BASE_URL).", metavar="URL", envvar="MSM_OPENAI_BASE_URL")
    api_key_env: str = _f("OPENAI_API_KEY", "api-key-env", "openai: the environment variable holding the API key "
                          "(the key is sent only in the Authorization header, never logged or recorded).", metavar="VAR")
    concurrency: int = _f(32, "concurrency", "openai: requests in flight at once (a vllm serve batches whatever is "
                          "in flight: hundreds for a large run).", minimum=1)
    timeout: float = _f(600.0, "timeout", "openai: seconds to wait for each answer (sized for 4,096-token replies "
                        "from a 32B model); a request that times out is retried.", metavar="SECONDS", minimum=0.001)
    retries: int = _f(3, "retries", "openai: retries of a request after a connection error, timeout, HTTP 429 or "
                      "5xx (jittered backoff, Retry-After honoured).", minimum=0)
    batch_size: int = _f(16, "batch-size", "hf: sequences generated together in one forward batch.", minimum=1)
    tensor_parallel_size: int = _f(1, "tensor-parallel-size", "vllm: GPUs to split the model over.", minimum=1)
    max_model_len: int | None = _f(None, "max-model-len", "vllm: context length to reserve (default: the model's).",
                                   minimum=1)
    gpu_memory_utilization: float | None = _f(None, "gpu-memory-utilization", "vllm: share of GPU memory the engine "
                                              "may take (vLLM's default 0.9).", metavar="FRACTION", minimum=0.01)
    max_loras: int = _f(4, "max-loras", "vllm: LoRA adapters held on the GPU at once.", minimum=1)
    max_lora_rank: int = _f(64, "max-lora-rank", "vllm: the largest adapter rank to reserve room for.", minimum=1)
    trust_remote_code: bool = _f(False, "trust-remote-code", "Allow model repositories to run their own Python "
                                 "code.", shared=True)
    allow_pickle: bool = _f(False, "allow-pickle", "Also load pickle weights (pytorch_model.bin), which can run code "
                            "when loaded. Default: safetensors only.", shared=True)

    def backend_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `llm.get_backend` (each backend takes the ones it knows)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "backend"}

    def check(self, role: str = "") -> None:
        if self.backend not in backends.names():
            raise backends.unknown(self.backend, f"--{role + '-' if role else ''}backend")

    @property
    def capabilities(self) -> backends.Capabilities:
        """What the backend can do (`llm.backends`): asked instead of its name."""
        return backends.capabilities(self.backend)


@dataclass(frozen=True)
class Role:
    """One role's model (None: the command's own model) and how it runs."""

    model: str | None
    opts: GenOptions
    explicit: bool = False  # any of the role's own flags was given


def _params(role: str, role_help: str) -> list[inspect.Parameter]:
    import typer

    out = []
    for f in fields(GenOptions):
        m = f.metadata
        if role and m["shared"]:
            continue
        name = f"{role}_{f.name}" if role else f.name
        decls = [f"--{role}-{m['flag']}" if role else f"--{m['flag']}"]
        if m["short"] and not role:
            decls.append(m["short"])
        typ = typing.get_type_hints(GenOptions)[f.name]
        if role:
            typ = typ | None if typ is not bool else bool | None
            default = None
            help = f"--{m['flag']} for the {role} (default: the --{m['flag']} value)."
        else:
            default = f.default
            help = m["help"]
        kw: dict[str, Any] = {"help": help}
        if m["metavar"]:
            kw["metavar"] = m["metavar"]
        if m["envvar"] and not role:
            kw["envvar"] = m["envvar"]
        if m["min"] is not None:
            kw["min"] = m["min"]
        if typ in (bool, bool | None):
            decls = [f"{d}/--no-{d[2:]}" for d in decls[:1]] if role else decls
            kw.pop("min", None)
        out.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                     annotation=Annotated[typ, typer.Option(*decls, **kw)]))
    if role:
        out.append(inspect.Parameter(f"{role}_model", inspect.Parameter.KEYWORD_ONLY, default=None,
                                     annotation=Annotated[str | None, typer.Option(
                                         f"--{role}-model", metavar="MODEL",
                                         help=f"{role_help}: 'default', a folder, a hub id, or a served model "
                                              f"name for openai. Its backend settings are the --{role}-... flags.")]))
    return out


def generation_options(*roles: str, help: dict[str, str] | None = None):
    """Decorator: add the GenOptions flags (main role and `roles`) to a typer command; it receives `gen`."""
    helps = help or {}

    def wrap(fn):
        hints = typing.get_type_hints(fn, include_extras=True)
        sig = inspect.signature(fn)
        own = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values() if p.name != "gen"]
        added = _params("", "")
        for role in roles:
            added += _params(role, helps.get(role, role))

        @functools.wraps(fn)
        def wrapper(*args: Any, **kw: Any) -> Any:
            main = GenOptions(**{f.name: kw.pop(f.name) for f in fields(GenOptions)})
            main.check()
            gen = {"": Role(None, main)}
            for role in roles:
                vals = {f.name: kw.pop(f"{role}_{f.name}") for f in fields(GenOptions) if not f.metadata["shared"]}
                given = {k: v for k, v in vals.items() if v is not None}
                opts = replace(main, **given)
                opts.check(role)
                gen[role] = Role(kw.pop(f"{role}_model"), opts, bool(given))
            return fn(*args, **kw, gen=gen)

        params = own + added
        wrapper.__signature__ = sig.replace(parameters=params)
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        del wrapper.__wrapped__  # typer must read the wrapper's signature, not the function's
        return wrapper

    return wrap
