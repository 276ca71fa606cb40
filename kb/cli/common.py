"""Helpers shared by the ``kb`` commands (``kb.cli`` and the modules that add commands to it)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import click

from kb.errors import KBError
from kb.settings import Settings


def get_settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]


def open_library(ctx: click.Context):  # -> kb.library.facade.Library
    from kb.library.facade import Library

    lib = Library(get_settings(ctx))
    ctx.call_on_close(lib.close)
    return lib


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn every KBError into one clear line on stderr and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KBError as e:
            raise click.ClickException(str(e)) from e

    return wrapper


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(fn)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))
