"""``kb ingest``, ``kb edit`` and ``kb doctor``: getting papers in and keeping the store sound.

Registered on the ``kb`` group in ``kb/cli.py``.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from kb.cli.common import (
    echo_json,
    get_settings,
    handle_errors,
    json_option,
    open_library,
    refuse_write,
)
from kb.errors import ConfigError, InvalidInput
from kb.settings import is_ray_address
from kb.types import IngestSummary

if TYPE_CHECKING:
    from kb.library.ingest import IngestEvent
    from kb.settings import Settings

_OUTCOMES = ("ingested", "updated", "duplicate", "skipped", "failed")


class Progress:
    """The ingest progress bar (files, pages/s, failures so far) and the --report lines."""

    def __init__(self, *, quiet: bool, report: IO[str] | None) -> None:
        from tqdm import tqdm

        self.bar = tqdm(desc="ingest", unit="file", disable=quiet or None, file=sys.stderr)
        self.report = report
        self.failed = 0
        self.pages = 0
        self.parsed = 0
        self.started = time.perf_counter()

    def __call__(self, event: IngestEvent) -> None:
        if event.status == "start":
            self.bar.reset(total=(self.bar.total or 0) + (event.total or 0))
            return
        if event.status == "file":  # a record feed is done
            self.bar.update(1)
            return
        if event.status == "parsed":  # read; stored after its batch is embedded
            self.parsed += 1
            self._postfix()
            return
        if event.status not in _OUTCOMES:
            return
        if self.report is not None:
            self.report.write(json.dumps(event.report(), ensure_ascii=False) + "\n")
            self.report.flush()
        self.pages += event.pages or 0
        if event.status == "failed":
            self.failed += 1
            self.bar.write(f"failed: {event.detail}", file=sys.stderr)
        elif event.needs_ocr:
            note = event.detail.partition("; ")[2] or f"pages {event.needs_ocr} need OCR"
            self.bar.write(f"note: {note}", file=sys.stderr)
        self._postfix(refresh=False)
        if not event.name.lower().endswith(".jsonl") and ".jsonl#" not in event.name.lower():
            self.bar.update(1)  # feeds advance once, with their "file" event

    def _postfix(self, *, refresh: bool = True) -> None:
        rate = self.pages / max(time.perf_counter() - self.started, 1e-6)
        self.bar.set_postfix(
            parsed=self.parsed, pages_s=f"{rate:.1f}", failed=self.failed, refresh=refresh
        )

    def close(self) -> None:
        self.bar.close()


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--ocr", is_flag=True, help="OCR pages without text (needs Tesseract).")
@click.option("--workers", type=click.IntRange(0, 64), help="Parsing processes (KB_WORKERS).")
@click.option(
    "--report",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write one JSON line per input here (status, paper id, pages, chars, ..., error).",
)
@click.option(
    "--watch",
    type=click.Path(path_type=Path, file_okay=False),
    help="Then keep ingesting new or changed files dropped into this folder (Ctrl-C stops).",
)
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[ADDRESS]",
    help="Parse and embed on Ray (pip install -e '.[ray]'): local (default, or "
    "KB_RAY_ADDRESS), auto (the cluster joined with `ray start`) or HOST:PORT. Put it after "
    "the paths, or write --ray=ADDRESS. See docs/SCALING.md.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, only failures and summary.")
@json_option
@click.pass_context
@handle_errors
def ingest(
    ctx: click.Context,
    paths: tuple[Path, ...],
    ocr: bool,
    workers: int | None,
    report: Path | None,
    watch: Path | None,
    ray_address: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Add PDFs and JSONL record files (folders are searched recursively).

    Unchanged files are skipped, a changed file replaces its old version, and a file that is
    the same work as a stored paper (same DOI / arXiv id, or near-identical text) is recorded
    on that paper.

    Example: kb ingest papers/ feed.jsonl --report ingest.jsonl

    Example: kb ingest /shared/papers/ --ray auto

    Exit status: 0 when every input was ingested or skipped, 1 when some failed.
    """
    ray, paths = _ray_address(get_settings(ctx), ray_address, paths)
    if not paths and watch is None:
        raise click.UsageError("Give files or folders to ingest, or --watch FOLDER.")
    if workers is not None:
        ctx.obj["settings"] = get_settings(ctx).replace(workers=workers)
    if ocr:
        from ingest.ocr import ocr_available

        if (reason := ocr_available()) is not None:
            click.echo(f"--ocr: {reason}; going on without OCR", err=True)
    lib = open_library(ctx)
    out = _open_report(report)
    progress = Progress(quiet=quiet or as_json, report=out)
    total = IngestSummary()
    try:
        if paths:
            _merge(total, lib.ingest(list(paths), listener=progress, ocr=ocr, ray=ray))
        if watch is not None:
            _watch(lib, watch, progress, total, ocr=ocr, quiet=quiet or as_json)
    finally:
        progress.close()
        if out is not None:
            out.close()
    _print_summary(total, as_json)
    if total.failed:
        ctx.exit(1)


def _ray_address(
    settings: Settings, flag: str | None, paths: tuple[Path, ...]
) -> tuple[str | None, tuple[Path, ...]]:
    """The Ray address of this ingest (None: no Ray) and the paths to ingest.

    ``--ray`` alone is KB_RAY_ADDRESS, else ``local``. Click takes the word after ``--ray``
    as its value, so ``--ray papers/`` (an existing path, not an address) is read as
    ``--ray`` followed by that path.
    """
    setting = settings.ray_address
    if flag is None:
        return setting or None, paths
    if flag and Path(flag).exists() and not is_ray_address(flag):
        return setting or "local", (Path(flag), *paths)
    address = flag or setting or "local"
    try:
        settings.replace(ray_address=address)  # the setting's own check of an address
    except ConfigError as e:
        message = str(e).replace("KB_RAY_ADDRESS", "--ray")
        raise click.BadParameter(message, param_hint="--ray") from None
    return address, paths


def _open_report(report: Path | None) -> IO[str] | None:
    if report is None:
        return None
    try:
        return report.open("w", encoding="utf-8")
    except OSError as e:
        raise InvalidInput(f"Cannot write the report {str(report)!r}: {e.strerror or e}.") from e


def _watch(
    lib: Any, folder: Path, progress: Progress, total: IngestSummary, *, ocr: bool, quiet: bool
) -> None:
    stop = threading.Event()
    interval = lib.settings.watch_interval_s
    # A service manager stops the watcher with SIGTERM: treat it like Ctrl-C (a clean stop).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if not quiet:
        click.echo(f"watching {folder} every {interval} s; Ctrl-C stops", err=True)
    try:
        lib.watch(
            folder,
            interval=interval,
            stop=stop,
            listener=progress,
            on_round=lambda summary: _merge(total, summary),
            ocr=ocr,
        )
    except KeyboardInterrupt:
        stop.set()
        click.echo("\nstopped watching; what was ingested is saved", err=True)


def _merge(total: IngestSummary, part: IngestSummary) -> None:
    total.ingested += part.ingested
    total.skipped += part.skipped
    total.failed += part.failed


def _print_summary(summary: IngestSummary, as_json: bool) -> None:
    if as_json:
        echo_json(
            {
                "ingested": summary.ingested,
                "skipped": summary.skipped,
                "failed": [{"input": n, "error": e} for n, e in summary.failed],
            }
        )
    else:
        click.echo(
            f"ingested {len(summary.ingested)}, skipped {len(summary.skipped)}, "
            f"failed {len(summary.failed)}"
        )


@click.command()
@click.argument("ref")
@click.option("--title", help="The correct title.")
@click.option("--authors", help="Authors separated by ';' (e.g. '张三; Jane Doe').")
@click.option("--year", type=click.IntRange(1000, 3000), help="Publication year.")
@click.option("--abstract", help="The abstract.")
@click.option("--doi", help="DOI, e.g. 10.48550/arXiv.2401.00001.")
@click.option("--arxiv-id", help="arXiv id without version, e.g. 2401.00001.")
@click.option("--url", help="A link to the paper.")
@click.option(
    "--author-kind",
    type=click.Choice(["person", "organisation"]),
    help="Whether the authors are people or organisations (cited whole).",
)
@click.option("--title-en", help="A Chinese paper's English title.")
@click.option(
    "--lang", help="The paper's language (en, zh, ...; und: unknown), e.g. for a scanned paper."
)
@json_option
@click.pass_context
@handle_errors
def edit(ctx: click.Context, ref: str, as_json: bool, **fields: Any) -> None:
    """Correct a paper's metadata; the correction survives re-ingest.

    Example: kb edit 3 --title "Sleeper Agents" --authors "Evan Hubinger; 张三" --year 2024

    Example: kb edit 7 --authors "World Economic Forum" --author-kind organisation

    Example: kb edit 9 --lang zh
    """
    from tqdm import tqdm

    bars: list[Any] = []

    def progress(done: int, total: int) -> None:  # a new title: every chunk embedded again
        if not bars:
            bars.append(tqdm(desc="re-embedding", total=total, unit="chunk", file=sys.stderr,
                             disable=as_json or None))  # fmt: skip
        bars[0].update(done - bars[0].n)

    try:
        paper = open_library(ctx).edit(ref, fields, progress)
    finally:
        for bar in bars:
            bar.close()
    if as_json:
        echo_json(paper.to_dict())
        return
    click.echo(f"{paper.id}: {paper.title} (edited: {', '.join(paper.edited)})")


@click.command()
@click.option("--repair", is_flag=True, help="Fix what can be fixed (rebuilds the indexes).")
@json_option
@click.pass_context
@handle_errors
def doctor(ctx: click.Context, repair: bool, as_json: bool) -> None:
    """Check the SQLite store against the FAISS indexes; --repair fixes what it can.

    Example: kb doctor --repair

    Exit status: 0 when healthy (or repaired), 1 when problems remain.
    """
    if repair:
        refuse_write(ctx, f"{ctx.command_path} --repair")
    report = open_library(ctx).doctor(repair=repair)
    if as_json:
        echo_json(report.to_dict())
    else:
        for f in report.findings:
            state = "ok" if not f.count else ("repaired" if f.repaired else "PROBLEM")
            if not f.repairable and f.count:
                state = "DAMAGED" if f.damaged else "warning"
            detail = f" ({f.detail})" if f.count and f.detail else ""
            click.echo(f"{state:>8}  {f.check}: {f.count}{detail}")
        damaged = any(f.damaged and f.count for f in report.findings)
        advice = "see above: repair cannot fix it" if damaged else "run `kb doctor --repair`"
        warned = any(f.count and not f.repairable and not f.damaged for f in report.findings)
        healthy = "healthy, with the warnings above" if warned else "healthy"
        click.echo(healthy if report.healthy else f"problems found: {advice}")
    if not report.healthy:
        ctx.exit(1)
