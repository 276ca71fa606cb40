"""The search route: a thin wrapper of one Library call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import MAX_ROWID, AuthorQuery, LangQuery, LibraryDep, ModeParam, YearQuery
from api.schemas import SearchResultPublic
from kb.errors import InvalidInput
from kb.library.query import SearchQuery

router = APIRouter(tags=["search"])


@router.get("/api/search", response_model=SearchResultPublic)
def search(
    lib: LibraryDep,
    q: Annotated[
        str | None, Query(max_length=2000, description="Query or pasted abstract, EN or ZH")
    ] = None,
    k: Annotated[int, Query(ge=1, le=100, description="Number of papers")] = 10,
    lang: LangQuery = None,
    mode: Annotated[ModeParam | None, Query(description="Default: KB_SEARCH_MODE")] = None,
    year_from: YearQuery = None,
    year_to: YearQuery = None,
    author: AuthorQuery = None,
    tag: Annotated[
        str | None, Query(max_length=100, description="Only papers with this tag")
    ] = None,
    like: Annotated[
        int | None, Query(ge=1, le=MAX_ROWID, description="Search with this paper instead of q")
    ] = None,
    min_score: Annotated[
        float | None,
        Query(
            ge=-100,
            le=100,
            description="Leave out results scoring under this (dense and hybrid); default: "
            "keep them, those under KB_MIN_SCORE marked weak",
        ),
    ] = None,
) -> SearchResultPublic:
    if like is not None:
        result = lib.related(like, k=k)
    elif q is None:
        raise InvalidInput("Give a query in q, or a paper id in like.")
    else:
        query = SearchQuery.build(
            q,
            k=k,
            lang=lang,
            mode=mode,
            year_from=year_from,
            year_to=year_to,
            author=author,
            tag=tag,
            min_score=min_score,
        )
        result = lib.search(query)
    return SearchResultPublic.model_validate(result.to_dict())
