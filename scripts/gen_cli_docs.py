"""Write docs/cli.md from `msm --help` and each subcommand's --help, so the reference cannot drift.

Run: .venv/bin/python scripts/gen_cli_docs.py            (rewrite docs/cli.md)
     .venv/bin/python scripts/gen_cli_docs.py --check    (exit 1 if docs/cli.md is stale)
"""

from __future__ import annotations

from pathlib import Path

from _generated import write_or_check

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def help_text(args: list[str]) -> str:
    import typer.testing

    from msmtools.cli import app

    result = typer.testing.CliRunner().invoke(app, args, terminal_width=100, prog_name="msm")
    if result.exit_code != 0:
        raise SystemExit(f"msm {' '.join(args)} failed: {result.output}")
    return result.output.rstrip() + "\n"


def conventions() -> str:
    """The shared-option rules, from the definitions themselves (msmtools.cli_options, msmtools.formats)."""
    from msmtools import cli_options, formats

    rows = "\n".join(f"| `--{name.replace('_', '-')}` | {why} |" for name, why in cli_options.PER_COMMAND_DEFAULTS.items())
    return (
        "## Options shared by the commands\n\n"
        "Every option that several commands take is defined once (`src/msmtools/cli_options.py`; training flags are "
        "the fields of `TrainConfig`/`AftConfig` and `train/options.py:TrainRun`), so a flag name has one meaning, "
        "one help text and one default everywhere (`tests/test_cli_options.py` checks it). Notes:\n\n"
        "- `--format`/`-f`: one vocabulary, " + ", ".join(f"`{f}`" for f in formats.FORMATS) + "; `jsonl` is records, "
        "`table` aligned text for people, `text` (spec-render only) the rendered specs. Each command accepts the "
        "ones it writes and names them when refused. Default: from the `-o` extension (.jsonl .txt .md .csv), "
        "else `table` on a terminal and `jsonl` when piped (spec-render, tag-reasoning --validate, compare).\n"
        "- `--label NAME`: the variant's name in records and tables, given where the variant is made (midtrain, "
        "aft) or evaluated (am-eval, value-eval: one per adapter). compare's `NAME=FILE` form is `--variant` "
        "(`-l`).\n"
        "- `--model`/`-m`: default `default` everywhere; where checkpoint records are read (`--from`, or `-m -`), "
        "the checkpoint's base model is used unless `--model` is given.\n"
        "- `--cache DIR`: the model-call cache folder. docgen always caches (default `.msm-cache` beside the "
        "output); am-eval caches only into a folder given here.\n"
        "- `--judge-max-tokens`: a judge reply's token limit, 512 in docgen and value-eval.\n\n"
        "Defaults that differ per command, on purpose:\n\n| option | default |\n|---|---|\n" + rows + "\n")


def render() -> str:
    import typer.main

    from msmtools.cli import app

    parts = ["# CLI reference\n",
             "Generated from `--help` by `scripts/gen_cli_docs.py`; a test fails when it is stale.\n",
             conventions(),
             "## msm\n", "```text\n" + help_text(["--help"]) + "```\n"]
    for name, cmd in typer.main.get_command(app).commands.items():
        parts += [f"## msm {name}\n", "```text\n" + help_text([name, "--help"]) + "```\n"]
        for sub in getattr(cmd, "commands", {}):  # a group (msm study): each of its commands too
            parts += [f"### msm {name} {sub}\n", "```text\n" + help_text([name, sub, "--help"]) + "```\n"]
    return "\n".join(parts)


def main() -> None:
    write_or_check(DOC, render(), "gen_cli_docs.py")


if __name__ == "__main__":
    main()
