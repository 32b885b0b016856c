"""Write docs/cli.md from `msm --help` and each subcommand's --help, so the reference cannot drift.

Run: .venv/bin/python scripts/gen_cli_docs.py            (rewrite docs/cli.md)
     .venv/bin/python scripts/gen_cli_docs.py --check    (exit 1 if docs/cli.md is stale)
"""

from __future__ import annotations

import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def help_text(args: list[str]) -> str:
    import typer.testing

    from msmtools.cli import app

    result = typer.testing.CliRunner().invoke(app, args, terminal_width=100, prog_name="msm")
    if result.exit_code != 0:
        raise SystemExit(f"msm {' '.join(args)} failed: {result.output}")
    return result.output.rstrip() + "\n"


def render() -> str:
    import typer.main

    from msmtools.cli import app

    parts = ["# CLI reference\n",
             "Generated from `--help` by `scripts/gen_cli_docs.py`; a test fails when it is stale.\n",
             "## msm\n", "```text\n" + help_text(["--help"]) + "```\n"]
    for name, cmd in typer.main.get_command(app).commands.items():
        parts += [f"## msm {name}\n", "```text\n" + help_text([name, "--help"]) + "```\n"]
        for sub in getattr(cmd, "commands", {}):  # a group (msm study): each of its commands too
            parts += [f"### msm {name} {sub}\n", "```text\n" + help_text([name, sub, "--help"]) + "```\n"]
    return "\n".join(parts)


def main() -> None:
    text = render()
    if "--check" in sys.argv:
        if not DOC.exists() or DOC.read_text() != text:
            print(f"{DOC} is stale: run python scripts/gen_cli_docs.py", file=sys.stderr)
            sys.exit(1)
        return
    DOC.write_text(text)
    print(f"wrote {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
