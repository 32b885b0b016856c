"""`msm`: the command line, a thin layer over the library.

Each subcommand lives in `msmtools.commands.<name>` and registers itself; heavy libraries (torch,
transformers, vLLM) are imported inside the command functions so that `msm --help` stays fast.
"""

from __future__ import annotations

import importlib
import sys

import typer

from .errors import MsmError

app = typer.Typer(
    name="msm",
    help="Model Spec Midtraining experiments: render specs, generate corpora, train, evaluate, compare.\n\n"
    "Every subcommand reads and writes JSONL ('-' is stdin/stdout), so steps pipe, shard and rerun alone.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

def _version(value: bool) -> None:
    if value:
        from . import __version__

        print(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the msmtools version and exit.",
                                 is_eager=True, callback=_version),
) -> None:
    """Model Spec Midtraining experiments: render specs, generate corpora, train, evaluate, compare."""


# Pipeline order; a module that does not exist yet is simply not registered.
COMMANDS = ("spec_render", "docgen", "midtrain", "aft", "am_eval", "tag_reasoning", "compare")


def _register() -> None:
    for name in COMMANDS:
        modname = f"msmtools.commands.{name}"
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name == modname:
                continue
            raise
        mod.register(app)


_register()


def main() -> None:
    import click

    try:
        rv = app(standalone_mode=False)
    except MsmError as e:
        print(f"msm: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        print("msm: aborted", file=sys.stderr)
        sys.exit(130)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        print("msm: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(141)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
