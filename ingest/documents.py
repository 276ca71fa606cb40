"""Turn input paths into parsed documents: find the inputs, and parse one PDF end to end."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from ingest.chunking import chunk_pages
from ingest.lang import UNDETERMINED, detect_lang
from ingest.layout import text_lines
from ingest.metadata import document_lang, extract_metadata, printed_info
from ingest.normalize import clean_text, drop_running_lines
from ingest.ocr import ocr_advice, ocr_available, ocr_pages
from ingest.pdf import DEFAULT_MAX_PAGES, PdfText, read_pdf
from ingest.quality import drop_garbage_lines, text_quality
from ingest.references import split_references
from kb.errors import IngestError
from kb.types import PageReport, ParsedDocument

SUPPORTED_SUFFIXES = (".pdf", ".jsonl")
_LANG_SAMPLE_PAGES = 5

log = logging.getLogger(__name__)


def parse_pdf(
    path: Path,
    *,
    content_hash: str,
    max_tokens: int,
    overlap: int,
    max_pages: int = DEFAULT_MAX_PAGES,
    ocr: bool = False,
) -> ParsedDocument:
    """Read, describe and chunk one PDF; its key and content hash are ``content_hash``.

    Running headers and footers are dropped, and the references section is left out of the
    chunks (its arXiv ids go to ``cited_arxiv_ids``). ``pages`` reports, per page, which
    extractor's text was kept; pages that no extractor could read have ``needs_ocr``, and
    ``ocr_note`` turns them into one line for the user.

    Args:
        content_hash: the file's SHA-256 (hex). The caller computes it once (kb's pipeline
            checks it against the store before parsing), so the file is not read twice.
        max_tokens: chunk size in estimated tokens (see ``chunk_pages``).
        overlap: estimated tokens shared by neighbouring chunks.
        max_pages: refuse PDFs with more pages than this (see ``read_pdf``).
        ocr: OCR the pages without usable text with Tesseract (see ``ingest.ocr``) when it
            is installed; when it is not, the document is read from its other pages.
    """
    pdf = read_pdf(path, max_pages=max_pages, require_text=not ocr, layout=True)
    if ocr and pdf.needs_ocr:
        pdf = _add_ocr(path, pdf)
    pages = drop_running_lines(pdf.pages)
    body = split_references(pages)
    filled = [page for page in pages if page]
    lang = detect_lang("\n".join(filled[:_LANG_SAMPLE_PAGES]))
    lines = pdf.lines  # font sizes: the title is the largest text
    info = pdf.info
    if pdf.reports and pdf.reports[0].extractor == "ocr":
        # A scan: page 1 is the OCR's text, in lines without sizes; the PDF info's title and
        # author count only where that text prints them.
        lines, info = text_lines(pdf.pages[0]), printed_info(info, pdf.pages[0])
    if lang == "und" and lines:
        lang = detect_lang("\n".join(line.text for line in lines))
    # Page 1 as read: a running header there is often the title (en_owasp_agentic_...pdf).
    meta = extract_metadata(info, pdf.pages[:1] + pages[1:], lang, lines=lines)
    lang = document_lang(lang, meta.title, "\n".join(filled[:2]))
    if len(pdf.needs_ocr) * 2 > len(pdf.reports):
        # Mostly unread: what is left (a cover's URL, an English abstract of a Chinese
        # report) does not say the document's language. Unknown ("und") until OCR or an edit.
        lang = UNDETERMINED
    meta = dataclasses.replace(meta, title=meta.title or path.stem, lang=lang, n_pages=pdf.n_pages)
    numbered = {number: text for number, text in enumerate(body.pages, start=1)}
    chunks = chunk_pages(numbered, max_tokens=max_tokens, overlap=overlap, lang=lang)
    if not chunks:
        raise IngestError(
            f"No text chunks from {path.name!r} ({pdf.n_pages} pages): its text has no letters "
            "or digits. Run OCR on it first (e.g. ocrmypdf) and ingest the result."
        )
    return ParsedDocument(
        key=content_hash,
        source=str(path),
        kind="pdf",
        content_hash=content_hash,
        meta=meta,
        chunks=chunks,
        pages=pdf.reports,
        cited_arxiv_ids=body.arxiv_ids,
    )


def ocr_note(doc: ParsedDocument, paper_id: int | None = None) -> str | None:
    """One line about the pages of ``doc`` that have no usable text, or None if there are none.

    It names the pages and says what would read them: ``kb ocr ID`` for the stored paper
    ``paper_id`` (``kb ingest --ocr`` without one), or why OCR is not available here.
    """
    missing = [page.number for page in doc.pages if page.needs_ocr]
    if not missing:
        return None
    listed = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
    advice = ocr_advice("kb ingest --ocr" if paper_id is None else f"kb ocr {paper_id}")
    return (
        f"{len(missing)} of {len(doc.pages)} pages of {Path(doc.source).name!r} have no usable "
        f"text ({'page' if len(missing) == 1 else 'pages'} {listed}); {advice}."
    )


def _add_ocr(path: Path, pdf: PdfText) -> PdfText:
    """OCR the pages of ``pdf`` that need it; without OCR, keep it as is (if it has text)."""
    reason = ocr_available()
    if reason:
        if not any(pdf.pages):
            raise IngestError(
                f"No text extracted from {path.name!r} ({pdf.n_pages} pages); its pages need "
                f"OCR, which is not available: {reason}."
            )
        log.warning(
            "%s: %d pages need OCR, not available: %s", path.name, len(pdf.needs_ocr), reason
        )
        return pdf
    pages, reports = list(pdf.pages), list(pdf.reports)
    for number, raw in ocr_pages(path, pdf.needs_ocr).items():
        text = drop_garbage_lines(clean_text(raw))
        quality = text_quality(text)
        if quality.usable:
            pages[number - 1] = text
            reports[number - 1] = PageReport(number, "ocr", quality.score, len(text))
    if not any(pages):
        raise IngestError(
            f"No text extracted from {path.name!r} ({pdf.n_pages} pages), not even by OCR. "
            "Check that the pages are legible (e.g. render one with pdftoppm)."
        )
    return dataclasses.replace(pdf, pages=pages, reports=reports)


def iter_inputs(paths: list[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand input paths into the files to ingest, and list the inputs that can't be used.

    Folders are searched recursively, in sorted order, for supported files (suffix compared
    case-insensitively), skipping hidden files and folders. A file named directly is used
    even if hidden. Each file appears once.

    Returns:
        (files, problems), where each problem is (input as given, message).
    """
    files: list[Path] = []
    problems: list[tuple[str, str]] = []
    for path in paths:
        if path.is_dir():
            found = _walk(path)
        elif not path.exists():
            problems.append((str(path), f"{str(path)!r} does not exist."))
            continue
        elif not _supported(path):
            problems.append((str(path), _unsupported(path)))
            continue
        else:
            found = [path]
        files += found
    return _unique(files), problems


def _walk(folder: Path) -> list[Path]:
    found = []
    # os.walk does not follow symlinked folders, so a link loop cannot recurse forever.
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            candidate = Path(root) / name
            if not name.startswith(".") and _supported(candidate) and candidate.is_file():
                found.append(candidate)
    return sorted(found)


def _supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def _unsupported(path: Path) -> str:
    kind = f"{path.suffix!r} files" if path.suffix else "files without a suffix"
    return (
        f"{str(path)!r} is not supported ({kind}); kb ingests .pdf files and .jsonl "
        "record feeds. Convert it to PDF first."
    )


def _unique(files: list[Path]) -> list[Path]:
    seen: set[Path] = set()
    unique = []
    for path in files:
        resolved = path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            unique.append(path)
    return unique
