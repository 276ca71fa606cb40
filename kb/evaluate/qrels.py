"""The QRELS file of ``kb eval``: documents and judged queries.

The file is JSONL. Each non-blank line is one JSON object, either a document::

    {"doc": {"key": "arxiv:2306.05499", "title": "...", "abstract": "...", "lang": "en"}}

(the inner object is a record exactly as ``kb ingest`` reads it, see ``ingest/records.py``)
or a query::

    {"query": "prompt injection attacks", "lang": "en", "relevant": ["arxiv:2306.05499"],
     "kind": "cross-title"}

``lang`` is the query's language (``en`` or ``zh``); ``relevant`` lists the keys of the
documents that answer it, or maps each key to a grade (``{"a.pdf": 2, "b.pdf": 1}``: 2 about
this, 1 partly relevant); ``kind`` is an optional label (e.g. ``same-title``, ``passage``) that
gets its own rows in the report; ``id`` and ``note`` are optional and only read back.

Documents can also be PDF files (``docs``: folders or files, e.g. ``kb eval q.jsonl --docs
pdfs/``): a PDF's key is its file name. With PDF documents, relevant keys that are not among
the documents are dropped, and a query left with none is dropped too (counted in the report):
that is how a judged set over many PDFs is run on a subset of them. Without PDFs (records
only), such a key is an error in the file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kb.errors import InvalidInput
from kb.library.query import check_text

QUERY_FIELDS = {"query", "lang", "relevant", "kind", "id", "note"}
QUERY_LANGS = ("en", "zh")
ALL_KINDS = "all"


@dataclass(frozen=True)
class Query:
    """One judged query: ``relevant`` maps doc keys to grades (1 for a plain list)."""

    text: str
    lang: str
    relevant: dict[str, int]
    kind: str | None
    line: int
    id: str | None = None


@dataclass(frozen=True)
class Qrels:
    """A parsed QRELS file: record documents (with their line numbers), PDF documents (key:
    file name) and the queries; ``dropped`` counts queries with no relevant document among
    the PDFs given."""

    path: Path
    docs: list[dict[str, Any]]
    doc_lines: list[int]
    queries: list[Query]
    pdfs: dict[str, Path] = field(default_factory=dict)
    dropped: int = 0

    @property
    def n_docs(self) -> int:
        return len(self.docs) + len(self.pdfs)


def read_qrels(path: Path, docs: Sequence[Path] = ()) -> Qrels:
    """Parse a QRELS file (and list the PDFs of ``docs``); InvalidInput names what is wrong."""
    try:
        raw_lines = path.read_bytes().splitlines()
    except OSError as e:
        raise InvalidInput(f"Cannot read QRELS file {str(path)!r}: {e.strerror or e}.") from e
    records: list[dict[str, Any]] = []
    doc_lines: list[int] = []
    queries: list[Query] = []
    keys: set[str] = set()
    for number, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        try:
            doc, query = _parse_line(raw)
            if doc is not None and doc["key"] in keys:
                raise InvalidInput(f"duplicate doc key {doc['key']!r}; keys must be unique.")
        except InvalidInput as e:
            raise InvalidInput(f"{path.name} line {number}: {e}") from None
        if doc is not None:
            keys.add(doc["key"])
            records.append(doc)
            doc_lines.append(number)
        else:
            queries.append(Query(**query, line=number))
    pdfs = list_pdfs(docs, keys)
    dropped = 0
    if pdfs:
        kept = _within(queries, keys | set(pdfs))
        dropped, queries = len(queries) - len(kept), kept
    _check_complete(path, keys | set(pdfs), queries)
    return Qrels(path, records, doc_lines, queries, pdfs, dropped)


def list_pdfs(docs: Sequence[Path], taken: set[str]) -> dict[str, Path]:
    """File name -> path of the PDFs in ``docs`` (folders, not recursive, or PDF files)."""
    out: dict[str, Path] = {}
    for place in docs:
        if place.is_dir():
            found = sorted(p for p in place.iterdir() if p.suffix.lower() == ".pdf")
            if not found:
                raise InvalidInput(f"No PDF file in {str(place)!r}; give folders of PDFs.")
        elif place.is_file() and place.suffix.lower() == ".pdf":
            found = [place]
        else:
            raise InvalidInput(f"{str(place)!r} is neither a folder nor a PDF file.")
        for pdf in found:
            if pdf.name in out or pdf.name in taken:
                raise InvalidInput(
                    f"Two documents are named {pdf.name!r} ({str(pdf)!r}); a PDF's key is its "
                    "file name, so names must be unique."
                )
            out[pdf.name] = pdf
    return out


def _within(queries: list[Query], keys: set[str]) -> list[Query]:
    """The queries with their relevant keys cut to ``keys``; those left with none are gone."""
    out = []
    for q in queries:
        relevant = {key: grade for key, grade in q.relevant.items() if key in keys}
        if relevant:
            out.append(replace(q, relevant=relevant))
    return out


def _parse_line(raw: bytes) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(doc record, {}) for a doc line, (None, Query fields without ``line``) for a query."""
    try:
        obj = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidInput(f"not a valid UTF-8 JSON line ({e}).") from None
    if not isinstance(obj, dict) or ("doc" in obj) == ("query" in obj):
        raise InvalidInput('expected a JSON object with either "doc" or "query".')
    if "query" in obj:
        return None, _query_fields(obj)
    doc = obj["doc"]
    if set(obj) != {"doc"} or not isinstance(doc, dict):
        raise InvalidInput('a doc line is {"doc": {record}} and nothing else.')
    if not isinstance(doc.get("key"), str) or not doc["key"].strip():
        raise InvalidInput('the doc has no "key" (a non-empty string).')
    return {**doc, "key": doc["key"].strip()}, {}


def _query_fields(obj: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(obj) - QUERY_FIELDS)
    if unknown:
        known = ", ".join(sorted(QUERY_FIELDS))
        raise InvalidInput(f"unknown query field(s) {', '.join(unknown)}; known: {known}.")
    text = obj["query"]
    if not isinstance(text, str):
        raise InvalidInput('"query" must be a string.')
    check_text(text)  # the library's own limits (empty, too long), caught here with a line
    if obj.get("lang") not in QUERY_LANGS:
        raise InvalidInput(f'"lang" must be "en" or "zh", not {obj.get("lang")!r}.')
    kind = obj.get("kind")
    if kind is not None and (not isinstance(kind, str) or not kind.strip()):
        raise InvalidInput('"kind" must be a non-empty string when given.')
    if kind is not None and kind.strip() == ALL_KINDS:
        raise InvalidInput(f'"kind" {ALL_KINDS!r} is reserved for the rows over every kind.')
    qid = obj.get("id")
    if qid is not None and not isinstance(qid, str):
        raise InvalidInput('"id" must be a string when given.')
    return {
        "text": text.strip(),
        "lang": obj["lang"],
        "relevant": _relevant(obj.get("relevant")),
        "kind": kind.strip() if kind else None,
        "id": qid,
    }


def _relevant(value: object) -> dict[str, int]:
    """Doc key -> grade from a list of keys (grade 1) or an object of key: grade."""
    if isinstance(value, dict):
        good = all(
            isinstance(k, str) and k.strip() and type(g) is int and g >= 0 for k, g in value.items()
        )
        graded = {k.strip(): g for k, g in value.items()} if good else {}
        if not any(g > 0 for g in graded.values()):
            raise InvalidInput(
                '"relevant" as an object maps doc keys to grades (integers >= 0), at least one '
                "above 0."
            )
        return {k: g for k, g in graded.items() if g > 0}
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(r, str) and r.strip() for r in value)
    ):
        raise InvalidInput('"relevant" must be a non-empty list of doc keys (strings).')
    return dict.fromkeys((r.strip() for r in value), 1)


def _check_complete(path: Path, keys: set[str], queries: list[Query]) -> None:
    if not keys or not queries:
        raise InvalidInput(
            f"{path.name} has {len(keys)} docs and {len(queries)} queries; "
            "an evaluation needs both."
        )
    for q in queries:
        missing = [r for r in q.relevant if r not in keys]
        if missing:
            raise InvalidInput(
                f"{path.name} line {q.line}: relevant key {missing[0]!r} is not the key of "
                "any doc in the file."
            )
