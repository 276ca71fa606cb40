"""HTTP routes for collections and bibliography exports: each a thin wrapper of one Library call."""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from api.auth import ReadAccess, WriteAccess
from api.schemas_collections import (
    CollectionCreate,
    CollectionList,
    CollectionPublic,
    CollectionUpdate,
    MembershipPublic,
    NoteIn,
    PaperCollections,
)
from kb.errors import InvalidInput
from kb.library.exports import MEDIA_TYPES, SUFFIXES
from kb.library.facade import Library
from kb.types import Collection


def _library(request: Request) -> Library:
    return request.state.library


LibraryDep = Annotated[Library, Depends(_library)]
FormatParam = Literal["bibtex", "ris", "csl-json"]

router = APIRouter(dependencies=[ReadAccess])


def _public(found: Collection) -> CollectionPublic:
    return CollectionPublic.model_validate(found.to_dict())


@router.get("/api/collections", response_model=CollectionList, tags=["collections"])
def list_collections(lib: LibraryDep) -> CollectionList:
    found = [_public(c) for c in lib.collections()]
    return CollectionList(total=len(found), collections=found)


@router.post(
    "/api/collections",
    response_model=CollectionPublic,
    status_code=201,
    tags=["collections"],
    dependencies=[WriteAccess],
    responses={409: {"description": "The name is taken"}},
)
def create_collection(lib: LibraryDep, body: CollectionCreate) -> CollectionPublic:
    return _public(lib.create_collection(body.name, body.description))


@router.get(
    "/api/collections/{collection_id}", response_model=CollectionPublic, tags=["collections"]
)
def get_collection(lib: LibraryDep, collection_id: int) -> CollectionPublic:
    return _public(lib.collection(collection_id))


@router.patch(
    "/api/collections/{collection_id}",
    response_model=CollectionPublic,
    tags=["collections"],
    dependencies=[WriteAccess],
    responses={409: {"description": "The new name is taken"}},
)
def update_collection(
    lib: LibraryDep, collection_id: int, body: CollectionUpdate
) -> CollectionPublic:
    found = lib.update_collection(collection_id, name=body.name, description=body.description)
    return _public(found)


@router.delete(
    "/api/collections/{collection_id}",
    status_code=204,
    tags=["collections"],
    dependencies=[WriteAccess],
)
def delete_collection(lib: LibraryDep, collection_id: int) -> Response:
    lib.delete_collection(collection_id)
    return Response(status_code=204)


@router.put(
    "/api/collections/{collection_id}/papers/{paper_id}",
    response_model=CollectionPublic,
    tags=["collections"],
    dependencies=[WriteAccess],
)
def put_paper(
    lib: LibraryDep, collection_id: int, paper_id: int, body: NoteIn | None = None
) -> CollectionPublic:
    """Add a paper to a collection, or change its note there."""
    note = None if body is None else body.note
    return _public(lib.add_to_collection(collection_id, paper_id, note))


@router.delete(
    "/api/collections/{collection_id}/papers/{paper_id}",
    response_model=CollectionPublic,
    tags=["collections"],
    dependencies=[WriteAccess],
)
def remove_paper(lib: LibraryDep, collection_id: int, paper_id: int) -> CollectionPublic:
    """Take a paper out of a collection (the paper stays in the library)."""
    return _public(lib.remove_from_collection(collection_id, paper_id))


@router.get(
    "/api/papers/{paper_id}/collections", response_model=PaperCollections, tags=["collections"]
)
def paper_collections(lib: LibraryDep, paper_id: int) -> PaperCollections:
    found = [MembershipPublic(**dataclasses.asdict(m)) for m in lib.memberships(paper_id)]
    return PaperCollections(paper_id=paper_id, collections=found)


_EXPORT_CONTENT = {
    MEDIA_TYPES["bibtex"]: {"schema": {"type": "string"}},
    MEDIA_TYPES["ris"]: {"schema": {"type": "string"}},
    MEDIA_TYPES["csl-json"]: {"schema": {"type": "array", "items": {"type": "object"}}},
}


@router.get(
    "/api/export",
    response_class=Response,
    tags=["export"],
    responses={200: {"description": "The bibliography, as a download", "content": _EXPORT_CONTENT}},
)
def export(
    lib: LibraryDep,
    fmt: Annotated[
        FormatParam, Query(alias="format", description="bibtex, ris or csl-json")
    ] = "bibtex",
    collection: Annotated[int | None, Query(description="Export this collection")] = None,
    q: Annotated[
        str | None, Query(max_length=2000, description="Export the papers this search finds")
    ] = None,
    k: Annotated[int, Query(ge=1, le=100, description="Papers of the search q")] = 10,
    lang: Annotated[Literal["en", "zh", "any", "all"] | None, Query()] = None,
    year_from: Annotated[int | None, Query(ge=1000, le=3000, description="Search filter")] = None,
    year_to: Annotated[int | None, Query(ge=1000, le=3000, description="Search filter")] = None,
) -> Response:
    """A collection (with its notes), a search's papers, or the whole library (neither given)."""
    if collection is not None and q is not None:
        raise InvalidInput("Give collection or q, not both.")
    if collection is not None:
        found = lib.collection(collection)
        text, name = lib.export_collection(found.id, fmt), f"kb-{_slug(found.name, found.id)}"
    elif q is not None:
        found_papers = lib.search(q, k=k, lang=lang, year_from=year_from, year_to=year_to)
        papers = [hit.paper for hit in found_papers.results]
        text, name = lib.export(papers, fmt), "kb-search"
    else:
        text, name = lib.export(lib.all_papers(), fmt), "kb-library"
    return Response(
        content=text.encode("utf-8"),
        media_type=f"{MEDIA_TYPES[fmt]}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}{SUFFIXES[fmt]}"'},
    )


def _slug(name: str, collection_id: int) -> str:
    """An ASCII file name part for a collection ("collection-ID" when the name has none)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60].strip("-")
    return slug or f"collection-{collection_id}"
