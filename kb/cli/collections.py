"""``kb collection ...`` (shared reading lists with notes) and ``kb export`` (BibTeX, RIS, CSL).

Registered on the ``kb`` group in ``kb/cli.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from kb.cli.common import (
    echo_json,
    get_settings,
    handle_errors,
    json_option,
    loaded_library,
    open_library,
    refuse_if_read_only,
)
from kb.errors import InvalidInput
from kb.library.exports import FORMATS
from kb.library.query import SearchQuery
from kb.types import Collection, Paper

# the subcommands that change collections, refused when KB_READ_ONLY is set
COLLECTION_WRITES = frozenset({"create", "add", "remove", "note", "edit", "delete"})


@click.group()
@click.pass_context
def collection(ctx: click.Context) -> None:
    """Shared reading lists: named collections of papers, each paper with a note.

    A collection is given by its id or its name (names ignore case).

    Example: kb collection create "Reading group" --description "Papers for Friday"
    """
    refuse_if_read_only(ctx, COLLECTION_WRITES)


def _print_collection(found: Collection, as_json: bool, *, items: bool = True) -> None:
    if as_json:
        echo_json(found.to_dict())
        return
    n = len(found.items)
    click.echo(f"{found.id:>4}  {found.name}  ({n} paper{'s' * (n != 1)})")
    if found.description:
        click.echo(f"      {found.description}")
    for item in found.items if items else []:
        p = item.paper
        click.echo(f"      {p.id:>5}  [{p.lang}]  {p.year or '    '}  {p.title}")
        if item.note:
            click.echo(f"             note: {item.note}")


@collection.command("create")
@click.argument("name")
@click.option("--description", default="", help="What the list is for (up to 5000 characters).")
@json_option
@click.pass_context
@handle_errors
def create(ctx: click.Context, name: str, description: str, as_json: bool) -> None:
    """Create an empty collection.

    Example: kb collection create "Reading group" --description "Papers for Friday"
    """
    _print_collection(open_library(ctx).create_collection(name, description), as_json)


@collection.command("list")
@json_option
@click.pass_context
@handle_errors
def list_(ctx: click.Context, as_json: bool) -> None:
    """List the collections with how many papers each has.

    Example: kb collection list --json
    """
    found = open_library(ctx).collections()
    if as_json:
        echo_json([c.to_dict() for c in found])
        return
    if not found:
        click.echo('No collections yet. `kb collection create "NAME"` makes one.')
    for c in found:
        _print_collection(c, False, items=False)


@collection.command("show")
@click.argument("ref")
@json_option
@click.pass_context
@handle_errors
def show(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Show a collection (by id or name) with its papers and notes.

    Example: kb collection show "Reading group"
    """
    _print_collection(open_library(ctx).collection(ref), as_json)


@collection.command("add")
@click.argument("ref")
@click.argument("paper")
@click.option("--note", help="The group's note on the paper (kept as is when not given).")
@json_option
@click.pass_context
@handle_errors
def add(ctx: click.Context, ref: str, paper: str, note: str | None, as_json: bool) -> None:
    """Add a paper (by id or key) to a collection; again with --note changes its note.

    Example: kb collection add "Reading group" 3 --note "Read section 4 first"
    """
    _print_collection(open_library(ctx).add_to_collection(ref, paper, note), as_json)


@collection.command("remove")
@click.argument("ref")
@click.argument("paper")
@json_option
@click.pass_context
@handle_errors
def remove(ctx: click.Context, ref: str, paper: str, as_json: bool) -> None:
    """Take a paper out of a collection; the paper stays in the library.

    Example: kb collection remove "Reading group" 3
    """
    _print_collection(open_library(ctx).remove_from_collection(ref, paper), as_json)


@collection.command("note")
@click.argument("ref")
@click.argument("paper")
@click.argument("text")
@json_option
@click.pass_context
@handle_errors
def note(ctx: click.Context, ref: str, paper: str, text: str, as_json: bool) -> None:
    """Set the note on a paper in a collection ("" clears it; a new paper is added).

    Example: kb collection note "Reading group" 3 "对齐税的定义在第2节"
    """
    _print_collection(open_library(ctx).add_to_collection(ref, paper, text), as_json)


@collection.command("edit")
@click.argument("ref")
@click.option("--name", help="A new name.")
@click.option("--description", help="A new description.")
@json_option
@click.pass_context
@handle_errors
def edit(
    ctx: click.Context, ref: str, name: str | None, description: str | None, as_json: bool
) -> None:
    """Rename a collection and/or change its description.

    Example: kb collection edit "Reading group" --name "Reading group 2025"
    """
    found = open_library(ctx).update_collection(ref, name=name, description=description)
    _print_collection(found, as_json, items=False)


@collection.command("delete")
@click.argument("ref")
@click.pass_context
@handle_errors
def delete(ctx: click.Context, ref: str) -> None:
    """Delete a collection and its notes; its papers stay in the library.

    Example: kb collection delete "Reading group"
    """
    lib = open_library(ctx)
    found = lib.collection(ref)
    lib.delete_collection(found.id)
    click.echo(f"deleted collection {found.id}: {found.name}")


@click.command("export")
@click.option("--collection", "collection_ref", help="Export this collection (id or name).")
@click.option("--query", help="Export the papers this search finds.")
@click.option("-k", type=click.IntRange(1, 100), help="Papers of --query (KB_SEARCH_K).")
@click.option("--lang", type=click.Choice(["en", "zh", "any", "all"]), help="With --query.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="bibtex",
    show_default=True,
    help="bibtex, ris (Zotero, EndNote) or csl-json (pandoc, citeproc).",
)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write to this file."
)
@click.pass_context
@handle_errors
def export_command(
    ctx: click.Context,
    collection_ref: str | None,
    query: str | None,
    k: int | None,
    lang: str | None,
    fmt: str,
    output: Path | None,
) -> None:
    """Export a collection, a search's papers, or the whole library as a bibliography.

    Without --collection or --query the whole library is exported. Output goes to stdout,
    or (written atomically) to the -o file.

    Example: kb export --collection "Reading group" --format ris -o reading.ris
    """
    if collection_ref is not None and query is not None:
        raise click.UsageError("Give --collection or --query, not both.")
    if query is None and (k is not None or lang is not None):
        raise click.UsageError("-k and --lang go with --query.")
    lib = open_library(ctx)
    if collection_ref is not None:
        found = lib.collection(collection_ref)
        count = len(found.items)
        text = lib.export_collection(found.id, fmt)
    else:
        if query is not None:
            papers = _found(ctx, lib, SearchQuery.build(query, k=k, lang=lang))
        else:
            papers = lib.all_papers()
        count = len(papers)
        text = lib.export(papers, fmt)
    if output is None:
        click.echo(text, nl=False)
        if count == 0:
            click.echo("exported 0 papers: nothing matched", err=True)
        return
    _write(output, text)
    click.echo(f"exported {count} papers to {output} ({fmt})", err=True)


def _write(path: Path, text: str) -> None:
    from kb.store import atomic_path

    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(text.encode("utf-8"))
    except OSError as e:
        raise InvalidInput(f"Cannot write {str(path)!r}: {e.strerror or e}.") from e


def _found(ctx: click.Context, lib: Any, query: SearchQuery) -> list[Paper]:
    """The papers a search finds: asked of a running ``kb serve`` (whose models are loaded),
    else searched here."""
    from kb.cli.remote import ask_server

    answer = ask_server(get_settings(ctx), query.params())
    if answer is not None:  # the papers are read from the store: no model needed
        return [lib.paper(int(hit["paper"]["id"])) for hit in answer["results"]]
    return [hit.paper for hit in loaded_library(ctx, lib=lib).search(query).results]
