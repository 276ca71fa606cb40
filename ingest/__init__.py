"""Ingestion: turn PDFs and JSONL record feeds into parsed documents with page-exact chunks.

Pure functions over ``kb.types`` records; nothing here touches the store or the index.
``read_pdf`` -> ``extract_metadata`` -> ``chunk_pages`` is glued by ``parse_pdf``, and
``read_records`` does the same for feeds of title + abstract records.

The names are imported on first use (PEP 562): a module that needs one helper (the
export code needs ``ingest.names``) does not load the PDF readers.
"""

import typing

from kb.lazy import lazy_names as _lazy_names

if typing.TYPE_CHECKING:
    from ingest.chunking import chunk_pages, chunk_text, estimate_tokens
    from ingest.documents import SUPPORTED_SUFFIXES, iter_inputs, parse_pdf
    from ingest.lang import detect_lang
    from ingest.metadata import extract_metadata
    from ingest.pdf import PdfText, read_pdf
    from ingest.records import read_records

__all__ = [
    "SUPPORTED_SUFFIXES",
    "PdfText",
    "chunk_pages",
    "chunk_text",
    "detect_lang",
    "estimate_tokens",
    "extract_metadata",
    "iter_inputs",
    "parse_pdf",
    "read_pdf",
    "read_records",
]

_WHERE = {
    "PdfText": "ingest.pdf",
    "SUPPORTED_SUFFIXES": "ingest.documents",
    "chunk_pages": "ingest.chunking",
    "chunk_text": "ingest.chunking",
    "detect_lang": "ingest.lang",
    "estimate_tokens": "ingest.chunking",
    "extract_metadata": "ingest.metadata",
    "iter_inputs": "ingest.documents",
    "parse_pdf": "ingest.documents",
    "read_pdf": "ingest.pdf",
    "read_records": "ingest.records",
}

__getattr__ = _lazy_names(__name__, _WHERE)
