"""Turn input paths into parsed documents: find the inputs, and parse one PDF end to end."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ingest.chunking import chunk_pages
from ingest.lang import detect_lang
from ingest.metadata import extract_metadata
from ingest.pdf import DEFAULT_MAX_PAGES, file_sha256, read_pdf
from kb.errors import IngestError
from kb.types import ParsedDocument

SUPPORTED_SUFFIXES = (".pdf", ".jsonl")
_LANG_SAMPLE_PAGES = 5


def parse_pdf(
    path: Path, *, max_tokens: int, overlap: int, max_pages: int = DEFAULT_MAX_PAGES
) -> ParsedDocument:
    """Read, describe and chunk one PDF; its key and content hash are the file's SHA-256.

    Args:
        max_tokens: chunk size in estimated tokens (see ``chunk_pages``).
        overlap: estimated tokens shared by neighbouring chunks.
        max_pages: refuse PDFs with more pages than this (see ``read_pdf``).
    """
    pdf = read_pdf(path, max_pages=max_pages)
    digest = file_sha256(path)
    lang = detect_lang("\n".join(pdf.pages[:_LANG_SAMPLE_PAGES]))
    meta = extract_metadata(pdf.info, pdf.pages, lang)
    if not meta.title:
        meta = dataclasses.replace(meta, title=path.stem)
    pages = {number: text for number, text in enumerate(pdf.pages, start=1)}
    chunks = chunk_pages(pages, max_tokens=max_tokens, overlap=overlap)
    if not chunks:
        raise IngestError(
            f"No text chunks from {path.name!r} ({pdf.n_pages} pages): its text has no letters "
            "or digits. Run OCR on it first (e.g. ocrmypdf) and ingest the result."
        )
    return ParsedDocument(
        key=digest, source=str(path), kind="pdf", content_hash=digest, meta=meta, chunks=chunks
    )


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
