"""HTTP routes: each a thin wrapper of one Library call."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from api.schemas import (
    ErrorPublic,
    Health,
    PaperList,
    PaperPublic,
    SearchResultPublic,
)
from kb.service import Library

__all__ = ["router", "ErrorPublic"]


def _library(request: Request) -> Library:
    return request.state.library


LibraryDep = Annotated[Library, Depends(_library)]
LangParam = Literal["en", "zh", "all"]

router = APIRouter()


@router.get("/healthz", response_model=Health, tags=["meta"])
def healthz(lib: LibraryDep) -> Health:
    stats = lib.stats()
    return Health(status="ok", papers=stats["papers"], chunks=stats["chunks"], model=stats["model"])


@router.get("/api/search", response_model=SearchResultPublic, tags=["search"])
def search(
    lib: LibraryDep,
    q: Annotated[str, Query(min_length=1, max_length=2000, description="Query, EN or ZH")],
    k: Annotated[int, Query(ge=1, le=100, description="Number of papers")] = 10,
    lang: Annotated[LangParam | None, Query(description="Only this language")] = None,
) -> SearchResultPublic:
    result = lib.search(q, k=k, lang=lang)
    return SearchResultPublic.model_validate(result.to_dict())


@router.get("/api/papers", response_model=PaperList, tags=["papers"])
def list_papers(
    lib: LibraryDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    lang: Annotated[LangParam | None, Query(description="Only this language")] = None,
) -> PaperList:
    papers = lib.papers(limit=limit, offset=offset, lang=lang)
    return PaperList(
        total=lib.count(lang),
        limit=limit,
        offset=offset,
        papers=[PaperPublic.model_validate(p.to_dict()) for p in papers],
    )


@router.get("/api/papers/{paper_id}", response_model=PaperPublic, tags=["papers"])
def get_paper(lib: LibraryDep, paper_id: int) -> PaperPublic:
    return PaperPublic.model_validate(lib.paper(paper_id).to_dict())
