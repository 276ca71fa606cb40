"""Helpers shared by the ``kb`` commands (``kb.cli`` and the modules that add commands to it)."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import Any

import click

from kb.errors import KBError, translate
from kb.settings import Settings


def get_settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]


def refuse_if_read_only(ctx: click.Context, writes: frozenset[str]) -> None:
    """Stop a command of ``writes`` (the group's subcommand about to run) when KB_READ_ONLY
    is set: a read replica's library is changed only by copying a new one in."""
    command = ctx.invoked_subcommand
    if command in writes:
        refuse_write(ctx, f"{ctx.command_path} {command}")


def refuse_write(ctx: click.Context, what: str) -> None:
    """Stop ``what`` (a command line that changes the library) when KB_READ_ONLY is set."""
    if get_settings(ctx).read_only:
        raise click.ClickException(
            f"`{what}` would change the library, which is read-only here (KB_READ_ONLY=1). "
            "Run it where the library is written, then copy or export it here again."
        )


def open_library(ctx: click.Context):  # -> kb.library.facade.Library
    from kb.library.facade import Library

    lib = Library(get_settings(ctx))
    ctx.call_on_close(lib.close)
    return lib


def loaded_library(ctx: click.Context, *, quiet: bool = False, lib: Any = None):  # -> Library
    """The library with its models loaded, saying so on stderr (unless ``quiet``: JSON output
    is for programs): loading takes seconds (tens on a busy machine), and the search time
    printed after it is the search's alone. ``lib``: one already opened for this command."""
    lib = lib if lib is not None else open_library(ctx)
    started = time.perf_counter()
    if not quiet:
        click.echo("loading models…", err=True)
    lib.load()
    if not quiet:
        click.echo(f"models loaded in {time.perf_counter() - started:.1f} s", err=True)
    return lib


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn every error into one clear line on stderr and exit status 1, never a traceback.

    A KBError is its message; an operating-system or SQLite error is what it stands for
    (``kb.errors.translate``: a full disk, a damaged store); any other error is named with
    where to report it.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as e:  # noqa: BLE001 - the one place the CLI maps errors
            known = translate(e)
            if known is None:
                known = KBError(
                    f"kb stopped on an unexpected error ({type(e).__name__}: {e}); nothing "
                    "half-done was kept. `kb doctor` checks whether the store is damaged; "
                    "if it is not, please report this with the command you ran."
                )
            raise click.ClickException(str(known)) from e

    return wrapper


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(fn)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))
