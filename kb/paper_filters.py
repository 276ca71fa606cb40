"""SQL for listing papers: the WHERE clause of the filters, and the sort orders.

Pure string building (no I/O), shared by the store's paper listing and the chunk ids a
filtered search may return. Filters refer to the ``papers`` table by its name.
"""

from __future__ import annotations

from typing import Any

_HAS_TAG = "EXISTS (SELECT 1 FROM paper_tags t WHERE t.paper_id = papers.id AND t.tag = ?)"
PAPER_ORDER = {
    "id": "id",
    "added": "added_at DESC, id DESC",
    "year": "year IS NULL, year DESC, id DESC",
    "title": "lower(title), id",
}


def paper_filter(
    *,
    lang: str | None = None,
    year_from: int | None = None,
    year_to: int | None = None,
    tag: str | None = None,
    author: str | None = None,
    q: str | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE clause (or "") and its arguments for a paper listing.

    Args:
        author: a case-insensitive substring of any author name.
        q: a case-insensitive substring of the title or of any author name.
    """
    where: list[str] = []
    args: list[Any] = []
    any_author = "EXISTS (SELECT 1 FROM json_each(papers.authors) a WHERE instr(lower(a.value), ?))"
    if lang:
        where.append("lang = ?")
        args.append(lang)
    if year_from is not None:
        where.append("year >= ?")
        args.append(year_from)
    if year_to is not None:
        where.append("year <= ?")
        args.append(year_to)
    if tag:
        where.append(_HAS_TAG)
        args.append(tag)
    if author:
        where.append(any_author)
        args.append(author.lower())
    if q:
        where.append(f"(instr(lower(title), ?) OR {any_author})")
        args += [q.lower(), q.lower()]
    return ("WHERE " + " AND ".join(where) if where else ""), args
