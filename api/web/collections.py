"""The collection pages of the web page: shared reading lists with notes, and export links.

Pages only read (one Library call each); creating, renaming and deleting a collection, editing
a note and removing a paper are done by ``kb.js`` through the JSON API with the API key, as
uploads are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response

from api.auth import ReadAccess
from api.deps import LibraryDep, SettingsDep
from api.web.render import HTMLRoute, export_links, page_links, paper_card, render
from kb.types import Collection, CollectionItem

PER_PAGE = 20  # collections, or papers of one collection, per page
# How each list can be sorted: the first is the default.
COLLECTION_SORTS: dict[str, Callable[[Collection], Any]] = {
    "name": lambda c: c.name.lower(),
    "updated": lambda c: c.updated_at,
    "size": lambda c: len(c.items),
}
ITEM_SORTS: dict[str, Callable[[CollectionItem], Any]] = {
    "added": lambda i: i.added_at,
    "title": lambda i: i.paper.title.lower(),
    "year": lambda i: i.paper.year or 0,
}
NEWEST_FIRST = {"updated", "size", "added", "year"}

router = APIRouter(include_in_schema=False, route_class=HTMLRoute)
T = TypeVar("T")


def sorted_page(
    rows: list[T], sorts: dict[str, Callable[[T], Any]], sort: str, page: str, path: str
) -> tuple[list[T], str, dict[str, Any]]:
    """One page of ``rows`` in the ``sort`` order asked for (the first of ``sorts`` when it
    is not one of them): (the rows, the sort used, ``page_links``)."""
    sort = sort if sort in sorts else next(iter(sorts))
    ordered = sorted(rows, key=sorts[sort], reverse=sort in NEWEST_FIRST)
    asked = int(page) if page.isdigit() and 0 < int(page) < 10**6 else 1
    links = page_links(path, {"sort": sort}, asked, len(ordered), PER_PAGE)
    start = (links["page"] - 1) * PER_PAGE
    return ordered[start : start + PER_PAGE], sort, links


def collection_card(found: Collection) -> dict[str, Any]:
    """What the list of collections shows of one."""
    return {"c": found, "n": len(found.items), "exports": export_links(collection=found.id)}


@router.get("/collections", dependencies=[ReadAccess])
def collections_page(
    request: Request, lib: LibraryDep, settings: SettingsDep, sort: str = "", page: str = ""
) -> Response:
    """The collections, by name (or newest changed first, or largest first), a page at a time."""
    shown, sort, links = sorted_page(
        lib.collections(), COLLECTION_SORTS, sort, page, "/collections"
    )
    context = {
        "cards": [collection_card(c) for c in shown],
        "sort": sort,
        "sorts": list(COLLECTION_SORTS),
        "pages": links,
        "papers": lib.stats()["papers"],
        "library_exports": export_links(),
        "writable": settings.writable,
    }
    return render(request, "collections.html", context)


@router.get("/collections/{collection_id}", dependencies=[ReadAccess])
def collection_page(
    request: Request,
    lib: LibraryDep,
    settings: SettingsDep,
    collection_id: str,
    sort: str = "",
    page: str = "",
) -> Response:
    """One collection, by id (or by its exact name, as the CLI accepts); its papers newest
    added first (or by title, or by year), a page at a time."""
    found = lib.collection(collection_id)
    path = f"/collections/{found.id}"
    shown, sort, links = sorted_page(found.items, ITEM_SORTS, sort, page, path)
    names = lib.upload_names([i.paper for i in shown])
    items = [
        {**paper_card(i.paper, names.get(i.paper.id)), "note": i.note, "added_at": i.added_at}
        for i in shown
    ]
    context = {
        "c": found,
        "items": items,
        "n_items": len(found.items),
        "sort": sort,
        "sorts": list(ITEM_SORTS),
        "pages": links,
        "exports": export_links(collection=found.id),
        "writable": settings.writable,
    }
    return render(request, "collection.html", context)
