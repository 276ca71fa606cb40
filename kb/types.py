"""Domain types shared by every layer: parsed documents, stored papers and search results."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SourceKind = Literal["pdf", "record"]
AuthorKind = Literal["person", "organisation"]


@dataclass(frozen=True)
class PaperMeta:
    """Bibliographic metadata of one paper, as extracted or as given by a record."""

    title: str
    authors: list[str] = field(default_factory=list)
    year: int | None = None
    abstract: str = ""
    doi: str | None = None
    arxiv_id: str | None = None
    lang: str = "und"
    n_pages: int | None = None
    url: str | None = None
    # "organisation" when the authors are the bodies that issued it (NIST, 复旦大学)
    author_kind: AuthorKind = "person"
    title_en: str = ""  # a Chinese paper's English title, as printed beside it


@dataclass(frozen=True)
class ChunkDraft:
    """A chunk of a parsed document before it is stored: text plus where it came from."""

    ord: int
    text: str
    lang: str
    page_start: int | None = None
    page_end: int | None = None


Extractor = Literal["pypdf", "pdfminer", "poppler", "ocr", "none"]


@dataclass(frozen=True)
class PageReport:
    """How one PDF page's text was obtained and how good it is."""

    number: int  # 1-based
    extractor: Extractor  # which extractor's text was kept ("none": no usable text)
    quality: float  # 0 (unusable) .. 1 (clean text), see ingest.quality
    chars: int  # characters of kept text
    needs_ocr: bool = False  # no usable text: only OCR could read this page


@dataclass(frozen=True)
class ParsedDocument:
    """The pure result of reading one input (a PDF, or one line of a JSONL file)."""

    key: str
    source: str
    kind: SourceKind
    content_hash: str
    meta: PaperMeta
    chunks: list[ChunkDraft]
    pages: list[PageReport] = field(default_factory=list)  # PDFs only, one per page
    cited_arxiv_ids: list[str] = field(default_factory=list)  # from the references section


@dataclass(frozen=True)
class Paper:
    """A paper as stored."""

    id: int
    key: str
    kind: SourceKind
    source: str
    content_hash: str
    title: str
    authors: list[str]
    year: int | None
    lang: str
    doi: str | None
    arxiv_id: str | None
    abstract: str
    url: str | None
    n_pages: int | None
    n_chunks: int
    added_at: str
    tags: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # PDF files of this work (absolute paths)
    edited: list[str] = field(default_factory=list)  # fields the user corrected (`kb edit`)
    needs_ocr: list[int] = field(default_factory=list)  # pages with no usable text
    translations: list[int] = field(default_factory=list)  # ids of its translations
    author_kind: AuthorKind = "person"  # "organisation": the authors are issuing bodies
    title_en: str = ""  # a Chinese paper's English title, as printed beside it

    def summary(self) -> dict[str, Any]:
        """The paper fields every search result carries (the shared JSON shape)."""
        return {
            "id": self.id,
            "key": self.key,
            "title": self.title,
            "authors": list(self.authors),
            "year": self.year,
            "lang": self.lang,
            "doi": self.doi,
            "arxiv_id": self.arxiv_id,
            "source": self.source,
            "translations": list(self.translations),
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Chunk:
    """A stored chunk; its id is also its FAISS id."""

    id: int
    paper_id: int
    ord: int
    text: str
    lang: str
    page_start: int | None
    page_end: int | None


@dataclass(frozen=True)
class Snippet:
    text: str
    page: int | None
    lang: str
    score: float
    # [start, end) character spans of text that match the query's keywords
    highlights: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class SearchHit:
    score: float
    paper: Paper
    snippets: list[Snippet]
    via: list[str] = field(default_factory=list)  # which sides found it: dense, keyword
    # translations of this paper that the search also found, shown with it instead of as hits
    translations: list[Paper] = field(default_factory=list)
    relation: str | None = None  # "translation" when listed as a translation of the paper asked
    weak: bool = False  # the score is under the relevance floor (``Settings.min_score``)

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "weak": self.weak,
            "paper": self.paper.summary(),
            "snippets": [asdict(s) for s in self.snippets],
            "via": list(self.via),
            "translations": [t.summary() for t in self.translations],
            "relation": self.relation,
        }


@dataclass(frozen=True)
class SearchResponse:
    query: str
    took_ms: float
    results: list[SearchHit]

    def to_dict(self) -> dict[str, Any]:
        """The one JSON shape of a search, shared by ``kb search --json`` and the API."""
        return {
            "query": self.query,
            "took_ms": self.took_ms,
            "results": [hit.to_dict() for hit in self.results],
        }


@dataclass
class IngestSummary:
    """What one ``ingest`` call did."""

    ingested: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def add(self, status: str, name: str, detail: str) -> None:
        """Record one input's outcome.

        ``ingested`` and ``updated`` (a changed file replaced its old version) count as
        ingested; ``skipped`` (unchanged) and ``duplicate`` (recorded on the paper it
        duplicates) as skipped; ``failed`` keeps why.
        """
        if status == "failed":
            self.failed.append((name, detail))
        elif status in ("ingested", "updated"):
            self.ingested.append(name)
        else:
            self.skipped.append(name)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class CollectionItem:
    """A paper in a collection, with the group's note on it."""

    paper: Paper
    note: str
    added_at: str

    def to_dict(self) -> dict[str, Any]:
        return {"paper": self.paper.summary(), "note": self.note, "added_at": self.added_at}


@dataclass(frozen=True)
class Collection:
    """A shared reading list: a name, a description, papers with per-paper notes."""

    id: int
    name: str
    description: str
    created_at: str
    updated_at: str
    items: list[CollectionItem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "items": [i.to_dict() for i in self.items],
        }


@dataclass(frozen=True)
class Membership:
    """One collection a paper is in, with the note on it there (for a paper's page)."""

    collection_id: int
    name: str
    note: str
