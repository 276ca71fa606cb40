"""HTTP routes for collections (shared reading lists with notes): each a thin wrapper of one
Library call."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Response

from api.auth import WriteAccess
from api.deps import LibraryDep
from api.schemas import (
    CollectionCreate,
    CollectionList,
    CollectionPublic,
    CollectionUpdate,
    MembershipPublic,
    NoteIn,
    PaperCollections,
)
from kb.types import Collection

router = APIRouter(tags=["collections"])


def _public(found: Collection) -> CollectionPublic:
    return CollectionPublic.model_validate(found.to_dict())


@router.get("/api/collections", response_model=CollectionList)
def list_collections(lib: LibraryDep) -> CollectionList:
    found = [_public(c) for c in lib.collections()]
    return CollectionList(total=len(found), collections=found)


@router.post(
    "/api/collections",
    response_model=CollectionPublic,
    status_code=201,
    dependencies=[WriteAccess],
    responses={409: {"description": "The name is taken"}},
)
def create_collection(lib: LibraryDep, body: CollectionCreate) -> CollectionPublic:
    return _public(lib.create_collection(body.name, body.description))


@router.get("/api/collections/{collection_id}", response_model=CollectionPublic)
def get_collection(lib: LibraryDep, collection_id: int) -> CollectionPublic:
    return _public(lib.collection(collection_id))


@router.patch(
    "/api/collections/{collection_id}",
    response_model=CollectionPublic,
    dependencies=[WriteAccess],
    responses={409: {"description": "The new name is taken"}},
)
def update_collection(
    lib: LibraryDep, collection_id: int, body: CollectionUpdate
) -> CollectionPublic:
    found = lib.update_collection(collection_id, name=body.name, description=body.description)
    return _public(found)


@router.delete("/api/collections/{collection_id}", status_code=204, dependencies=[WriteAccess])
def delete_collection(lib: LibraryDep, collection_id: int) -> Response:
    lib.delete_collection(collection_id)
    return Response(status_code=204)


@router.put(
    "/api/collections/{collection_id}/papers/{paper_id}",
    response_model=CollectionPublic,
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
    dependencies=[WriteAccess],
)
def remove_paper(lib: LibraryDep, collection_id: int, paper_id: int) -> CollectionPublic:
    """Take a paper out of a collection (the paper stays in the library)."""
    return _public(lib.remove_from_collection(collection_id, paper_id))


@router.get("/api/papers/{paper_id}/collections", response_model=PaperCollections)
def paper_collections(lib: LibraryDep, paper_id: int) -> PaperCollections:
    found = [MembershipPublic(**dataclasses.asdict(m)) for m in lib.memberships(paper_id)]
    return PaperCollections(paper_id=paper_id, collections=found)
