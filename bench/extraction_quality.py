"""Text quality and cost of PDF extraction on the shared PDFs: pypdf alone vs the pipeline.

For each PDF in ../shared/data/pdfs, "before" is what ingest did until 2026-11: pypdf's
``extract_text`` per page with the old light cleaning (NFKC, control characters, spaces);
"after" is ``ingest.pdf.read_pdf`` (pypdf, judged per page by ``ingest.quality``, with
pdfminer.six on the poor pages) followed by the document-level steps of ``parse_pdf``
(running headers and footers, references). A page counts as good when its text scores at
least ``GOOD_QUALITY``. Prints per file: pages, pages handed to pdfminer, share of good
pages before and after, the extractor whose text was kept, the share of CJK among letters
and the share of Latin letters in over-long runs (lost word spaces) before and after, and
the CPU seconds of each path in this process (best of ``--repeat`` alternating runs; CPU
time, because the machine is shared and wall time follows its load).

    .venv/bin/python bench/extraction_quality.py [--repeat 3] [--markdown docs/EXTRACTION.md]
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TypeVar

from benchlib import bare_pypdf_pages
from benchlib import machine as base_machine

from ingest.lang import CJK_PUNCT, UNSPACED_CHARS
from ingest.normalize import clean_text, drop_running_lines
from ingest.pdf import read_pdf
from ingest.pdf_fonts import mended_word_spaces
from ingest.quality import GOOD_QUALITY, USABLE_QUALITY, text_quality
from ingest.references import split_references

T = TypeVar("T")
PDFS = Path(__file__).resolve().parents[2] / "shared" / "data" / "pdfs"

# The cleaning of ingest/pdf.py before this change (clean_text as of commit 4e65ecf).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\u00ad\u200b\u2060\ufeff]")
_BREAK_RE = re.compile(r"\r\n?|[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_SPACES_RE = re.compile(r"[ \t]*\n[ \t]*|[ ]{2,}")
_BLANK_LINES_RE = re.compile(r"\n{3,}")
_HYPHEN_BREAK_RE = re.compile(r"(?<=[a-z])-\n(?=[a-z])")
_U, _P = UNSPACED_CHARS, UNSPACED_CHARS + CJK_PUNCT
_ASCII_P = r",.;:!?)\]"
_HAN_GAP_RE = re.compile(
    f"(?<=[{_U}]) (?=[{_P}{_ASCII_P}])"
    f"|(?<=[{_P}(\\[]) (?=[{_U}])"
    f"|(?<=[{_U}][{_ASCII_P}]) (?=[{_U}])"
)


@dataclass
class Row:
    """The measurements of one PDF."""

    name: str
    pages: int
    fallback: int  # pages handed to pdfminer
    good_before: float
    good_after: float
    usable_after: float
    extractors: Counter[str]
    cjk_before: float
    cjk_after: float
    runs_before: float
    runs_after: float
    seconds_before: float
    seconds_after: float

    @property
    def extra(self) -> float:
        return self.seconds_after / self.seconds_before - 1


def old_clean(text: str) -> str:
    """The light cleaning that ingest applied to pypdf's text before this change."""
    text = unicodedata.normalize("NFKC", text)
    text = _BREAK_RE.sub("\n", text)
    text = _CONTROL_RE.sub("", text)
    text = _SPACES_RE.sub(lambda m: "\n" if "\n" in m.group() else " ", text)
    text = _BLANK_LINES_RE.sub("\n\n", text)
    text = _HYPHEN_BREAK_RE.sub("", text)
    return _HAN_GAP_RE.sub("", _HAN_GAP_RE.sub("", text)).strip()


def pypdf_only(path: Path) -> list[tuple[str, str]]:
    """Every page's raw text from pypdf and its old cleaning ("" where pypdf fails)."""
    return [(raw, old_clean(raw)) for raw in bare_pypdf_pages(path)]


def pipeline(path: Path) -> tuple[list[str], list[str], list[float]]:
    """The new path: kept text per page (headers, footers and references removed),
    the extractor of each page, and each page's quality."""
    pdf = read_pdf(path, require_text=False)
    body = split_references(drop_running_lines(pdf.pages))
    return body.pages, [r.extractor for r in pdf.reports], [r.quality for r in pdf.reports]


def _timed(fn: Callable[[Path], T], path: Path) -> tuple[float, T]:
    """The CPU seconds of ``fn(path)`` in this process (other jobs on the machine do not
    count), and its result."""
    start = time.process_time()
    result = fn(path)
    return time.process_time() - start, result


def _shares(texts: list[str]) -> tuple[float, float]:
    """CJK share of letters, and share of Latin letters in over-long runs, over all pages."""
    whole = text_quality("\n".join(texts))
    return whole.cjk_share, whole.missing_space_share


def measure(path: Path, repeat: int) -> Row:
    before_times, after_times = [], []
    for _ in range(max(1, repeat)):  # alternate, so that both see the same conditions
        seconds, raw = _timed(pypdf_only, path)
        before_times.append(seconds)
        seconds, (after, extractors, scores) = _timed(pipeline, path)
        after_times.append(seconds)
    seconds_before, seconds_after = min(before_times), min(after_times)
    before = [cleaned for _, cleaned in raw]
    before_scores = [text_quality(text).score for text in before]
    # The pages the pipeline hands to pdfminer: pypdf's text (word spaces mended as the
    # pipeline mends them, ingest.pdf_fonts), newly cleaned, is not good. Not timed.
    with mended_word_spaces():
        mended = pypdf_only(path)
    fallback = sum(not text_quality(clean_text(text)).good for text, _ in mended)
    n = len(before) or 1
    (cjk_before, runs_before), (cjk_after, runs_after) = _shares(before), _shares(after)
    return Row(
        name=path.name,
        pages=len(before),
        fallback=fallback,
        good_before=sum(s >= GOOD_QUALITY for s in before_scores) / n,
        good_after=sum(s >= GOOD_QUALITY for s in scores) / n,
        usable_after=sum(s >= USABLE_QUALITY for s in scores) / n,
        extractors=Counter(extractors),
        cjk_before=cjk_before,
        cjk_after=cjk_after,
        runs_before=runs_before,
        runs_after=runs_after,
        seconds_before=seconds_before,
        seconds_after=seconds_after,
    )


HEADER = (
    "| file | pages | to pdfminer | good before | good after | kept: pypdf / pdfminer / none "
    "| CJK share before → after | run-together before → after | pypdf CPU s | pipeline CPU s "
    "| extra |\n"
    "|---|---:|---:|---:|---:|---|---|---|---:|---:|---:|\n"
)


def table(rows: list[Row]) -> str:
    lines = [HEADER]
    for r in rows:
        e = r.extractors
        lines.append(
            f"| {r.name.removesuffix('.pdf')} | {r.pages} | {r.fallback} | {r.good_before:.0%} | "
            f"{r.good_after:.0%} | {e['pypdf']} / {e['pdfminer']} / {e['none']} | "
            f"{r.cjk_before:.2f} → {r.cjk_after:.2f} | {r.runs_before:.2f} → {r.runs_after:.2f} | "
            f"{r.seconds_before:.2f} | {r.seconds_after:.2f} | {r.extra:+.0%} |\n"
        )
    return "".join(lines)


def summary(rows: list[Row]) -> str:
    """Totals, and the extra time on the PDFs where no page needed pdfminer."""
    clean = [r for r in rows if not r.fallback]
    base = sum(r.seconds_before for r in clean)
    extra = sum(r.seconds_after for r in clean) / base - 1 if base else 0.0
    pages = max(1, sum(r.pages for r in rows))
    good_before = sum(r.good_before * r.pages for r in rows) / pages
    good_after = sum(r.good_after * r.pages for r in rows) / pages
    total_before = sum(r.seconds_before for r in rows)
    total_after = sum(r.seconds_after for r in rows)
    return (
        f"{len(rows)} PDFs, {pages} pages: good pages {good_before:.0%} before, "
        f"{good_after:.0%} after; {total_before:.1f} s before, {total_after:.1f} s after.\n"
        f"On the {len(clean)} PDFs that needed no fallback: {base:.1f} s with pypdf alone, "
        f"{extra:+.1%} for the pipeline (quality check, normalisation, headers, references).\n"
    )


def machine() -> str:
    return f"{base_machine()}, pypdf {version('pypdf')}, pdfminer.six {version('pdfminer.six')}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdfs", type=Path, default=PDFS, help="folder of PDFs")
    parser.add_argument("--repeat", type=int, default=1, help="time each path N times, best")
    parser.add_argument("--markdown", type=Path, help="also write the table and setup here")
    args = parser.parse_args()
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")  # pypdf warns on the damaged files
    text_quality("Load the language profiles of langdetect before timing. " * 5)
    rows = []
    for path in sorted(args.pdfs.glob("*.pdf")):
        rows.append(measure(path, args.repeat))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    report = f"{HEADER}{table(rows)[len(HEADER) :]}\n{summary(rows)}"
    print("\n" + report + f"machine: {machine()}")
    if args.markdown:
        command = "bench/extraction_quality.py " + " ".join(sys.argv[1:])
        args.markdown.write_text(
            f"Command: `.venv/bin/python {command.strip()}`\n\nMachine: {machine()}\n\n{report}",
            encoding="utf-8",
        )


if __name__ == "__main__":
    main()
