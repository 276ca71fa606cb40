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
from kb.errors import InvalidInput
from kb.service import Library

__all__ = ["router", "ErrorPublic"]


def _library(request: Request) -> Library:
    return request.state.library


LibraryDep = Annotated[Library, Depends(_library)]
LangParam = Literal["en", "zh", "any", "all"]
ModeParam = Literal["dense", "keyword", "hybrid"]

router = APIRouter()


@router.get("/healthz", response_model=Health, tags=["meta"])
def healthz(lib: LibraryDep) -> Health:
    stats = lib.stats()
    return Health(status="ok", papers=stats["papers"], chunks=stats["chunks"], model=stats["model"])


@router.get("/api/search", response_model=SearchResultPublic, tags=["search"])
def search(
    lib: LibraryDep,
    q: Annotated[
        str | None, Query(max_length=2000, description="Query or pasted abstract, EN or ZH")
    ] = None,
    k: Annotated[int, Query(ge=1, le=100, description="Number of papers")] = 10,
    lang: Annotated[LangParam | None, Query(description="Only this language")] = None,
    mode: Annotated[ModeParam | None, Query(description="Default: KB_SEARCH_MODE")] = None,
    year_from: Annotated[int | None, Query(ge=1000, le=3000)] = None,
    year_to: Annotated[int | None, Query(ge=1000, le=3000)] = None,
    author: Annotated[str | None, Query(max_length=200, description="Author substring")] = None,
    tag: Annotated[
        str | None, Query(max_length=100, description="Only papers with this tag")
    ] = None,
    like: Annotated[int | None, Query(description="Search with this paper instead of q")] = None,
) -> SearchResultPublic:
    if like is not None:
        result = lib.related(like, k=k)
    elif q is None:
        raise InvalidInput("Give a query in q, or a paper id in like.")
    else:
        result = lib.search(
            q,
            k=k,
            lang=lang,
            mode=mode,
            year_from=year_from,
            year_to=year_to,
            author=author,
            tag=tag,
        )
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


@router.get("/api/papers/{paper_id}/related", response_model=SearchResultPublic, tags=["papers"])
def related_papers(
    lib: LibraryDep, paper_id: int, k: Annotated[int, Query(ge=1, le=100)] = 10
) -> SearchResultPublic:
    return SearchResultPublic.model_validate(lib.related(paper_id, k=k).to_dict())
