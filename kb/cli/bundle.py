"""``kb export-bundle`` and ``kb import-bundle``: two groups pooling their libraries by file.

Registered on the ``kb`` group in ``kb/cli.py``; each wraps one ``kb.bundle.export`` call.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from kb.cli.common import echo_json, handle_errors, json_option, open_library


def _progress_bar(desc: str, quiet: bool) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A tqdm bar on stderr (papers): the callback for ``kb.bundle.export`` and its close."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="paper", disable=quiet or None, file=sys.stderr)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return update, bar.close


@click.command("export-bundle")
@click.argument("dest", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--with-pdfs", is_flag=True, help="Also carry the papers' PDF files.")
@click.option("--ids", help="Only these papers: ids or keys, comma-separated.")
@click.option("--collection", help="Only this collection (id or name): its papers, its notes.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@json_option
@click.pass_context
@handle_errors
def export_bundle(
    ctx: click.Context,
    dest: Path,
    with_pdfs: bool,
    ids: str | None,
    collection: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Write the library's papers, chunks and vectors (and PDFs) to one bundle file.

    The collections of those papers travel too, with their notes (`--collection`: only
    that one). Another kb that uses the same model imports it with `kb import-bundle`,
    without re-embedding anything.

    Example: kb export-bundle lab.kbundle --with-pdfs
    """
    from kb.bundle.export import export_bundle as export
    from kb.bundle.export import select_papers

    lib = open_library(ctx)
    chosen = None
    if ids is not None or collection is not None:
        refs = [r.strip() for r in (ids or "").split(",") if r.strip()]
        chosen = select_papers(lib, refs, collection)
    progress, close = _progress_bar("export", quiet or as_json)
    try:
        summary = export(
            lib,
            dest,
            with_pdfs=with_pdfs,
            paper_ids=chosen,
            collection=collection,
            progress=progress,
        )
    finally:
        close()
    if as_json:
        echo_json(summary.to_dict())
        return
    for note in summary.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(
        f"wrote {dest}: {summary.papers} papers, {summary.chunks} chunks, {summary.pdfs} PDFs, "
        f"{summary.collections} collections ({'; '.join(summary.encoders)})"
    )


@click.command("import-bundle")
@click.argument("bundle", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, only notes and summary.")
@json_option
@click.pass_context
@handle_errors
def import_bundle(ctx: click.Context, bundle: Path, quiet: bool, as_json: bool) -> None:
    """Merge a bundle from `kb export-bundle` into this library.

    Papers already here are skipped, the same work under another file (same DOI / arXiv id,
    or near-identical text) gains the bundle's tags and PDFs, the rest are added with their
    vectors as they are. The bundle must come from a kb with the same model. Its collections
    are created, or merged into the one here of the same name (a note here is kept).

    Example: kb import-bundle lab.kbundle

    Exit status: 0 when no paper or collection failed, 1 otherwise.
    """
    from kb.bundle.export import import_bundle as run_import

    progress, close = _progress_bar("import", quiet or as_json)
    try:
        summary = run_import(open_library(ctx), bundle, progress=progress)
    finally:
        close()
    if as_json:
        echo_json(summary.to_dict())
    else:
        for note in summary.notes:
            click.echo(f"note: {note}", err=True)
        for key, why in summary.failed:
            click.echo(f"failed: {key}: {why}", err=True)
        for name, why in summary.collections_failed:
            click.echo(f"failed: collection {name!r}: {why}", err=True)
        click.echo(summary.collections_line())
        click.echo(summary.line())
    if not summary.ok:
        ctx.exit(1)
