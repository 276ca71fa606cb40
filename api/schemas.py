"""Typed response models of the HTTP API (they mirror ``kb.types``' JSON shapes)."""

from __future__ import annotations

from pydantic import BaseModel, Field


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
        description="Calibrated score: comparable across languages, higher is better"
    )
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
    status: str
    papers: int
    chunks: int
    model: str


class ErrorPublic(BaseModel):
    error: str = Field(description="What went wrong and what to try")
    status: int
