"""The collection pages of the web page: shared reading lists with notes, and export links.

Pages only read (one Library call each); creating, renaming and deleting a collection, editing
a note and removing a paper are done by ``kb.js`` through the JSON API with the API key, as
uploads are.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.auth import ReadAccess
from api.deps import LibraryDep, SettingsDep
from api.web.render import HTMLRoute, export_links, paper_card, render
from kb.types import Collection

router = APIRouter(include_in_schema=False, route_class=HTMLRoute)


def collection_card(found: Collection) -> dict[str, Any]:
    """What the list of collections shows of one."""
    return {"c": found, "n": len(found.items), "exports": export_links(collection=found.id)}


@router.get("/collections", dependencies=[ReadAccess])
def collections_page(request: Request, lib: LibraryDep, settings: SettingsDep) -> Response:
    context = {
        "cards": [collection_card(c) for c in lib.collections()],
        "papers": lib.stats()["papers"],
        "library_exports": export_links(),
        "writable": bool(settings.keys),
    }
    return render(request, "collections.html", context)


@router.get("/collections/{collection_id}", dependencies=[ReadAccess])
def collection_page(
    request: Request, lib: LibraryDep, settings: SettingsDep, collection_id: str
) -> Response:
    """One collection, by id (or by its exact name, as the CLI accepts)."""
    found = lib.collection(collection_id)
    items = [{**paper_card(i.paper), "note": i.note, "added_at": i.added_at} for i in found.items]
    context = {
        "c": found,
        "items": items,
        "exports": export_links(collection=found.id),
        "writable": bool(settings.keys),
    }
    return render(request, "collection.html", context)
