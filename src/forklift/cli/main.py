"""The ``forklift`` command: Docker's management commands and classic shortcuts.

Commands only parse and print; every one calls into ``forklift.engine``. Errors
become one line ``Error: …`` on stderr with a non-zero exit code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

from forklift.cli import session
from forklift.cli.commands import BUILDER, CONTAINER, IMAGE, SYSTEM, TOP, LazyGroup
from forklift.errors import EXIT_ENGINE, ForkliftError

CONTEXT = {"help_option_names": ["--help"], "max_content_width": 100}


State = session.State


_OPENED = session.OPENED  # the stores this process opened, closed by `_leave`


@click.group(cls=LazyGroup, table=TOP, context_settings=CONTEXT)
@click.option("--root", envvar="FORKLIFT_ROOT", default=None, metavar="DIR",
              help="Store root (default /var/lib/forklift as root).")
@click.option("-D", "--debug", is_flag=True, help="Show tracebacks for internal errors.")
@click.version_option(package_name="forklift", prog_name="forklift")
@click.pass_context
def cli(ctx: click.Context, root: str | None, debug: bool) -> None:
    """forklift: a daemonless, Docker-compatible container image engine."""
    if debug:
        os.environ["FORKLIFT_DEBUG"] = "1"
    ctx.obj = State(root)


@cli.group(cls=LazyGroup, table=CONTAINER, context_settings=CONTEXT)
def container() -> None:
    """Manage containers."""


@cli.group(cls=LazyGroup, table=IMAGE, context_settings=CONTEXT)
def image() -> None:
    """Manage images."""


@cli.group(cls=LazyGroup, table=BUILDER, context_settings=CONTEXT)
def builder() -> None:
    """Manage builds."""


@cli.group(cls=LazyGroup, table=SYSTEM, context_settings=CONTEXT)
def system() -> None:
    """Manage forklift's store."""


EXIT_FLAG_ERROR = EXIT_ENGINE  # Docker's CLI: a bad flag exits 125, a wrong argument count 1


def usage_error(exc: click.UsageError) -> tuple[str, int]:
    """Docker's wording and exit code for a command line click refused."""
    ctx = exc.ctx
    path = ctx.command_path if ctx is not None else "forklift"
    hint = f" (see '{path} --help')"
    param = getattr(exc, "param", None)
    if isinstance(exc, click.NoSuchOption):
        name = exc.option_name
        text = (f"unknown flag: {name}" if name.startswith("--")
                else f"unknown shorthand flag: '{name.lstrip('-')}' in {name}")
        return text + hint, EXIT_FLAG_ERROR
    if isinstance(exc, click.BadOptionUsage) and "requires an argument" in exc.message:
        name = exc.option_name
        text = (f"flag needs an argument: {name}" if name.startswith("--")
                else f"flag needs an argument: '{name.lstrip('-')}' in {name}")
        return text + hint, EXIT_FLAG_ERROR
    extra = "unexpected extra argument" in exc.message
    if (extra or isinstance(exc, click.MissingParameter | click.BadArgumentUsage)) \
            and ctx is not None and not isinstance(param, click.Option):
        return f'"{path}" {_arity(ctx.command)}.' + hint, 1
    if isinstance(exc, click.BadParameter) and isinstance(param, click.Option):
        flags = ", ".join(param.opts)
        return f'invalid argument for "{flags}" flag: {exc.message}' + hint, EXIT_FLAG_ERROR
    return exc.format_message() + hint, EXIT_FLAG_ERROR


def _arity(command: click.Command) -> str:
    """'requires exactly 2 arguments', as Docker's CLI words its argument checks."""
    low, high = 0, 0
    for p in command.params:
        if isinstance(p, click.Argument):
            if p.required:
                low += max(p.nargs, 1)
            high = -1 if p.nargs == -1 or high < 0 else high + p.nargs

    def args(n: int) -> str:
        return f"{n} argument{'' if n == 1 else 's'}"

    if low == high:
        return f"requires exactly {args(low)}"
    if high < 0:
        return f"requires at least {args(low)}"
    if low == 0:
        return f"requires at most {args(high)}"
    return f"requires at least {low} and at most {args(high)}"


def main() -> None:
    """Console entry point: run the command, then leave at once (`_leave`)."""
    try:
        _main()
    except SystemExit as exc:
        _leave(exc.code)
    _leave(0)


_leave = session.leave


def fail(exc: BaseException) -> None:
    """Raise the SystemExit the click path's `_main` makes of ``exc`` (its ``Error:`` line
    printed): how `forklift.cli.fast` reports a hot command's failure."""

    def again() -> Any:
        raise exc

    _main(again)


def _main(call: Callable[[], Any] | None = None) -> None:
    """Map every failure to one ``Error:`` line and its exit status (a ForkliftError's own
    ``exit_code``, see forklift.errors)."""
    try:
        code = call() if call else cli.main(prog_name="forklift", standalone_mode=False)
    except ForkliftError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.UsageError as exc:
        message, code = usage_error(exc)
        click.echo(f"Error: {message}", err=True)
        sys.exit(code)
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()} (see 'forklift --help')", err=True)
        sys.exit(exc.exit_code if exc.exit_code else EXIT_ENGINE)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # an unexpected bug: still one line unless debugging
        if os.environ.get("FORKLIFT_DEBUG"):
            raise
        click.echo(f"Error: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(EXIT_ENGINE)
    sys.exit(code if isinstance(code, int) else 0)
