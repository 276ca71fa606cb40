"""Ingestion: turn PDFs and JSONL record feeds into parsed documents with page-exact chunks.

Pure functions over ``kb.types`` records; nothing here touches the store or the index.
``read_pdf`` -> ``extract_metadata`` -> ``chunk_pages`` is glued by ``parse_pdf``, and
``read_records`` does the same for feeds of title + abstract records.
"""

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
