"""A study config (YAML): specs, corpora, chat sets, arms, seeds, evaluations, read and checked once.

A bad config is one line naming the file, the line and the field (`studies/x.yaml:12: arms.rules.msm: ...`)
and exit 2, before any job is planned. Flags given as mappings (`train: {epochs: 3, lr: 1e-4}`) are
checked against the command that will receive them, so a misspelt option fails here, not on a GPU node.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MsmError, at

DOCUMENT_KINDS = ("documents", "passages")
EVAL_KINDS = ("am", "value")
RESOURCE_ROLES = ("generate", "train", "eval")


@dataclass(frozen=True)
class Corpus:
    """An MSM corpus: `msm docgen` over one spec. Shared by every seed unless `per_seed`."""

    name: str
    spec: str
    kind: str = "documents"
    target_tokens: int | None = None
    shards: int = 1
    per_seed: bool = False
    flags: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatSet:
    """AFT demonstrations: a fixed file, or `msm docgen --kind chats` over a spec."""

    name: str
    file: str | None = None
    spec: str | None = None
    target_chats: int | None = None
    per_seed: bool = False
    flags: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Arm:
    """What one arm trains on. Neither `msm` nor `aft`: the untouched model (a baseline, no seed)."""

    name: str
    msm: str | None = None
    aft: str | None = None
    seeds: tuple[int, ...] = (0,)
    msm_flags: dict[str, Any] = field(default_factory=dict)
    aft_flags: dict[str, Any] = field(default_factory=dict)
    model: str | None = None  # this arm's base model (default: the study's): one study over several families
    label: str | None = None  # the variant name its records carry (default: the arm's name)

    @property
    def trained(self) -> bool:
        return bool(self.msm or self.aft)

    @property
    def record_label(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class Eval:
    """One evaluation over some arms: `am` (am-eval, optionally tag-reasoning) or `value` (value-eval)."""

    name: str
    kind: str
    arms: tuple[str, ...]
    shards: int = 1
    values: tuple[str, ...] = ()
    tags: str | None = None  # the spec whose rule ids tag-reasoning looks for (am only)
    baseline: str | None = None
    plot: bool = False
    flags: dict[str, Any] = field(default_factory=dict)
    tag_flags: dict[str, Any] = field(default_factory=dict)
    across: str | None = None  # compare the arm contrasts between the levels of this record field


@dataclass(frozen=True)
class Study:
    path: str
    name: str
    out: str
    model: str
    render: dict[str, Any]
    generator: dict[str, Any]
    corpora: dict[str, Corpus]
    chats: dict[str, ChatSet]
    arms: dict[str, Arm]
    evals: dict[str, Eval]
    min_fraction: float = 1.0
    threads: int | None = None  # OMP threads per job; None: the library's own choice (a cluster job's CPUs)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    report: str | None = None


class _Where:
    """Line numbers of a YAML document's keys, so that an error can name `file:line: field`."""

    def __init__(self, path: str, text: str):
        import yaml

        self.path, self.lines = path, {}
        try:
            root = yaml.compose(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            raise at(path, mark.line + 1 if mark else None, None, f"not valid YAML ({getattr(e, 'problem', e)})") from None
        self._walk(root, ())

    def _walk(self, node, prefix: tuple[str, ...]) -> None:
        import yaml

        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = prefix + (str(k.value),)
                self.lines[key] = k.start_mark.line + 1
                self._walk(v, key)

    def error(self, keys: tuple[str, ...], message: str) -> MsmError:
        line = None
        for n in range(len(keys), 0, -1):
            if tuple(map(str, keys[:n])) in self.lines:
                line = self.lines[tuple(map(str, keys[:n]))]
                break
        return at(self.path, line, ".".join(str(k) for k in keys) or None, message)


@functools.lru_cache(maxsize=None)
def _command_flags(command: str) -> set[str]:
    """The long option names `msm COMMAND` accepts (from the CLI itself, so the check cannot drift)."""
    import typer.main

    from .. import cli

    group = typer.main.get_command(cli.app)
    cmd = group.commands[command]  # type: ignore[attr-defined]
    return {o[2:] for p in cmd.params for o in p.opts + p.secondary_opts if o.startswith("--")}


def flag_args(flags: dict[str, Any]) -> list[str]:
    """`{epochs: 3, no-cache: true, conditions: [a, b]}` -> `--epochs 3 --no-cache --conditions a b`."""
    out: list[str] = []
    for k, v in flags.items():
        name = "--" + k.replace("_", "-")
        if v is True:
            out.append(name)
        elif v is False or v is None:
            continue
        elif isinstance(v, (list, tuple)):
            out += [name, *(str(x) for x in v)]
        else:
            out += [name, str(v)]
    return out


class _Reader:
    def __init__(self, path: str, raw: dict, where: _Where):
        self.path, self.raw, self.w = path, raw, where

    def get(self, keys: tuple[str, ...], kind, default=None, required: bool = False):
        node: Any = self.raw
        for k in keys:
            if not isinstance(node, dict) or k not in node:
                if required:
                    raise self.w.error(keys, "required")
                return default
            node = node[k]
        if node is None and not required:
            return default
        ok = isinstance(node, kind) and not (kind is int and isinstance(node, bool))
        if kind is float and isinstance(node, int) and not isinstance(node, bool):
            ok, node = True, float(node)
        if not ok:
            names = kind.__name__ if isinstance(kind, type) else " or ".join(t.__name__ for t in kind)
            raise self.w.error(keys, f"expected {names}, got {type(node).__name__} {node!r}")
        return node

    def positive(self, keys: tuple[str, ...], default: int | None) -> int | None:
        v = self.get(keys, int, default)
        if v is not None and v < 1:
            raise self.w.error(keys, f"must be at least 1, got {v}")
        return v

    def only(self, keys: tuple[str, ...], allowed: set[str]) -> None:
        node = self.get(keys, dict, {}) if keys else self.raw
        for k in node:
            if k not in allowed:
                raise self.w.error(keys + (k,), f"unknown key; expected one of {', '.join(sorted(allowed))}")

    def flags(self, keys: tuple[str, ...], command: str) -> dict[str, Any]:
        flags = self.get(keys, dict, {})
        known = _command_flags(command)
        for k, v in flags.items():
            name = str(k).replace("_", "-")
            if name not in known:
                raise self.w.error(keys + (str(k),), f"msm {command} has no option --{name}")
            if isinstance(v, dict):
                raise self.w.error(keys + (str(k),), "expected a value or a list, got a mapping")
        return {str(k).replace("_", "-"): v for k, v in flags.items()}


TOP = {"name", "out", "model", "render", "generator", "train", "msm_train", "aft_train", "seeds", "corpora", "chats",
       "arms", "evals", "min_fraction", "threads", "resources", "report", "description"}


def load(path: str | Path, out: str | None = None) -> Study:
    """Read and check a study file; `out` overrides its output folder."""
    import yaml

    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise MsmError(f"{path}: cannot read ({e.strerror})") from None
    where = _Where(path, text)
    raw = yaml.safe_load(text)
    if not isinstance(raw, dict):
        raise at(path, None, None, "expected a mapping of study settings")
    r = _Reader(path, raw, where)
    r.only((), TOP)
    name = r.get(("name",), str, required=True)
    seeds = _seeds(r, ("seeds",), [0])
    train = r.flags(("train",), "midtrain")
    r.flags(("train",), "aft")  # `train` reaches both stages, so both must take every flag
    msm_train = {**train, **r.flags(("msm_train",), "midtrain")}
    aft_train = {**train, **r.flags(("aft_train",), "aft")}

    corpora = {}
    for cname in r.get(("corpora",), dict, {}):
        k = ("corpora", _name(r, "corpora", cname))
        r.only(k, {"spec", "kind", "target_tokens", "shards", "per_seed", "docgen"})
        kind = r.get(k + ("kind",), str, "documents")
        if kind not in DOCUMENT_KINDS:
            raise where.error(k + ("kind",), f"expected one of {', '.join(DOCUMENT_KINDS)}, got {kind!r}")
        corpora[cname] = Corpus(cname, _spec(r, k + ("spec",)), kind, r.positive(k + ("target_tokens",), None),
                                r.positive(k + ("shards",), 1), r.get(k + ("per_seed",), bool, False),
                                r.flags(k + ("docgen",), "docgen"))
    chats = {}
    for cname in r.get(("chats",), dict, {}):
        k = ("chats", _name(r, "chats", cname))
        r.only(k, {"file", "spec", "target_chats", "per_seed", "docgen"})
        file, spec = r.get(k + ("file",), str), r.get(k + ("spec",), str)
        if bool(file) == bool(spec):
            raise where.error(k, "give exactly one of file (fixed demonstrations) or spec (generated by docgen)")
        if file and not Path(file).is_file():
            raise where.error(k + ("file",), f"{file}: no such file")
        chats[cname] = ChatSet(cname, file, _spec(r, k + ("spec",)) if spec else None,
                               r.positive(k + ("target_chats",), None), r.get(k + ("per_seed",), bool, False),
                               r.flags(k + ("docgen",), "docgen"))
    arms = {}
    for aname in r.get(("arms",), dict, required=True):
        k = ("arms", _name(r, "arms", aname))
        r.only(k, {"msm", "aft", "seeds", "msm_train", "aft_train", "model", "label"})
        msm, aft = r.get(k + ("msm",), str), r.get(k + ("aft",), str)
        if msm and msm not in corpora:
            raise where.error(k + ("msm",), f"no corpus {msm!r} under corpora")
        if aft and aft not in chats:
            raise where.error(k + ("aft",), f"no chat set {aft!r} under chats")
        arm_seeds = _seeds(r, k + ("seeds",), list(seeds))
        arms[aname] = Arm(aname, msm, aft, arm_seeds if (msm or aft) else (),
                          {**msm_train, **r.flags(k + ("msm_train",), "midtrain")},
                          {**aft_train, **r.flags(k + ("aft_train",), "aft")},
                          r.get(k + ("model",), str), r.get(k + ("label",), str))
        same = [a for a in arms.values() if a.name != aname and a.record_label == arms[aname].record_label
                and (a.model or "") == (arms[aname].model or "")]
        if same:
            raise where.error(k + ("label",), f"arms {same[0].name} and {aname} would write records under one label "
                              "and model: give them different labels or models")
    evals = {}
    for ename in r.get(("evals",), dict, {}):
        k = ("evals", _name(r, "evals", ename))
        r.only(k, {"kind", "arms", "shards", "values", "tags", "baseline", "plot", "flags", "tag_flags", "across"})
        kind = r.get(k + ("kind",), str, required=True)
        if kind not in EVAL_KINDS:
            raise where.error(k + ("kind",), f"expected one of {', '.join(EVAL_KINDS)}, got {kind!r}")
        names = tuple(r.get(k + ("arms",), list, list(arms)))
        for a in names:
            if a not in arms:
                raise where.error(k + ("arms",), f"no arm {a!r} under arms")
        baseline = r.get(k + ("baseline",), str)
        if baseline and baseline not in names:
            raise where.error(k + ("baseline",), f"{baseline!r} is not one of this evaluation's arms")
        values = tuple(r.get(k + ("values",), list, []))
        for v in values:
            _item_set(r, k + ("values",), v)
        if kind == "value" and not values:
            raise where.error(k + ("values",), "a value evaluation names its item sets (for example [america])")
        tags = r.get(k + ("tags",), str)
        if tags and kind != "am":
            raise where.error(k + ("tags",), "tags are read from am-eval rollouts only")
        evals[ename] = Eval(ename, kind, names, r.positive(k + ("shards",), 1), values,
                            _spec(r, k + ("tags",)) if tags else None, baseline, r.get(k + ("plot",), bool, False),
                            r.flags(k + ("flags",), "am-eval" if kind == "am" else "value-eval"),
                            r.flags(k + ("tag_flags",), "tag-reasoning"), r.get(k + ("across",), str))
    resources = r.get(("resources",), dict, {})
    for role in resources:
        if role not in RESOURCE_ROLES:
            raise where.error(("resources", role), f"expected one of {', '.join(RESOURCE_ROLES)}")
        r.get(("resources", role), dict)
    frac = r.get(("min_fraction",), float, 1.0)
    if not 0 < frac <= 1:
        raise where.error(("min_fraction",), f"must be in (0, 1], got {frac}")
    report = r.get(("report",), str)
    return Study(path, name, out or r.get(("out",), str, f"out/{name}"), r.get(("model",), str, "default"),
                 r.flags(("render",), "spec-render"), r.flags(("generator",), "docgen"), corpora, chats, arms, evals,
                 frac, r.positive(("threads",), None), resources, report)


NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def _name(r: _Reader, section: str, name: object) -> str:
    """Names become folder and file names and Snakemake wildcards: letters, digits and _ . + - only."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise r.w.error((section, str(name)), "a name of letters, digits and _ . + - (it names folders and files)")
    return name


def _seeds(r: _Reader, keys: tuple[str, ...], default: list[int]) -> tuple[int, ...]:
    seeds = r.get(keys, list, default)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise r.w.error(keys, f"expected a list of non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise r.w.error(keys, f"a seed is listed twice: {seeds!r}")
    return tuple(seeds)


def _item_set(r: _Reader, keys: tuple[str, ...], value: object) -> None:
    """A value-eval item set: a shipped name or a file, checked now rather than in the eval job."""
    from ..valueeval import items

    if not isinstance(value, str):
        raise r.w.error(keys, f"expected item set names, got {value!r}")
    try:
        items.resolve(value)
    except MsmError as e:
        raise r.w.error(keys, str(e)) from None


def _spec(r: _Reader, keys: tuple[str, ...]) -> str:
    """A spec name or path, resolved now so that a missing spec fails before planning."""
    from .. import spec as specmod

    name = r.get(keys, str, required=True)
    try:
        return specmod.load(name).path
    except MsmError as e:
        raise r.w.error(keys, str(e)) from None
