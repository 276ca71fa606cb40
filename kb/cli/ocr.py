"""``kb ocr``: read again the pages that no extractor could read, of papers already stored.

Registered on the ``kb`` group in ``kb/cli/main.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from kb.cli.common import echo_json, handle_errors, json_option, open_library
from kb.cli.ingest import Progress

if TYPE_CHECKING:
    from kb.library.ingest import IngestEvent


def readers() -> tuple[list[str], list[str]]:
    """(what is installed to read unread pages, what is missing and how to install it)."""
    from ingest.ocr import DEFAULT_LANGS, ocr_available
    from ingest.poppler import INSTALL_HINT, poppler_available

    found, missing = [], []
    if poppler_available():
        found.append("pdftotext (poppler)")
    else:
        missing.append(f"pdftotext is not installed ({INSTALL_HINT})")
    reason = ocr_available()
    if reason is None:
        found.append(f"Tesseract with {DEFAULT_LANGS}")
    else:
        missing.append(reason)
    return found, missing


@click.command("ocr")
@click.argument("ids", nargs=-1, type=click.IntRange(1))
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, only the outcome.")
@json_option
@click.pass_context
@handle_errors
def ocr_command(ctx: click.Context, ids: tuple[int, ...], quiet: bool, as_json: bool) -> None:
    """Read the pages without text of stored papers (pdftotext, then Tesseract OCR).

    Each paper is updated in place: it keeps its id, tags, edits and collections. Without
    IDs, every paper with pages that need OCR is read (`kb show ID --json`: needs_ocr).

    Example: kb ocr 12 15

    Exit status: 0 when every paper was read (or had nothing to read), 1 when some failed.
    """
    found, missing = readers()
    if not found:
        raise click.ClickException(
            "Nothing here can read pages without text: " + "; ".join(missing) + "."
        )
    if not as_json:
        note = f"; not installed: {'; '.join(missing)}" if missing else ""
        click.echo(f"reading with {' and '.join(found)}{note}", err=True)
    lib = open_library(ctx)
    if not ids and not lib.pages_needing_ocr():
        if as_json:
            echo_json({"updated": [], "skipped": [], "failed": []})
        else:
            click.echo("No paper has pages that need OCR.")
        return
    events: list[IngestEvent] = []
    progress = Progress(quiet=quiet or as_json, report=None)

    def listen(event: IngestEvent) -> None:
        if event.status in ("updated", "skipped", "failed"):
            events.append(event)
        progress(event)

    try:
        summary = lib.ocr(list(ids) or None, listener=listen)
    finally:
        progress.close()
    if as_json:
        echo_json({s: [e.report() for e in events if e.status == s] for s in _SHOWN})
    else:
        for event in events:
            click.echo(_line(event))
    if summary.failed:
        ctx.exit(1)


_SHOWN = ("updated", "skipped", "failed")


def _line(event: IngestEvent) -> str:
    """One paper's outcome, e.g. "12: updated, pages read by poppler+pypdf; none unread"."""
    head = f"{event.paper_id if event.paper_id is not None else event.name}: {event.status}"
    if event.status == "failed":
        return f"{head}: {event.detail}"
    if event.status == "skipped" and not event.needs_ocr:
        return f"{head} ({event.detail})"
    unread = event.needs_ocr or []
    left = f"{len(unread)} still without text" if unread else "every page has text"
    return f"{head}, {event.pages} pages read by {event.extractor}; {left}"
