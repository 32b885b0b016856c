"""Every shared CLI option, defined once: typed dataclasses whose fields carry the flag, help and default.

The mechanism `llm.options.GenOptions` started (a config dataclass generates its typer options, as TRL's
config dataclasses generate a CLI), made general:

- `flag(default, "name", "help", short=..., metavar=..., minimum=...)` declares a field with its option
  metadata. A field without a `flag` entry gets `--field-name`; `cli=False` keeps a field off the CLI.
- The groups below hold the options several commands share: `OutputOptions` (-o, --rejects, --format),
  `SelectionOptions` (--shard, --seed), `ModelOptions` (--model, --tokenizer, --from, --adapter, --label,
  the two model-safety flags), `SamplingOptions` (--temperature, --top-p, --max-tokens,
  --judge-max-tokens, --chunk-size) and `RunOptions` (--quiet, --cache, --rubric, --by, --model-name).
- `@shared("output", "seed", ..., output="labels.jsonl")` adds those options to a typer command (the
  command receives each under its field name); a keyword gives a per-command default, allowed only for
  the flags in `PER_COMMAND_DEFAULTS` (tests/test_cli_options.py checks that every flag name has one help
  text, and one default outside that table, across all commands).
- `@config_options(MidtrainConfig)` adds one option per field of a config dataclass and hands the
  command the built config (`cfg`): a training flag is written once, as its config field.

Stdlib only at import (typer is imported when a decorator runs): the training configs import this.
"""

from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Annotated, Any, Callable


def flag(default: Any, flag: str | None, help: str, *, short: str | None = None, metavar: str | None = None,
         minimum: float | None = None, envvar: str | None = None, cli: bool = True, negatable: bool = False,
         show_default: bool = True, **extra: Any) -> Any:
    """A dataclass field that is also a CLI option (`flag` None: --field-name)."""
    meta = {"flag": flag, "help": help, "short": short, "metavar": metavar, "min": minimum, "envvar": envvar,
            "cli": cli, "negatable": negatable, "show_default": show_default, **extra}
    if isinstance(default, (list, tuple, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


# Help texts used by more than one definition (the training configs take SEED_HELP).
SEED_HELP = ("Random seed: every random choice of the command (sampling, data order, LoRA init, the records drawn) "
             "follows from it; the same seed gives the same run.")
FORMATS_HELP = ("What to print: jsonl (records), table (aligned text for people), markdown, csv; spec-render also "
                "text (the rendered specs). Each command names the ones it writes. Default: from the -o extension "
                "(.jsonl .txt .md .csv); on stdout a table on a terminal, jsonl when piped.")


@dataclass(frozen=True)
class OutputOptions:
    """Where results go and in what form."""

    output: str | None = flag("-", "output", "Where the output goes ('-' = stdout): a file in the --format chosen "
                              "(JSONL records where a command has no --format), written atomically or appended as "
                              "the command says; midtrain/aft: the checkpoint folder to create (required).",
                              short="-o", metavar="PATH")
    rejects: str | None = flag(None, "rejects", "Write error records here (default: OUTPUT with .rejects.jsonl; "
                               "stderr summary).", metavar="PATH")
    format: str | None = flag(None, "format", FORMATS_HELP, short="-f", metavar="FORMAT", show_default=False)


@dataclass(frozen=True)
class SelectionOptions:
    """Which part of the work this process does, and its randomness."""

    shard: str | None = flag(None, "shard", "Process only shard i of n (0-based, e.g. 3/16); shard outputs "
                             "concatenate to the full run.", metavar="I/N")
    seed: int = flag(0, "seed", SEED_HELP)


def _gen_help(name: str) -> str:
    from .llm.options import GenOptions

    return next(f.metadata["help"] for f in fields(GenOptions) if f.name == name)


MODEL_HELP = ("'default' (the embedded SmolLM2-135M-Instruct), 'gemma3-270m' (Gemma 3 270M base: just setup-gemma), a local HF folder, a hub id, or a served model name "
              "for --backend openai. Commands that read checkpoint records take '-' for records on stdin; with "
              "--from the checkpoint's base model is used (aft: --model may only repeat it).")
LABEL_HELP = ("The variant's name in records and tables. Training: names the checkpoint (default: the -o folder "
              "name); am-eval, value-eval: one per adapter (default: from the adapter or model name).")


@dataclass(frozen=True)
class ModelOptions:
    """Which model (and adapters, checkpoints) a command loads, and how it is called in records."""

    model: str = flag("default", "model", MODEL_HELP, short="-m", metavar="MODEL")
    tokenizer: str = flag("default", "tokenizer", "Tokenizer for token counts: 'default' (the embedded model's), 'gemma3-270m', "
                          "a folder or hub id; use your training model's.", metavar="MODEL")
    from_: str | None = flag(None, "from", "Checkpoint record(s) of msm midtrain/aft: a record file, or '-' "
                             "(stdin, e.g. piped). aft continues its LoRA adapter (a checkpoint folder works too); "
                             "the evals run each adapter on its base_model, full checkpoints as models.",
                             metavar="RECORD")
    adapter: tuple[str, ...] = flag((), "adapter", "A LoRA adapter folder on --model; repeat to evaluate several "
                                    "in one job (one variant each).", short="-a", metavar="DIR")
    label: str | None = flag(None, "label", LABEL_HELP, metavar="LABEL")
    labels: tuple[str, ...] = flag((), "label", LABEL_HELP, metavar="LABEL")  # the repeatable form (evals)
    trust_remote_code: bool = flag(False, "trust-remote-code", _gen_help("trust_remote_code"))
    allow_pickle: bool = flag(False, "allow-pickle", _gen_help("allow_pickle"))


@dataclass(frozen=True)
class SamplingOptions:
    """How the command's model samples (defaults differ per command: see PER_COMMAND_DEFAULTS)."""

    temperature: float | None = flag(None, "temperature", "Sampling temperature of the command's model.")
    top_p: float | None = flag(None, "top-p", "Nucleus sampling threshold of the command's model.")
    max_tokens: int | None = flag(None, "max-tokens", "Token limit of a model reply; a reply cut off by it is "
                                  "flagged truncated (tag-reasoning: counted invalid).", minimum=1)
    judge_max_tokens: int = flag(512, "judge-max-tokens", "Token limit of a judge reply (its verdict or score, "
                                 "and any reasoning before it).", minimum=16)
    chunk_size: int | None = flag(None, "chunk-size", "Items handed to the backend at a time; the results of each "
                                  "chunk are saved (output, or cache) before the next starts.", minimum=1)


@dataclass(frozen=True)
class RunOptions:
    """How a command reports and where it keeps state."""

    quiet: bool = flag(False, "quiet", "Less on stderr: no progress bars, projections, summaries or notes "
                       "(warnings and errors still print).", short="-q")
    cache: str | None = flag(None, "cache", "Folder of the model-call cache: each call is saved as it returns, so a "
                             "killed run loses nothing and a rerun recomputes nothing; shards must share it. docgen "
                             "always caches (default: .msm-cache beside OUTPUT); am-eval caches only into a folder "
                             "given here.", metavar="DIR")
    rubric: str | None = flag(None, "rubric", "Rubric file the judging step follows, replacing the shipped one: "
                              "tag-reasoning: JSON with pattern tags, lexical cues and the LLM prompt; value-eval "
                              "(judge mode): a prompt with ${question}, ${reference} and ${answer}.", metavar="FILE")
    by: tuple[str, ...] = flag((), "by", "Split (compare) or stratify (label) by this record field too (condition, "
                               "scenario, goal_type, goal_value, urgency_type, training_seed, ...). Repeatable.",
                               metavar="FIELD", show_default=False)
    model_name: str | None = flag(None, "model-name", "The assistant's name written into the text: spec-render "
                                  "fills the spec's {model_name}; am-eval names the agent in the prompts (its email "
                                  "address and weights path follow it).", metavar="NAME")


GROUPS = (OutputOptions, SelectionOptions, ModelOptions, SamplingOptions, RunOptions)

# Flags whose default is the command's own (typer shows it in each --help). Everything else has one default.
PER_COMMAND_DEFAULTS = {
    "output": "'-' (stdout) for record-writing commands; midtrain/aft: none (-o is required); label: labels.jsonl",
    "temperature": "docgen: 1.0 (0.7 for --model default); am-eval: 0.7 (the paper); value-eval, tag-reasoning: 0",
    "top_p": "docgen: 1.0 (0.9 for --model default); am-eval: 1.0",
    "max_tokens": "am-eval: 4096 (512 for --model default); value-eval: 256; tag-reasoning: 512",
    "chunk_size": "docgen, value-eval: 64; tag-reasoning: 32; am-eval: --batch-size for hf, else 256",
    "model_name": "spec-render: Qwen; am-eval: Alex",
}


def _catalog() -> dict[str, tuple[type, Any]]:
    out: dict[str, tuple[type, Any]] = {}
    for cls in GROUPS:
        for f in fields(cls):
            out[f.name] = (cls, f)
    return out


def field_default(f: Any) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return MISSING


def parameter(cls: type, f: Any, *, name: str | None = None, default: Any = MISSING) -> inspect.Parameter:
    """The typer parameter of one dataclass field (its flag metadata; `default` overrides the field's)."""
    import typer

    m = f.metadata
    long = f"--{m.get('flag') or f.name.replace('_', '-')}"
    typ = typing.get_type_hints(cls)[f.name]
    value = field_default(f) if default is MISSING else default
    repeat = typing.get_origin(typ) is tuple
    if repeat:  # a repeatable option: typer hands a list (None when not given)
        typ, value = list[str] | None, (list(value) or None) if value is not None else None
    decls = [f"{long}/--no-{long[2:]}" if m.get("negatable") or typ == (bool | None) else long]
    if m.get("short"):
        decls.append(m["short"])
    kw: dict[str, Any] = {"help": m["help"]}
    for key, opt in (("metavar", "metavar"), ("min", "min"), ("envvar", "envvar")):
        if m.get(key) is not None and not (key == "min" and typ in (bool, bool | None)):
            kw[opt] = m[key]
    if not m.get("show_default", True) or typ == (bool | None):
        kw["show_default"] = False
    return inspect.Parameter(name or f.name, inspect.Parameter.KEYWORD_ONLY, default=value,
                             annotation=Annotated[typ, typer.Option(*decls, **kw)])


_CTX = "msm_ctx"


def add_parameters(fn: Callable, added: list[inspect.Parameter],
                   build: Callable[[dict[str, Any], Any], dict[str, Any]], consumes: tuple[str, ...] = ()) -> Callable:
    """Rewrite `fn`'s signature with `added` parameters (after its own); `build(values, ctx)` turns the
    added parameters' values into the keyword arguments `fn` receives."""
    import typer

    hints = typing.get_type_hints(fn, include_extras=True)
    sig = inspect.signature(fn)
    names = {p.name for p in added}
    own = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values()
           if p.name not in names and p.name not in consumes]
    has_ctx = any(p.name == _CTX for p in own)
    ctx_param = [] if has_ctx else [inspect.Parameter(_CTX, inspect.Parameter.KEYWORD_ONLY, default=None,
                                                       annotation=typer.Context)]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        ctx = kw[_CTX] if has_ctx else kw.pop(_CTX, None)
        values = {p.name: kw.pop(p.name) for p in added}
        return fn(*args, **kw, **build(values, ctx))

    params = own + added + ctx_param
    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    del wrapper.__wrapped__  # typer must read the wrapper's signature, not the function's
    return wrapper


def given(ctx: Any, name: str) -> bool:
    """Whether the option `name` was given (command line or environment), not left at its default."""
    src = ctx.get_parameter_source(name) if ctx is not None else None
    return src is not None and src.name not in ("DEFAULT", "DEFAULT_MAP")


def shared(*names: str, unset_none: tuple[str, ...] = (), **defaults: Any) -> Callable[[Callable], Callable]:
    """Decorator: add the shared options `names` (field names of the groups above) to a typer command.

    A keyword sets that option's default for this command (only for PER_COMMAND_DEFAULTS' flags); an option
    named in `unset_none` reaches the command as None when it was not given (its shown default stays the
    shared one: `--model` is 'default', but aft and the evals tell it apart from a checkpoint's model).
    """
    cat = _catalog()
    for k in defaults:
        if k not in PER_COMMAND_DEFAULTS:
            raise ValueError(f"{k}: one default for every command (add it to PER_COMMAND_DEFAULTS with a reason)")
    added = []
    for n in names:
        cls, f = cat[n]
        added.append(parameter(cls, f, default=defaults.get(n, MISSING)))
    repeat = {p.name for p in added if typing.get_args(p.annotation)[0] == (list[str] | None)}

    def build(values: dict[str, Any], ctx: Any) -> dict[str, Any]:
        for n in unset_none:
            if not given(ctx, n):
                values[n] = None
        for n in repeat:
            values[n] = list(values[n] or [])
        return values

    return lambda fn: add_parameters(fn, added, build)


def config_options(cls: type, *, name: str = "cfg", exclude: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    """Decorator: one option per CLI field of the config dataclass `cls`; the command receives `name`=cls(...)."""
    fs = [f for f in fields(cls) if f.metadata.get("cli", True) and f.name not in exclude]
    added = [parameter(cls, f) for f in fs]
    tuples = {f.name for f in fs if typing.get_origin(typing.get_type_hints(cls)[f.name]) is tuple}

    def build(values: dict[str, Any], ctx: Any) -> dict[str, Any]:
        for n in tuples:
            values[n] = tuple(values[n] or ())
        return {name: cls(**values)}

    return lambda fn: add_parameters(fn, added, build, consumes=(name,))
