"""The ``kb`` command line: one click group of verbs, each a thin wrapper of one library call."""

from __future__ import annotations

import dataclasses
import sys
from collections import Counter
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
from kb.cli.remote import ask_server
from kb.errors import KBError
from kb.library.query import SearchQuery
from kb.settings import Settings, describe

LANG_CHOICE = click.Choice(["en", "zh", "any", "all"])
# the commands that change the library, refused when KB_READ_ONLY is set
WRITE_COMMANDS = frozenset({"ingest", "edit", "tag", "remove", "reindex", "import-bundle", "ocr"})


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", type=click.Path(path_type=Path), help="Store folder (KB_DATA_DIR).")
@click.option("--model", help="Embedding model name or path (KB_MODEL).")
@click.version_option(package_name="kb")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, model: str | None) -> None:
    """kb: a bilingual (English/Chinese) knowledge base of AI-safety papers.

    Example: kb ingest papers/ && kb search "reward hacking" --lang zh
    """
    try:
        settings = Settings.from_env().replace(data_dir=data_dir, model=model)
    except KBError as e:
        raise click.UsageError(str(e)) from e
    ctx.obj = {"settings": settings}
    refuse_if_read_only(ctx, WRITE_COMMANDS)


@cli.command()
@click.argument("query")
@click.option("-k", type=click.IntRange(1, 100), help="Number of papers (KB_SEARCH_K).")
@click.option("--lang", type=LANG_CHOICE, help="Only papers/chunks in this language.")
@click.option("--mode", type=click.Choice(["dense", "keyword", "hybrid"]), help="KB_SEARCH_MODE.")
@click.option("--year-from", type=click.IntRange(1000, 3000), help="Only papers from this year.")
@click.option("--year-to", type=click.IntRange(1000, 3000), help="Only papers up to this year.")
@click.option("--author", help="Only papers with an author containing this text.")
@click.option("--tag", help="Only papers with this tag (see `kb tag`).")
@click.option(
    "--min-score",
    type=float,
    help="Leave out results scoring under this (default: show them, marked weak under "
    "KB_MIN_SCORE).",
)
@json_option
@click.pass_context
@handle_errors
def search(
    ctx: click.Context,
    query: str,
    k: int | None,
    lang: str | None,
    mode: str | None,
    year_from: int | None,
    year_to: int | None,
    author: str | None,
    tag: str | None,
    min_score: float | None,
    as_json: bool,
) -> None:
    """Search in English or Chinese; papers in both languages come back.

    Example: kb search "如何检测欺骗性对齐" -k 5 --year-from 2023
    """
    query_ = SearchQuery.build(
        query,
        k=k,
        lang=lang,
        mode=mode,
        year_from=year_from,
        year_to=year_to,
        author=author,
        tag=tag,
        min_score=min_score,
    )
    answer = ask_server(get_settings(ctx), query_.params())
    if answer is None:
        answer = loaded_library(ctx, quiet=as_json).search(query_).to_dict()
    _print_results(answer, as_json)


@cli.command()
@click.argument("ref")
@click.option("-k", type=click.IntRange(1, 100), help="Number of papers (KB_SEARCH_K).")
@json_option
@click.pass_context
@handle_errors
def related(ctx: click.Context, ref: str, k: int | None, as_json: bool) -> None:
    """Papers nearest to one paper (by id or key), in both languages.

    Example: kb related 3 -k 5
    """
    answer = None
    if ref.isdigit():  # the server takes a paper id (a key is looked up here)
        like = {"like": ref} if k is None else {"like": ref, "k": k}
        answer = ask_server(get_settings(ctx), like)
    if answer is None:
        answer = loaded_library(ctx, quiet=as_json).related(ref, k=k).to_dict()
    _print_results(answer, as_json)


def _print_results(result: dict[str, Any], as_json: bool) -> None:
    """A search's answer (``SearchResponse.to_dict()``, here or from the server)."""
    if as_json:
        echo_json(result)
        return
    hits = result["results"]
    if not hits:
        click.echo("No results. Is the library empty? `kb stats` tells; `kb ingest` adds papers.")
    for n, hit in enumerate(hits, 1):
        p = hit["paper"]
        year = f" ({p['year']})" if p.get("year") else ""
        weak = "  (weak)" if hit.get("weak") else ""
        score = hit["score"]
        click.echo(f"{n}. [{p['lang']}] {p['title']}{year}  score {score:.3f}{weak}  id {p['id']}")
        if p.get("authors"):
            click.echo(f"   {', '.join(p['authors'])}")
        for s in hit.get("snippets", []):
            where = f"p.{s['page']}" if s.get("page") else "record"
            click.echo(f"   {where}: {_one_line(s['text'], 160)}")
    click.echo(f"({len(hits)} results in {result['took_ms']:.0f} ms)")


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@cli.command()
@click.argument("ref")
@json_option
@click.pass_context
@handle_errors
def show(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Show one paper by id or key.

    Example: kb show 3
    """
    lib = open_library(ctx)
    paper = lib.paper(ref)
    pages = lib.pages(paper.id)
    if as_json:
        echo_json(paper.to_dict() | {"pages": [dataclasses.asdict(p) for p in pages]})
        return
    for name, value in paper.to_dict().items():
        if isinstance(value, list):
            value = ", ".join(map(str, value))
        click.echo(f"{name:>12}: {value if value not in (None, '') else '-'}")
    if pages:
        used = Counter(p.extractor for p in pages)
        counts = ", ".join(f"{n} {name}" for name, n in used.most_common())
        click.echo(f"{'extraction':>12}: {counts} (pages by the extractor whose text was kept)")


@cli.command("list")
@click.option("--lang", type=LANG_CHOICE, help="Only papers in this language.")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@json_option
@click.pass_context
@handle_errors
def list_(ctx: click.Context, lang: str | None, limit: int, offset: int, as_json: bool) -> None:
    """List papers in the library.

    Example: kb list --lang zh
    """
    papers = open_library(ctx).papers(limit=limit, offset=offset, lang=lang)
    if as_json:
        echo_json([p.summary() | {"n_chunks": p.n_chunks} for p in papers])
        return
    for p in papers:
        click.echo(f"{p.id:>5}  [{p.lang}]  {p.year or '    '}  {_one_line(p.title, 90)}")


@cli.command()
@json_option
@click.pass_context
@handle_errors
def stats(ctx: click.Context, as_json: bool) -> None:
    """Counts of papers and chunks, by language and kind.

    Example: kb stats --json
    """
    data = open_library(ctx).stats()
    if as_json:
        echo_json(data)
        return
    for name, value in data.items():
        click.echo(f"{name.replace('_', ' '):<16}{_stat(value)}")


def _stat(value: object) -> str:
    """A number with thousands separators, or a breakdown ``en 1,747 · zh 1,746``."""
    if isinstance(value, dict):
        return " · ".join(f"{k} {_stat(v)}" for k, v in value.items()) or "-"
    return f"{value:,}" if isinstance(value, int) else str(value)


@cli.command()
@click.argument("ref")
@click.argument("tags", nargs=-1, required=True)
@click.option("--remove", "untag", is_flag=True, help="Remove these tags instead.")
@click.pass_context
@handle_errors
def tag(ctx: click.Context, ref: str, tags: tuple[str, ...], untag: bool) -> None:
    """Tag a paper (by id or key); search can then filter by tag.

    Example: kb tag 3 deception reading-group
    """
    paper = open_library(ctx).tag(ref, list(tags), remove=untag)
    click.echo(f"{paper.id}: {', '.join(paper.tags) or '(no tags)'}")


@cli.command()
@click.argument("ref")
@click.pass_context
@handle_errors
def remove(ctx: click.Context, ref: str) -> None:
    """Remove a paper (by id or key) with its chunks and vectors.

    Example: kb remove 3
    """
    paper = open_library(ctx).remove(ref)
    click.echo(f"removed {paper.id}: {paper.title}")


@cli.command()
@click.pass_context
@handle_errors
def reindex(ctx: click.Context) -> None:
    """Re-embed every paper with the current model (after changing KB_MODEL).

    Example: KB_MODEL=/models/my-st-model kb reindex
    """
    from tqdm import tqdm

    bar = tqdm(desc="reindex", unit="chunk", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    n = open_library(ctx).reindex(progress=progress)
    bar.close()
    click.echo(f"re-embedded {n} chunks with {get_settings(ctx).model}")


@cli.command("prepare-model")
@click.pass_context
@handle_errors
def prepare_model(ctx: click.Context) -> None:
    """Convert (once) and load the embedding model, so later commands start fast.

    Example: kb prepare-model
    """
    from index.embedder import load_embedder

    e = load_embedder(get_settings(ctx))
    click.echo(
        f"model {e.name} ready: dim {e.dim}, fingerprint {e.fingerprint}, backend {e.backend}"
    )


@cli.command()
@json_option
@click.pass_context
def config(ctx: click.Context, as_json: bool) -> None:
    """Show every setting with its current value and environment variable.

    Example: kb config
    """
    s = get_settings(ctx)
    rows = [
        {"env": env, "value": _shown_value(s, env[3:].lower()), "default": d, "help": h}
        for env, d, h in describe()
    ]
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['env']:>18} = {r['value']}    # {r['help']}")


def _shown_value(settings: Settings, name: str) -> str:
    """A setting's value as `kb config` prints it; API keys are never shown."""
    value = str(getattr(settings, name))
    if name == "api_keys" and value:
        return f"({len(settings.keys)} key(s) set, not shown)"
    return value


@cli.command()
@click.option("--host", help="Listen address (KB_HOST, default 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (KB_PORT, default 8000).")
@click.option(
    "--seed",
    "seeds",
    multiple=True,
    type=click.Path(path_type=Path, exists=True),
    help="Ingest these paths first when the library is empty (repeatable).",
)
@click.pass_context
@handle_errors
def serve(ctx: click.Context, host: str | None, port: int | None, seeds: tuple[Path, ...]) -> None:
    """Serve the web API (and its docs at /docs).

    Example: kb serve --port 8000 --seed examples/
    """
    import uvicorn

    from api.app import create_app

    settings = get_settings(ctx).replace(host=host, port=port)
    lib = open_library(ctx)
    lib.load()  # load the model and index before taking requests
    if seeds and lib.count() == 0 and settings.read_only:
        click.echo("the library is empty, but read-only (KB_READ_ONLY=1): --seed skipped")
    elif seeds and lib.count() == 0:
        names = ", ".join(str(p) for p in seeds)
        click.echo(f"the library is empty: ingesting {names} first (about 15 s for the samples)")
        summary = lib.ingest(list(seeds))
        click.echo(f"seeded the empty library: ingested {len(summary.ingested)} papers")
    click.echo(f"kb serving {settings.data_dir} on http://{settings.host}:{settings.port}")
    app = create_app(settings, library=lib)
    from kb.cli.remote import announce

    # while it runs, `kb search` on this data folder asks it instead of loading the models
    with announce(settings, settings.host, settings.port):
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")


from kb.cli.bundle import export_bundle, import_bundle  # noqa: E402 - after the group exists
from kb.cli.collections import collection, export_command  # noqa: E402
from kb.cli.evaluate import eval_command  # noqa: E402
from kb.cli.ingest import doctor, edit, ingest  # noqa: E402
from kb.cli.ocr import ocr_command  # noqa: E402

cli.add_command(eval_command)
cli.add_command(export_bundle)
cli.add_command(import_bundle)
cli.add_command(ocr_command)
for command in (ingest, edit, doctor, collection, export_command):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="kb")
