"""The records of a ``.kbundle``: papers, encoders and collections, parsed and checked.

Pure data (no I/O), used by ``kb.bundle.archive`` to write and read archives: every record is
validated when it is read, so a damaged or hostile bundle is refused before anything is
written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from kb.errors import InvalidInput
from kb.library.collections import MAX_NAME, MAX_TEXT


@dataclass(frozen=True)
class BundleEncoder:
    """One encoder whose vectors the bundle carries; ``slot`` None is the main model."""

    slot: str | None
    model: str
    dim: int
    fingerprint: str


@dataclass
class BundlePaper:
    """One paper as a bundle carries it (a line of papers.jsonl)."""

    key: str
    kind: str
    source: str
    content_hash: str
    meta: dict[str, Any]  # the fields of kb.types.PaperMeta, user edits applied
    chunks: list[dict[str, Any]]  # ord, text, lang, page_start, page_end
    row: int  # first row of its chunks in every vectors/N.npy
    tags: list[str] = field(default_factory=list)
    edits: dict[str, Any] = field(default_factory=dict)  # the user's corrections
    work_ids: list[str] = field(default_factory=list)
    pages: list[dict[str, Any]] = field(default_factory=list)  # kb.types.PageReport fields
    cited: list[str] = field(default_factory=list)
    signature: str | None = None  # MinHash signature, uint64 little-endian, hex
    translations: list[str] = field(default_factory=list)  # keys of its translations
    pdfs: list[str] = field(default_factory=list)  # content hashes of its files in pdfs/

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str, where: str) -> BundlePaper:
        """Parse and check one line; ``where`` names it in the error."""
        try:
            data = json.loads(line)
            paper = cls(**data)
        except (ValueError, TypeError) as e:
            raise InvalidInput(f"{where} is not a valid paper record ({e}).") from e
        problem = paper._problem()
        if problem:
            raise InvalidInput(f"{where}: {problem}.")
        return paper

    def _problem(self) -> str | None:
        str_fields = (self.key, self.source, self.content_hash, self.meta.get("title"))
        if not all(isinstance(v, str) and v for v in str_fields):
            return "key, source, content_hash and title must be non-empty strings"
        if (problem := _meta_problem(self.meta)) is not None:
            return problem
        if self.kind not in ("pdf", "record"):
            return f"kind must be 'pdf' or 'record', not {self.kind!r}"
        if not isinstance(self.row, int) or self.row < 0 or not self.chunks:
            return "a paper needs chunks and a row >= 0"
        for c in self.chunks:
            if not (isinstance(c, dict) and isinstance(c.get("text"), str) and c["text"]):
                return "every chunk needs a non-empty text"
            if type(c.get("ord")) is not int or not isinstance(c.get("lang"), str):
                return "every chunk needs an integer ord and a lang"
            if any(c.get(k) is not None and type(c[k]) is not int for k in _PAGE_KEYS):
                return "chunk pages must be integers or null"
        if len({c["ord"] for c in self.chunks}) != len(self.chunks):
            return "two chunks have the same ord"
        if not all(_page_ok(p) for p in self.pages):
            return "a page report is malformed"
        if any(not isinstance(h, str) or not re.fullmatch(r"[0-9a-f]{64}", h) for h in self.pdfs):
            return "pdfs must be SHA-256 hex digests"
        lists = (self.tags, self.work_ids, self.cited, self.translations)
        if not all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in lists):
            return "tags, work_ids, cited and translations must be lists of strings"
        if not isinstance(self.edits, dict) or not isinstance(self.pages, list):
            return "edits must be an object and pages a list"
        return None

    @property
    def signature_array(self) -> np.ndarray | None:
        if not self.signature:
            return None
        try:
            return np.frombuffer(bytes.fromhex(self.signature), dtype="<u8").astype(np.uint64)
        except ValueError:
            return None


_PAGE_KEYS = ("page_start", "page_end")
_EXTRACTORS = ("pypdf", "pdfminer", "ocr", "none")


def _page_ok(page: Any) -> bool:
    return (
        isinstance(page, dict)
        and type(page.get("number")) is int
        and page.get("extractor") in _EXTRACTORS
        and isinstance(page.get("quality"), int | float)
        and type(page.get("chars")) is int
        and isinstance(page.get("needs_ocr", False), bool)
    )


def _meta_problem(meta: dict[str, Any]) -> str | None:
    authors = meta.get("authors", [])
    if not isinstance(authors, list) or not all(isinstance(a, str) for a in authors):
        return "authors must be a list of strings"
    for name in ("year", "n_pages"):
        if meta.get(name) is not None and type(meta[name]) is not int:
            return f"{name} must be an integer or null"
    for name in ("abstract", "doi", "arxiv_id", "url", "lang"):
        if meta.get(name) is not None and not isinstance(meta[name], str):
            return f"{name} must be a string or null"
    return None


@dataclass
class BundleItem:
    """A paper in a bundle collection: its bundle key, the group's note, when it was added."""

    key: str
    note: str = ""
    added_at: str = ""


@dataclass
class BundleCollection:
    """One collection (reading list) as a bundle carries it, in ``collections.json``."""

    name: str
    description: str = ""
    created_at: str = ""
    items: list[BundleItem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str, keys: AbstractSet[str]) -> BundleCollection:
        """Parse and check one collection; ``keys`` are the bundle's paper keys."""
        if not isinstance(data, dict):
            raise InvalidInput(f"{where} is not an object.")
        try:
            raw_items = data.get("items", [])
            if not isinstance(raw_items, list):
                raise TypeError("items must be a list")
            items = [BundleItem(**i) for i in raw_items]
            found = cls(**{**data, "items": items})
        except TypeError as e:
            raise InvalidInput(f"{where} is not a valid collection ({e}).") from e
        problem = found._problem(keys)
        if problem:
            raise InvalidInput(f"{where} ({found.name!r}): {problem}.")
        return found

    def _problem(self, keys: AbstractSet[str]) -> str | None:
        texts = (self.name, self.description, self.created_at)
        texts += tuple(v for i in self.items for v in (i.key, i.note, i.added_at))
        if not all(isinstance(v, str) for v in texts):
            return "name, description, created_at and every key, note, added_at must be strings"
        name = " ".join(self.name.split())
        if not 0 < len(name) <= MAX_NAME or name.isdigit():
            return f"its name must have 1 to {MAX_NAME} characters, not only digits"
        notes = [self.description] + [i.note for i in self.items]
        if any(len(t.strip()) > MAX_TEXT for t in notes):
            return f"a description or note is over {MAX_TEXT} characters"
        if len({i.key for i in self.items}) != len(self.items):
            return "it lists a paper twice"
        if unknown := [i.key for i in self.items if i.key not in keys]:
            return f"it lists papers the bundle does not hold ({unknown[:3]})"
        return None


def fold_name(name: str) -> str:
    """A collection name as kb compares them: spaces collapsed, ASCII case ignored."""
    return "".join(c.lower() if c.isascii() else c for c in " ".join(name.split()))


# ---------------------------------------------------------------- writing
