"""Typed request and response models of the HTTP API (they mirror ``kb.types``' JSON shapes
and appear in /docs)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kb.library.collections import MAX_NAME, MAX_TEXT


class PaperSummary(BaseModel):
    id: int
    key: str
    title: str
    authors: list[str]
    year: int | None
    lang: str
    doi: str | None
    arxiv_id: str | None
    source: str
    translations: list[int] = Field(description="Ids of papers that are translations of this one")


class PaperPublic(PaperSummary):
    kind: str
    content_hash: str
    abstract: str
    url: str | None
    n_pages: int | None
    n_chunks: int
    added_at: str
    tags: list[str]
    files: list[str] = Field(description="PDF files of this work (several when duplicates)")
    edited: list[str] = Field(description="Fields corrected by a user (kept on re-ingest)")
    needs_ocr: list[int] = Field(description="Pages without usable text (OCR could read them)")
    author_kind: Literal["person", "organisation"] = Field(
        description="person, or organisation when the authors are the issuing bodies"
    )
    title_en: str = Field(description="A Chinese paper's English title, as printed; or empty")


class SnippetPublic(BaseModel):
    text: str
    page: int | None = Field(description="1-based page number; null for records without pages")
    lang: str
    score: float
    highlights: list[tuple[int, int]] = Field(
        description="[start, end) character spans of text matching the query's keywords"
    )


class SearchHitPublic(BaseModel):
    score: float = Field(
        description="Relevance score (dense, hybrid): standard deviations above what a chance "
        "match reaches, comparable across queries, languages and libraries; BM25 in keyword mode"
    )
    weak: bool = Field(description="The score is under the relevance floor (KB_MIN_SCORE)")
    paper: PaperSummary
    snippets: list[SnippetPublic]
    via: list[str] = Field(description="Which sides found the paper: dense, keyword")
    translations: list[PaperSummary] = Field(
        description="Translations of this paper that the search also found, shown with it"
    )
    relation: str | None = Field(
        description='"translation" when this paper is a translation of the one asked about'
    )


class SearchResultPublic(BaseModel):
    query: str
    took_ms: float
    results: list[SearchHitPublic]


class PaperList(BaseModel):
    total: int
    limit: int
    offset: int
    papers: list[PaperPublic]


class Health(BaseModel):
    status: Literal["ok", "degraded", "error"] = Field(
        description="ok; degraded: answering, but see problems; error: the store is unreadable"
    )
    papers: int
    chunks: int
    model: str
    problems: list[str] = Field(description="What is wrong now, and what to do")
    repairs: list[str] = Field(description="Indexes found damaged and rebuilt since the start")


class ErrorPublic(BaseModel):
    error: str = Field(description="What went wrong and what to try")
    status: int


Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class PaperEdit(BaseModel):
    """Corrections of a paper's metadata (kept on re-ingest) and tag changes.

    Only the fields given change; ``""`` (or ``null``) clears ``abstract``, ``doi``,
    ``arxiv_id`` and ``url``.
    """

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=1000)
    authors: list[Annotated[str, StringConstraints(max_length=300)]] | None = Field(
        default=None, max_length=500
    )
    year: int | None = Field(default=None, ge=1000, le=3000)
    abstract: str | None = Field(default=None, max_length=20000)
    doi: str | None = Field(default=None, max_length=300)
    arxiv_id: str | None = Field(default=None, max_length=100)
    url: str | None = Field(default=None, max_length=2000)
    author_kind: Literal["person", "organisation"] | None = Field(
        default=None, description="Whether the authors are people or organisations"
    )
    title_en: str | None = Field(default=None, max_length=1000)
    lang: str | None = Field(
        default=None,
        max_length=20,
        description="The paper's language (ISO 639-1: en, zh, ...; und: unknown)",
    )
    tags_add: list[Tag] = Field(default_factory=list, max_length=100)
    tags_remove: list[Tag] = Field(default_factory=list, max_length=100)


JobStatus = Literal["queued", "running", "done", "failed"]
FileStatus = Literal["pending", "ingested", "updated", "duplicate", "skipped", "failed"]


class JobFilePublic(BaseModel):
    name: str = Field(description="The uploaded file's name, or its path inside the folder")
    status: FileStatus
    paper_id: int | None
    detail: str | None = Field(description="Why it failed, or what was done (chunks, OCR)")


OCR_HELP = (
    "OCR the pages without usable text (Tesseract, where the server has it); a PDF already "
    "stored with such pages is read again and updated in place"
)


class JobPublic(BaseModel):
    id: str
    status: JobStatus
    total: int
    done: int = Field(description="Files with an outcome so far")
    created_at: str
    started_at: str | None
    finished_at: str | None
    error: str | None = Field(description="Why the job failed as a whole")
    ocr: bool = Field(False, description="Whether pages without usable text are OCR'd")
    files: list[JobFilePublic]
    counts: dict[str, int] = Field(description="Files per status")


class JobList(BaseModel):
    jobs: list[JobPublic] = Field(description="Recent jobs (the last 100), newest first")


class CollectionCreate(BaseModel):
    name: str = Field(min_length=1, max_length=MAX_NAME, description="Unique, ignoring case")
    description: str = Field("", max_length=MAX_TEXT)


class CollectionUpdate(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=MAX_NAME, description="A new name")
    description: str | None = Field(None, max_length=MAX_TEXT, description="A new description")


class NoteIn(BaseModel):
    note: str | None = Field(
        None,
        max_length=MAX_TEXT,
        description='The group\'s note on the paper; null or absent keeps the note, "" clears it',
    )


class CollectionItemPublic(BaseModel):
    paper: PaperSummary
    note: str
    added_at: str


class CollectionPublic(BaseModel):
    id: int
    name: str
    description: str
    created_at: str
    updated_at: str
    items: list[CollectionItemPublic] = Field(description="Its papers, oldest addition first")


class CollectionList(BaseModel):
    total: int
    collections: list[CollectionPublic] = Field(description="Every collection, by name")


class MembershipPublic(BaseModel):
    collection_id: int
    name: str
    note: str


class PaperCollections(BaseModel):
    paper_id: int
    collections: list[MembershipPublic] = Field(description="Collections the paper is in")
