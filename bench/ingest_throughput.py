"""Ingest throughput: PDF extraction pages/s and embedding tokens/s, next to bare pypdf and ST.

Inputs: the PDFs of ../shared/data/pdfs (read in place) and a batch of generated papers
(English and Chinese alternating, 2-4 pages each, text from the abstracts of
../shared/data/xling/llm_papers_all.jsonl.gz, one record used once) written with reportlab to a
temporary folder.

1. Extraction, in this process, one file after another: bare pypdf
   (``PdfReader(path).pages[i].extract_text()`` for every page) against kb's
   ``ingest.pdf.read_pdf`` (extraction alone: cleaning, a quality check per page, pdfminer.six
   on poor pages) and ``ingest.documents.parse_pdf`` (read_pdf plus all else a parse does:
   hashing, headers and footers, references, language, metadata, chunking). Bare pypdf
   followed by kb's ``clean_text`` is timed too, so that read_pdf's extra time splits into
   normalisation and fallback machinery. Times are CPU seconds of this
   process (the machine is shared; wall time follows its load), best of ``--repeat``
   alternating runs per file. PDFs are grouped into those that need no fallback (every page
   kept pypdf's text and none was handed to pdfminer) and the others; extraction fallbacks
   should cost at most 25 % on the first group.
2. Full ingest: ``Library.ingest`` of the generated batch into a temporary data dir with
   default settings (workers = cores, both encoders): wall time, papers/s and pages/s, and the
   wall time spent in each encoder's ``encode`` (instrumented, not changed). The chunk texts
   the main encoder received are then embedded again by a bare ``SentenceTransformer.encode``
   (one call, as bench/embed_throughput.py does) for the tokens/s yardstick; tokens are counted
   with the model's tokenizer, prompt included.

    .venv/bin/python bench/ingest_throughput.py [--papers 300] [--shared 22] [--repeat 1]
        [--quick] [--extraction-only] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from benchlib import bare_pypdf_pages
from benchlib import machine as base_machine

from index.embedder import Embedder, Kind, SentenceTransformerEmbedder, load_embedder
from ingest.documents import parse_pdf
from ingest.normalize import clean_text
from ingest.pdf import read_pdf
from ingest.quality import GOOD_QUALITY
from kb.errors import IngestError
from kb.library.encoders import second_encoder
from kb.library.facade import Library
from kb.settings import Settings
from kb.store.files import sha256_file

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PDFS = SHARED / "pdfs"
FEED = SHARED / "xling" / "llm_papers_all.jsonl.gz"
LINES_PER_PAGE = 24  # 14 pt apart from y = 800: the top 40 % of an A4 page
WRAP = {"en": 95, "zh": 46}  # characters per line: Helvetica 10 pt / STSong-Light 10 pt
BUDGET = 0.25  # extraction fallbacks may cost at most this on PDFs that need none
PARSE_TARGET = 0.40  # the whole parse_pdf over bare pypdf, on all the shared PDFs (issue 14)
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


# ------------------------------------------------------------------ generated papers


def _records() -> Generator[dict[str, str]]:
    """The xling records in file order, each with both languages' title and abstract."""
    with gzip.open(FEED, "rt", encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            if all(record.get(k) for k in ("en_title", "zh_title", "en", "zh")):
                yield record


def _paper_pages(index: int, records: Iterator[dict[str, str]]) -> tuple[str, list[list[str]]]:
    """Title and page lines of paper ``index``: sections taken from fresh records."""
    lang = "en" if index % 2 == 0 else "zh"
    n_pages = 2 + index % 3
    first = next(records)
    title = first[f"{lang}_title"]
    lines = [title, f"Author {index}, Lab {index % 7}", ""]
    lines += textwrap.wrap(first[lang], WRAP[lang])
    while len(lines) < n_pages * LINES_PER_PAGE:
        record = next(records)
        lines += ["", record[f"{lang}_title"], *textwrap.wrap(record[lang], WRAP[lang])]
    lines = lines[: n_pages * LINES_PER_PAGE]
    return title, [lines[i : i + LINES_PER_PAGE] for i in range(0, len(lines), LINES_PER_PAGE)]


def _draw_pdf(path: Path, title: str, pages: list[list[str]]) -> None:
    """Write a PDF, one text line per entry; non-ASCII lines use STSong-Light (as tests do)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    if "STSong-Light" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    pdf = canvas.Canvas(str(path), invariant=1)
    pdf.setDateFormatter(lambda *_: "")
    pdf.setTitle(title)
    for lines in pages:
        for row, line in enumerate(lines):
            pdf.setFont("STSong-Light" if _NON_ASCII.search(line) else "Helvetica", 10)
            pdf.drawString(40, 800 - 14 * row, line)
        pdf.showPage()
    pdf.save()


def write_papers(folder: Path, n: int) -> list[Path]:
    """Write ``n`` generated papers into ``folder``; English and Chinese alternate."""
    paths = []
    with closing(_records()) as records:
        for index in range(n):
            try:
                title, pages = _paper_pages(index, records)
            except StopIteration:
                sys.exit(f"error: {FEED.name} has too few records for {n} papers; ask for fewer.")
            path = folder / f"paper_{index:04d}_{'en' if index % 2 == 0 else 'zh'}.pdf"
            _draw_pdf(path, title, pages)
            paths.append(path)
    return paths


# ------------------------------------------------------------------ extraction

PATHS = ("pypdf", "clean", "read_pdf", "parse_pdf")


@dataclass
class FileTiming:
    """Best CPU and wall seconds of each extraction path (PATHS) on one PDF."""

    name: str
    pages: int
    fallback: bool  # a page went to pdfminer, or kept no pypdf text
    cpu: dict[str, float]
    wall: dict[str, float]


def pypdf_cleaned(path: Path) -> list[str]:
    """Bare pypdf plus kb's normalisation of each page (``clean_text``), no quality check."""
    return [clean_text(text) for text in bare_pypdf_pages(path)]


def _parse(path: Path, settings: Settings) -> None:
    try:
        digest = sha256_file(path)  # the pipeline's one hash of the file, before parsing
        parse_pdf(
            path,
            content_hash=digest,
            max_tokens=settings.chunk_tokens,
            overlap=settings.chunk_overlap,
        )
    except IngestError:  # a PDF without usable text: the work was done all the same
        pass


def _needs_fallback(path: Path) -> bool:
    """Whether any page of ``path`` kept no pypdf text or was handed to pdfminer."""
    reports = read_pdf(path, require_text=False).reports
    return any(r.extractor != "pypdf" or r.quality < GOOD_QUALITY for r in reports)


def _timed(fn: Callable[[], T]) -> tuple[float, float, T]:
    """CPU seconds of this process, wall seconds, and the result of ``fn()``."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    return time.process_time() - cpu, time.perf_counter() - wall, result


def measure_file(path: Path, settings: Settings, repeat: int) -> FileTiming:
    """Time every path of PATHS on one PDF, alternating, best of ``repeat``."""
    paths: dict[str, Callable[[], Any]] = {
        "pypdf": lambda: bare_pypdf_pages(path),
        "clean": lambda: pypdf_cleaned(path),
        "read_pdf": lambda: read_pdf(path, require_text=False),
        "parse_pdf": lambda: _parse(path, settings),
    }
    pages = len(bare_pypdf_pages(path))  # untimed: the file is read and pypdf warm for every path
    cpu: dict[str, float] = {}
    wall: dict[str, float] = {}
    for _ in range(max(1, repeat)):  # alternate, so that drift hits every path alike
        for name, fn in paths.items():
            c, w, _ = _timed(fn)
            cpu[name], wall[name] = min(cpu.get(name, c), c), min(wall.get(name, w), w)
    return FileTiming(path.name, pages, _needs_fallback(path), cpu, wall)


def _sums(members: list[FileTiming]) -> tuple[dict[str, float], dict[str, float]]:
    cpu = {k: sum(t.cpu[k] for t in members) for k in PATHS}
    return cpu, {k: sum(t.wall[k] for t in members) for k in PATHS}


EXTRACTION_HEADER = (
    "| PDFs | files | pages | bare pypdf pages/s | read_pdf pages/s | parse_pdf pages/s "
    "| pypdf + clean_text | read_pdf | parse_pdf | read_pdf (wall) |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def extraction_rows(label: str, timings: list[FileTiming]) -> list[str]:
    """Table rows of one PDF set: PDFs that need no fallback, the others, all.

    The last four columns are the extra time over bare pypdf.
    """
    groups = [
        ("no fallback", [t for t in timings if not t.fallback]),
        ("with fallback", [t for t in timings if t.fallback]),
        ("all", timings),
    ]
    rows = []
    for group, members in groups:
        if not members or (group == "all" and len(groups[0][1]) * len(groups[1][1]) == 0):
            continue  # "all" only when both groups have members
        pages = sum(t.pages for t in members)
        cpu, wall = _sums(members)
        rate = {k: pages / max(v, 1e-9) for k, v in cpu.items()}
        extra = {k: cpu[k] / cpu["pypdf"] - 1 for k in PATHS}
        rows.append(
            f"| {label}: {group} | {len(members)} | {pages} | {rate['pypdf']:,.0f} | "
            f"{rate['read_pdf']:,.0f} | {rate['parse_pdf']:,.0f} | {extra['clean']:+.0%} | "
            f"{extra['read_pdf']:+.0%} | {extra['parse_pdf']:+.0%} | "
            f"{wall['read_pdf'] / wall['pypdf'] - 1:+.0%} |"
        )
    return rows


def budget_line(label: str, timings: list[FileTiming]) -> str:
    """Whether extraction (read_pdf) stays within BUDGET of bare pypdf where no fallback ran."""
    clean = [t for t in timings if not t.fallback]
    if not clean:
        return f"- {label}: no PDF without fallback was measured."
    cpu, _ = _sums(clean)
    base = max(cpu["pypdf"], 1e-9)
    extra, check = cpu["read_pdf"] / base - 1, (cpu["read_pdf"] - cpu["clean"]) / base
    verdict = "met" if extra <= BUDGET else "NOT met"
    return (
        f"- {label}, the {len(clean)} PDFs that need no fallback: read_pdf {extra:+.1%} CPU "
        f"over bare pypdf (budget {BUDGET:.0%}: {verdict}), of which {check:+.1%} is the "
        f"fallback machinery (quality check, garbage lines, info) and the rest clean_text; "
        f"the whole parse_pdf {cpu['parse_pdf'] / base - 1:+.1%}."
    )


def parse_line(shared: list[FileTiming]) -> str:
    """The whole parse_pdf's extra CPU over bare pypdf on the shared PDFs, against its target."""
    if not shared:
        return "- parse_pdf: no shared PDF was measured."
    cpu, _ = _sums(shared)
    extra = cpu["parse_pdf"] / max(cpu["pypdf"], 1e-9) - 1
    verdict = "met" if extra <= PARSE_TARGET else "NOT met"
    return (
        f"- parse_pdf on the {len(shared)} shared PDFs: {extra:+.1%} CPU over bare pypdf "
        f"(target {PARSE_TARGET:+.0%}: {verdict})."
    )


# ------------------------------------------------------------------ full ingest


@dataclass
class TimedEncoder:
    """An Embedder that records the wall and CPU time and the texts of every ``encode``."""

    inner: Embedder
    seconds: float = 0.0
    cpu: float = 0.0
    texts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        inner = self.inner
        self.name, self.dim, self.fingerprint = inner.name, inner.dim, inner.fingerprint
        self.numerics = inner.numerics

    def encode(self, texts: list[str], *, kind: Kind, progress: bool = False) -> np.ndarray:
        cpu, wall, vecs = _timed(lambda: self.inner.encode(texts, kind=kind, progress=progress))
        self.seconds, self.cpu = self.seconds + wall, self.cpu + cpu
        self.texts += texts
        return vecs

    def reset(self) -> None:
        self.seconds, self.cpu, self.texts = 0.0, 0.0, []


@dataclass
class IngestRun:
    """What one Library.ingest of the generated papers did and how long it took."""

    papers: int
    pages: int
    setup_s: float  # a new library's one-time work: the encoders' reference means
    wall_s: float
    statuses: dict[str, int]
    main: TimedEncoder
    second: TimedEncoder | None


def _encoders(settings: Settings) -> tuple[TimedEncoder, TimedEncoder | None]:
    """The main and second encoder of ``settings``, loaded, warmed up and instrumented."""
    main = TimedEncoder(load_embedder(settings))
    other = second_encoder(settings)
    second = TimedEncoder(other) if other is not None else None
    for enc in filter(None, (main, second)):
        enc.inner.encode(["warm up"] * 8, kind="passage")
    return main, second


def run_ingest(settings: Settings, pdfs: list[Path], pages: int) -> IngestRun:
    """Ingest ``pdfs`` into a fresh temporary library; its one-time setup is timed apart."""
    main, second = _encoders(settings)
    with tempfile.TemporaryDirectory(prefix="kb-ingest-") as tmp:
        lib = Library(settings.replace(data_dir=Path(tmp)), embedder=main, second=second)
        try:
            _, setup_s, _ = _timed(lib.load)
            for enc in filter(None, (main, second)):
                enc.reset()
            _, wall_s, summary = _timed(lambda: lib.ingest(pdfs))
        finally:
            lib.close()
    counts = {k: len(v) for k, v in vars(summary).items() if isinstance(v, list) and v}
    return IngestRun(len(pdfs), pages, setup_s, wall_s, counts, main, second)


def bare_encode(run: IngestRun, settings: Settings) -> tuple[int, float, float]:
    """Tokens of the main encoder's texts, and CPU and wall seconds of a bare ST encode."""
    inner = run.main.inner
    if not isinstance(inner, SentenceTransformerEmbedder):  # another backend: torch to compare
        inner = load_embedder(dataclasses.replace(settings, embed_backend="torch"))
    assert isinstance(inner, SentenceTransformerEmbedder)
    model = inner.model
    prompt = model.prompts.get("document", "")
    texts = run.main.texts
    tokens = sum(
        len(model.tokenizer(prompt + t, truncation=True, max_length=512)["input_ids"])
        for t in texts
    )
    cpu, wall, _ = _timed(
        lambda: model.encode(
            texts, prompt_name="document", batch_size=settings.batch_size, normalize_embeddings=True
        )
    )
    return tokens, cpu, wall


def ingest_table(run: IngestRun) -> str:
    """The full-ingest table: throughput, and where the wall time went."""
    second = run.second.seconds if run.second else 0.0
    rest = run.wall_s - run.main.seconds - second
    return (
        "| papers | pages | chunks | wall s | papers/s | pages/s | main encoder s "
        "| second encoder s | other s |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {run.papers} | {run.pages} | {len(run.main.texts)} | {run.wall_s:.1f} | "
        f"{run.papers / run.wall_s:.2f} | {run.pages / run.wall_s:.1f} | "
        f"{run.main.seconds:.1f} | {second:.1f} | {rest:.1f} |"
    )


def embedding_table(run: IngestRun, tokens: int, bare_cpu: float, bare_wall: float) -> str:
    """kb's main-encoder embedding inside the ingest against a bare ST encode of its texts."""
    rows = [
        ("kb, inside Library.ingest", run.main.cpu, run.main.seconds),
        ("bare SentenceTransformer.encode", bare_cpu, bare_wall),
    ]
    if run.second is not None:
        name = f"(second encoder {run.second.name}, inside Library.ingest)"
        rows.append((name, run.second.cpu, run.second.seconds))
    lines = [
        "| embedding the same chunk texts | tokens | wall s | tokens/s | CPU s | tokens/CPU-s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, cpu, wall in rows:
        lines.append(
            f"| {name} | {tokens:,} | {wall:.1f} | {tokens / wall:,.0f} | {cpu:.1f} | "
            f"{tokens / cpu:,.0f} |"
        )
    lines.append(
        f"| ratio kb / bare (throughput) | | | {bare_wall / run.main.seconds:.3f} | | "
        f"{bare_cpu / run.main.cpu:.3f} |"
    )
    return "\n".join(lines)


# ------------------------------------------------------------------ report


def machine() -> str:
    return (
        f"{base_machine()}, "
        f"pypdf {version('pypdf')}, pdfminer.six {version('pdfminer.six')}, "
        f"sentence-transformers {version('sentence-transformers')}, torch {version('torch')}"
    )


def code_state() -> str:
    """The commit of the working tree, and whether it has uncommitted changes (read only)."""

    def git(*args: str) -> str:
        # --no-optional-locks: `git status` must not rewrite the index others are using.
        cmd = ["git", "--no-optional-locks", *args]
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout

    try:
        head, dirty = git("rev-parse", "--short", "HEAD").strip(), git("status", "--porcelain")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    return f"commit {head}" + (" with uncommitted changes" if dirty.strip() else "")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=300, help="generated papers to ingest")
    parser.add_argument("--shared", type=int, default=22, help="shared PDFs (smallest first)")
    parser.add_argument("--repeat", type=int, default=1, help="extraction: best of N per file")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 papers, 5 PDFs")
    parser.add_argument(
        "--extraction-only", action="store_true", help="time extraction and parsing only"
    )
    parser.add_argument("--markdown", type=Path, help="also write the tables and setup here")
    args = parser.parse_args()
    if args.quick:
        args.papers, args.shared = min(args.papers, 20), min(args.shared, 5)
    return args


def _extraction(label: str, pdfs: list[Path], settings: Settings, repeat: int) -> list[FileTiming]:
    timings = []
    for path in pdfs:
        timings.append(measure_file(path, settings, repeat))
        t = timings[-1]
        cpu = ", ".join(f"{k} {v:.2f}" for k, v in t.cpu.items())
        note = "fallback" if t.fallback else "no fallback"
        print(f"{label} {t.name}: {t.pages} pages, {note}; CPU s: {cpu}", file=sys.stderr)
    return timings


def extraction_report(shared: list[FileTiming], generated: list[FileTiming], repeat: int) -> str:
    """The extraction table and the budget verdicts."""
    rows = extraction_rows("shared", shared) + extraction_rows("generated", generated)
    budget = [
        budget_line("shared", shared),
        budget_line("generated", generated),
        budget_line("both sets", shared + generated),
        parse_line(shared),
    ]
    return (
        "Extraction (one process, one file after another; pages/s of CPU time, best of "
        f"{repeat}; the last four columns: extra time over bare pypdf):\n\n"
        f"{EXTRACTION_HEADER}\n" + "\n".join(rows) + "\n\n" + "\n".join(budget) + "\n\n"
    )


def _warm_up(path: Path, settings: Settings) -> None:
    """Load langdetect's profiles and pdfminer.six before any timing."""
    import pdfminer.high_level  # noqa: F401

    _parse(path, settings)


def main() -> None:
    args = _args()
    warnings.simplefilter("ignore")  # pypdf warns on the damaged shared files
    settings = Settings.from_env()
    load_before, code = _load(), code_state()  # at the start: others may commit meanwhile
    shared = sorted(PDFS.glob("*.pdf"), key=lambda p: p.stat().st_size)[: args.shared]
    with tempfile.TemporaryDirectory(prefix="kb-papers-") as tmp:
        generated = write_papers(Path(tmp), args.papers)
        _warm_up((generated or shared)[0], settings)
        shared_t = _extraction("shared", shared, settings, args.repeat)
        generated_t = _extraction("generated", generated, settings, args.repeat)
        if args.extraction_only:
            print(extraction_report(shared_t, generated_t, args.repeat), end="")
            return
        pages = sum(t.pages for t in generated_t)
        print(f"ingesting {len(generated)} papers ({pages} pages) ...", file=sys.stderr)
        run = run_ingest(settings, generated, pages)
        print(f"bare encode of {len(run.main.texts)} chunks ...", file=sys.stderr)
        tokens, bare_cpu, bare_wall = bare_encode(run, settings)
    report = extraction_report(shared_t, generated_t, args.repeat) + (
        f"Full ingest of the generated papers (Library.ingest, {settings.workers} workers, "
        f"second encoder {settings.second_encoder}; statuses {run.statuses}; a new library's "
        f"one-time setup, not counted: {run.setup_s:.1f} s):\n\n{ingest_table(run)}\n\n"
        f"{embedding_table(run, tokens, bare_cpu, bare_wall)}\n"
    )
    setup = (
        f"- machine: {machine()}\n- code at the start: {code}\n"
        f"- load average (1/5/15 min): {load_before} before, {_load()} after\n"
    )
    print(f"\n{report}\n{setup}", end="")
    if args.markdown:
        command = shlex.join([".venv/bin/python", "bench/ingest_throughput.py", *sys.argv[1:]])
        date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        args.markdown.write_text(
            f"- command: `{command}`\n- date: {date}\n{setup}\n{report}",
            encoding="utf-8",
        )


if __name__ == "__main__":
    main()
