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
COMMANDS = ("spec_render", "docgen", "midtrain", "aft", "am_eval", "value_eval", "tag_reasoning", "label", "compare",
            "study")


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


def _usage_errors() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
    """(ClickException, Abort, Exit) classes of both click and the copy of click that typer vendors."""
    import click
    import typer.exceptions

    errs, aborts, exits = [click.ClickException], [click.exceptions.Abort, typer.exceptions.Abort], [
        click.exceptions.Exit, typer.exceptions.Exit]
    try:
        from typer._click import exceptions as vendored

        errs.append(vendored.ClickException)
    except ImportError:
        pass
    return tuple(errs), tuple(aborts), tuple(exits)


EXIT_GRACE_S = 10.0  # a failed command's clean-up (closing engines, joining workers) gets this long


def _fail(code: int) -> None:
    """Exit with `code`, and never hang on the way out: a worker thread still blocked in a call that
    will not return (a stuck connection, a dead engine) would otherwise hold the interpreter open at
    exit. Files are closed by then (every writer is a context manager on the way up)."""
    import os
    import threading

    def force() -> None:
        sys.stderr.flush()
        os._exit(code)

    t = threading.Timer(EXIT_GRACE_S, force)
    t.daemon = True
    t.start()
    sys.exit(code)


def main() -> None:
    errors, aborts, exits = _usage_errors()
    try:
        rv = app(standalone_mode=False)
    except MsmError as e:
        from .redact import scrub

        print(f"msm: error: {scrub(str(e))}", file=sys.stderr)
        _fail(e.exit_code)
    except exits as e:
        sys.exit(getattr(e, "exit_code", 0))
    except aborts:
        print("msm: aborted", file=sys.stderr)
        sys.exit(130)
    except errors as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        print("msm: interrupted", file=sys.stderr)
        _fail(130)
    except BrokenPipeError:
        sys.stderr.close()
        _fail(141)
    except Exception as e:  # not ours to expect: one line (scrubbed), the traceback only when asked
        import os
        import traceback

        from .redact import scrub

        if os.environ.get("MSM_DEBUG"):
            print(scrub("".join(traceback.format_exception(e))), file=sys.stderr, end="")
        where = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
        at_ = f" (at {os.path.basename(where.filename)}:{where.lineno})" if where else ""
        print(scrub(f"msm: error: {type(e).__name__}: {e}{at_}; MSM_DEBUG=1 shows the traceback"), file=sys.stderr)
        _fail(1)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
