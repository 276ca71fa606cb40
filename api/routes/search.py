"""HTTP routes for health and search: each a thin wrapper of one Library call."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from api.schemas import ErrorPublic, Health, SearchResultPublic
from kb.errors import InvalidInput
from kb.library.facade import Library

__all__ = ["router", "meta_router", "ErrorPublic", "LibraryDep", "LangParam"]


def _library(request: Request) -> Library:
    return request.state.library


LibraryDep = Annotated[Library, Depends(_library)]
LangParam = Literal["en", "zh", "any", "all"]
ModeParam = Literal["dense", "keyword", "hybrid"]

meta_router = APIRouter()  # open even when reads need a key (health checks)
router = APIRouter()


@meta_router.get("/healthz", response_model=Health, tags=["meta"])
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
    like: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="Search with this paper instead of q")
    ] = None,
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
