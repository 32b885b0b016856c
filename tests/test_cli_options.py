"""Every flag name means one thing: one help text and one default wherever a command has it.

The guard against options drifting apart again: it walks every command of the typer app. A flag may
default differently per command only if `cli_options.PER_COMMAND_DEFAULTS` names it (with the reason).
"""

from collections import defaultdict

import pytest
import typer.main

from msmtools import cli_options
from msmtools.cli import app

# Short flags that stand for different long flags on purpose: study run's -n is Snakemake's --dry-run.
SHORT_EXCEPTIONS = {"-n": {"--samples", "--dry-run"}}


def _commands(cmd=None, path=()):
    cmd = cmd or typer.main.get_command(app)
    for name, sub in getattr(cmd, "commands", {}).items():
        if hasattr(sub, "commands"):
            yield from _commands(sub, (*path, name))
        else:
            yield " ".join((*path, name)), sub


def _uses():
    by_flag = defaultdict(list)
    for name, cmd in _commands():
        for p in cmd.params:
            if p.param_type_name != "option" or p.hidden:
                continue
            long = max(p.opts, key=len)
            by_flag[long].append((name, p))
    return by_flag


def test_every_command_is_seen():
    names = {n for n, _ in _commands()}
    assert {"spec-render", "docgen", "midtrain", "aft", "am-eval", "value-eval", "tag-reasoning", "label",
            "compare", "study run"} <= names


@pytest.mark.parametrize("flag", sorted(_uses()))
def test_a_flag_has_one_help_and_one_default(flag):
    uses = _uses()[flag]
    helps = {p.help for _, p in uses}
    assert len(helps) == 1, f"{flag}: help differs: " + "; ".join(f"{n}: {p.help!r}" for n, p in uses)
    field = {p.name for _, p in uses}
    if not field & set(cli_options.PER_COMMAND_DEFAULTS):
        defaults = {repr(p.default) for _, p in uses}
        assert len(defaults) == 1, f"{flag}: default differs: " + "; ".join(f"{n}: {p.default!r}" for n, p in uses)


def test_a_short_flag_stands_for_one_long_flag():
    longs = defaultdict(set)
    for flag, uses in _uses().items():
        for _, p in uses:
            for o in p.opts:
                if not o.startswith("--"):
                    longs[o].add(flag)
    for short, names in longs.items():
        assert len(names) == 1 or names == SHORT_EXCEPTIONS.get(short), f"{short} stands for {sorted(names)}"


def test_per_command_defaults_are_documented_and_used():
    cat = cli_options._catalog()
    for name, why in cli_options.PER_COMMAND_DEFAULTS.items():
        assert name in cat and why


def test_model_is_one_option():
    uses = _uses()["--model"]
    assert {n for n, _ in uses} >= {"docgen", "midtrain", "aft", "am-eval", "value-eval", "tag-reasoning"}
    assert {p.default for _, p in uses} == {"default"}


def test_training_flags_come_from_the_config_fields():
    from dataclasses import fields

    from msmtools.train.config import AftConfig

    aft = dict(_commands())["aft"]
    flags = {o for p in aft.params for o in p.opts}
    for f in fields(AftConfig):
        assert (f"--{f.name.replace('_', '-')}" in flags) == f.metadata.get("cli", True), f.name


def test_shared_refuses_an_undocumented_per_command_default():
    with pytest.raises(ValueError):
        cli_options.shared("seed", seed=1)
