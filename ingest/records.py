"""Read JSONL feeds of new publications (title + abstract, no PDF) into parsed documents.

One JSON object per line::

    {"key": "arxiv:2306.05499", "title": "...", "abstract": "...", "authors": ["..."],
     "year": 2023, "lang": "en", "doi": null, "arxiv_id": "2306.05499", "url": "...",
     "text": "optional longer body"}

``key``, ``title`` and ``abstract`` are required (``abstract`` may be ""); unknown fields
are ignored. A bad line becomes an IngestError in the result and the other lines still
parse. Duplicate keys in one file are all returned, in file order: the caller replaces
an earlier record with a later one of the same key.

A feed comes from outside, so each line is read within limits: at most ``MAX_LINE_BYTES``
(a longer line is skipped unread, as one error) and nesting at most ``MAX_DEPTH`` levels
(``ingest.safejson``), so one hostile line costs one error line, not the run. Every text
field loses its control characters (``ingest.normalize.strip_controls``: no terminal escapes
or NULs reach a listing or an export), text must be valid Unicode (no lone surrogates), and
``lang`` must be an ISO 639-1 code (``ingest.lang.KNOWN_LANGS``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ingest.chunking import chunk_text
from ingest.lang import KNOWN_LANGS, detect_lang, normalize_lang
from ingest.metadata import normalize_arxiv_id
from ingest.normalize import strip_controls
from ingest.safejson import MAX_DEPTH, loads_limited
from kb.errors import IngestError, InvalidInput
from kb.types import PaperMeta, ParsedDocument

KNOWN_FIELDS = (
    "key", "title", "abstract", "authors", "year", "lang", "doi", "arxiv_id", "url", "text",
)  # fmt: skip
_OPTIONAL_STRINGS = ("lang", "doi", "arxiv_id", "url", "text")
MAX_LINE_BYTES = 16 << 20  # one record: a paper's whole text is rarely over 1 MiB
MAX_CONTAINERS = 10_000  # arrays and objects in one record (a real one has two or three)
_READ_BLOCK = 1 << 20


def read_records(
    path: Path, *, max_tokens: int, overlap: int
) -> list[ParsedDocument | IngestError]:
    """Parse every non-blank line of the JSONL file at ``path``, in order.

    Raises IngestError only when the file itself cannot be read.

    Args:
        max_tokens: chunk size in estimated tokens (see ``chunk_text``).
        overlap: estimated tokens shared by neighbouring chunks.
    """
    results: list[ParsedDocument | IngestError] = []
    try:
        with open(path, "rb") as fh:
            for number, raw in enumerate(_lines(fh), start=1):
                if raw is None:
                    why = f"longer than {MAX_LINE_BYTES >> 20} MiB; skipped unread."
                    results.append(IngestError(f"{path.name} line {number}: {why}"))
                    continue
                if not raw.strip():
                    continue
                try:
                    doc = _parse_line(path, raw, max_tokens=max_tokens, overlap=overlap)
                    results.append(doc)
                except IngestError as e:
                    results.append(IngestError(f"{path.name} line {number}: {e}"))
    except OSError as e:
        raise IngestError(f"Cannot read {str(path)!r}: {e.strerror or e}.") from e
    return results


def _lines(fh: IO[bytes]) -> Iterator[bytes | None]:
    """The file's lines (without the line break), each at most MAX_LINE_BYTES; a longer one
    is read through in blocks without being kept, and yields None."""
    while line := fh.readline(MAX_LINE_BYTES + 1):
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while (rest := fh.readline(_READ_BLOCK)) and not rest.endswith(b"\n"):
                pass
            yield None
            continue
        yield line.rstrip(b"\r\n")


def _parse_line(path: Path, raw: bytes, *, max_tokens: int, overlap: int) -> ParsedDocument:
    """One record; raises IngestError saying what is wrong (the caller adds the line)."""
    record = _load(raw)
    fields = _validate(record)
    meta = _meta(fields)
    head = f"{meta.title}\n{meta.abstract}"
    chunks = chunk_text(head, max_tokens=max_tokens, overlap=overlap, lang=meta.lang)
    if fields.get("text"):
        chunks += chunk_text(
            fields["text"],
            max_tokens=max_tokens,
            overlap=overlap,
            first_ord=len(chunks),
            lang=meta.lang,
        )
    if not chunks:
        raise IngestError("has no text to index: title, abstract and text have no letters.")
    return ParsedDocument(
        key=fields["key"],
        source=f"{path}#{fields['key']}",
        kind="record",
        content_hash=_content_hash(record),
        meta=meta,
        chunks=chunks,
    )


def _load(raw: bytes) -> dict[str, Any]:
    try:
        record = loads_limited(
            raw, max_bytes=MAX_LINE_BYTES, max_depth=MAX_DEPTH, max_containers=MAX_CONTAINERS
        )
    except InvalidInput as e:
        hint = " Each line must be one JSON object." if "JSON" in str(e) else ""
        raise IngestError(f"{e}{hint}") from e
    if not isinstance(record, dict):
        raise IngestError(f"expected a JSON object, got {_json_type(record)}.")
    return record


def _validate(record: dict[str, Any]) -> dict[str, Any]:
    """The known fields, checked and cleaned; raises IngestError naming the bad field."""
    fields: dict[str, Any] = {}
    for name in ("key", "title"):
        value = record.get(name)
        if not isinstance(value, str) or not _text(name, value):
            raise IngestError(f"{name!r} must be a non-empty string, got {_describe(value)}.")
        fields[name] = _text(name, value)
    abstract = record.get("abstract")
    if not isinstance(abstract, str):
        raise IngestError(f"'abstract' must be a string (may be \"\"), got {_describe(abstract)}.")
    fields["abstract"] = _text("abstract", abstract)
    for name in _OPTIONAL_STRINGS:
        value = record.get(name)
        if value is not None and not isinstance(value, str):
            raise IngestError(f"{name!r} must be a string, got {_describe(value)}.")
        fields[name] = _text(name, value) or None if value else None
    fields["authors"] = [_text("authors", a) for a in _authors(record.get("authors"))]
    fields["authors"] = [a for a in fields["authors"] if a]
    fields["year"] = _year(record.get("year"))
    if fields["lang"] is not None:
        fields["lang"] = _lang(fields["lang"])
    return fields


def _text(name: str, value: str) -> str:
    """A text field stripped of spaces and control characters; refused if not valid Unicode."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise IngestError(
            f"{name!r} is not valid Unicode text (it holds a lone surrogate such as \\ud800)."
        ) from None
    return strip_controls(value).strip()


def _lang(code: str) -> str:
    lang = normalize_lang(code)
    if lang not in KNOWN_LANGS:
        raise IngestError(
            f"'lang' must be an ISO 639-1 language code such as 'en' or 'zh' (or leave it out "
            f"to detect it), got {_describe(code)}."
        )
    return lang


def _authors(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise IngestError(f"'authors' must be a list of strings, got {_describe(value)}.")
    return [a.strip() for a in value if a.strip()]


def _year(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not 1000 <= value <= 9999:
        raise IngestError(
            f"'year' must be a four-digit year (a number or a numeric string), "
            f"got {_describe(value)}."
        )
    return value


def _meta(fields: dict[str, Any]) -> PaperMeta:
    lang = fields["lang"] or detect_lang(f"{fields['title']}\n{fields['abstract']}")
    arxiv_id = normalize_arxiv_id(fields["arxiv_id"]) if fields["arxiv_id"] else None
    return PaperMeta(
        title=fields["title"],
        authors=fields["authors"],
        year=fields["year"],
        abstract=fields["abstract"],
        doi=fields["doi"],
        arxiv_id=arxiv_id or None,
        lang=lang,
        n_pages=None,
        url=fields["url"],
    )


def _content_hash(record: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the known fields, so unknown fields don't count."""
    known = {name: record[name] for name in KNOWN_FIELDS if name in record}
    canonical = json.dumps(known, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (missing or null)"
    text = json.dumps(value, ensure_ascii=False)
    return f"{_json_type(value)} {text[:40] + '...' if len(text) > 40 else text}"


def _json_type(value: Any) -> str:
    names = {
        type(None): "null", bool: "boolean", int: "number", float: "number", str: "string",
        list: "array",
    }  # fmt: skip
    return names.get(type(value), "object" if isinstance(value, dict) else type(value).__name__)
