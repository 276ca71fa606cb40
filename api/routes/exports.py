"""The bibliography export route: a collection, a search's papers, or the whole library."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.deps import FormatParam, LangParam, LibraryDep
from kb.errors import InvalidInput
from kb.library.exports import MEDIA_TYPES, SUFFIXES
from kb.library.query import SearchQuery
from kb.types import Paper

router = APIRouter(tags=["export"])

_EXPORT_CONTENT = {
    MEDIA_TYPES["bibtex"]: {"schema": {"type": "string"}},
    MEDIA_TYPES["ris"]: {"schema": {"type": "string"}},
    MEDIA_TYPES["csl-json"]: {"schema": {"type": "array", "items": {"type": "object"}}},
}


@router.get(
    "/api/export",
    response_class=Response,
    responses={200: {"description": "The bibliography, as a download", "content": _EXPORT_CONTENT}},
)
def export(
    request: Request,
    lib: LibraryDep,
    fmt: Annotated[
        FormatParam, Query(alias="format", description="bibtex, ris or csl-json")
    ] = "bibtex",
    collection: Annotated[int | None, Query(description="Export this collection")] = None,
    q: Annotated[
        str | None, Query(max_length=2000, description="Export the papers this search finds")
    ] = None,
    k: Annotated[int, Query(ge=1, le=100, description="Papers of the search q")] = 10,
    lang: Annotated[LangParam | None, Query()] = None,
    year_from: Annotated[int | None, Query(ge=1000, le=3000, description="Search filter")] = None,
    year_to: Annotated[int | None, Query(ge=1000, le=3000, description="Search filter")] = None,
) -> Response:
    """A collection (with its notes), a search's papers, or the whole library (neither given).

    Each paper with a PDF links to it as a URL of this server (``/api/papers/{id}/pdf``).
    """
    if collection is not None and q is not None:
        raise InvalidInput("Give collection or q, not both.")
    if collection is not None:
        found = lib.collection(collection)
        links = pdf_links(request, [i.paper for i in found.items])
        text = lib.export_collection(found.id, fmt, files=links)
        name = f"kb-{_slug(found.name, found.id)}"
    elif q is not None:
        found_papers = lib.search(
            SearchQuery.build(q, k=k, lang=lang, year_from=year_from, year_to=year_to)
        )
        papers = [hit.paper for hit in found_papers.results]
        text, name = lib.export(papers, fmt, files=pdf_links(request, papers)), "kb-search"
    else:
        papers = lib.all_papers()
        text, name = lib.export(papers, fmt, files=pdf_links(request, papers)), "kb-library"
    return Response(
        content=text.encode("utf-8"),
        media_type=f"{MEDIA_TYPES[fmt]}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}{SUFFIXES[fmt]}"'},
    )


def pdf_links(request: Request, papers: list[Paper]) -> dict[int, str]:
    """paper id -> the URL of its PDF on this server, for the papers that keep one."""
    return {
        p.id: str(request.url_for("paper_pdf", paper_id=str(p.id)))
        for p in papers
        if p.kind == "pdf" or p.files
    }


def _slug(name: str, collection_id: int) -> str:
    """An ASCII file name part for a collection ("collection-ID" when the name has none)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60].strip("-")
    return slug or f"collection-{collection_id}"
