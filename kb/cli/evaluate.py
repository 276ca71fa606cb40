"""``kb eval``: retrieval quality of the configured model on a QRELS file (see kb.evaluate).

Registered on the ``kb`` group in ``kb/cli.py``. It does not import ``kb.cli`` (which imports
this module), so it maps errors itself, the same way: ``KBError`` -> one line, exit 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from kb.errors import KBError
from kb.settings import Settings

# The search modes of kb.library.search.SEARCH_MODES, spelled
# out so `kb --help` imports no model code.
MODES = ("dense", "keyword", "hybrid")


@click.command("eval")
@click.argument("qrels", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--mode",
    "modes",
    multiple=True,
    type=click.Choice(MODES),
    help="Search mode to evaluate (repeatable; default: all three).",
)
@click.option(
    "-k",
    type=click.IntRange(1, 100),
    default=10,
    show_default=True,
    help="Papers fetched per query; the cutoff of Recall, MRR and nDCG.",
)
@click.option(
    "--docs",
    "docs",
    multiple=True,
    type=click.Path(path_type=Path, exists=True),
    help="A folder of PDFs (or a PDF) to ingest as documents, keyed by file name (repeatable).",
)
@click.option(
    "--keep",
    type=click.Path(path_type=Path, file_okay=False),
    help="Build the library in this folder and keep it; a later run reuses its embeddings.",
)
@click.option(
    "--off-topic",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="A text file of queries about nothing in the documents, one per line: in dense and "
    "hybrid mode none should have a result at or above the relevance floor (KB_MIN_SCORE).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a Markdown table.")
@click.pass_context
def eval_command(
    ctx: click.Context,
    qrels: Path,
    modes: tuple[str, ...],
    k: int,
    docs: tuple[Path, ...],
    keep: Path | None,
    off_topic: Path | None,
    as_json: bool,
) -> None:
    """Measure search quality on a QRELS file of documents and queries with known answers.

    Ingests the file's documents (records, and the PDFs of --docs) into a temporary library
    (the store in --data-dir is not touched), runs every query in each mode and prints
    Recall@1, Recall@k, MRR@k, nDCG@k (graded when the file grades relevance) and P@5 per
    direction (EN->EN, ZH->ZH, EN->ZH, ZH->EN) and query kind, the latency per mode, and the
    documents that crowd the top 5 beyond their judged share, and (with --off-topic) how the
    relevance floor separates off-topic queries from real ones. A mode the library does not
    offer is reported as unavailable. The file format is in kb/evaluate/qrels.py.

    Example: kb eval qrels.jsonl --mode dense -k 10

    Example: kb eval fulltext.jsonl --docs pdfs/ --docs more-pdfs/ --keep /tmp/evallib

    Example: kb eval fulltext.jsonl --docs pdfs/ --off-topic bench/offtopic_queries.txt

    Exit status: 0 when at least one mode was evaluated, 1 otherwise.
    """
    from kb.evaluate import evaluate

    settings: Settings = ctx.obj["settings"]
    try:
        report = evaluate(
            qrels,
            settings,
            modes=list(modes or MODES),
            k=k,
            docs=list(docs),
            keep=keep,
            progress=not as_json,
            off_topic=read_off_topic(off_topic) if off_topic else (),
        )
    except KBError as e:
        raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(report.to_markdown(), nl=False)
    if not any(m.available for m in report.modes):
        ctx.exit(1)


def read_off_topic(path: Path) -> list[str]:
    """The non-empty lines of an off-topic query file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise click.ClickException(f"Cannot read {path}: {e}") from e
    return [line.strip() for line in text.splitlines() if line.strip()]
