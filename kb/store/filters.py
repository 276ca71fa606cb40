"""Which papers a listing (or a filtered search) may return, and the SQL that says so.

``PaperFilters`` is checked once at the edge of the Library; its ``where`` clause refers to
the ``papers`` table by name and is shared by the store's paper listing and the chunk ids a
filtered search may return. Pure string building, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from kb.errors import InvalidInput

_HAS_TAG = "EXISTS (SELECT 1 FROM paper_tags t WHERE t.paper_id = papers.id AND t.tag = ?)"
_ANY_AUTHOR = "EXISTS (SELECT 1 FROM json_each(papers.authors) a WHERE instr(lower(a.value), ?))"
PAPER_ORDER = {
    "id": "id",
    "added": "added_at DESC, id DESC",
    "year": "year IS NULL, year DESC, id DESC",
    "title": "lower(title), id",
}


@dataclass(frozen=True)
class PaperFilters:
    """Filters of a paper listing; None (or an empty string) means no filter.

    Attributes:
        author: a case-insensitive substring of any author name (Chinese names work as is).
        q: a case-insensitive substring of the title or of any author name.
        tag: papers carrying exactly this tag.
    """

    lang: str | None = None
    year_from: int | None = None
    year_to: int | None = None
    tag: str | None = None
    author: str | None = None
    q: str | None = None

    @property
    def narrows_papers(self) -> bool:
        """Whether the filters leave out papers for reasons other than their language."""
        return any(v for v in (self.year_from, self.year_to, self.tag, self.author, self.q))

    def checked(self) -> PaperFilters:
        """The same filters, validated (InvalidInput naming the bad one) and trimmed."""
        for name, year in (("year_from", self.year_from), ("year_to", self.year_to)):
            if year is not None and not 1000 <= year <= 3000:
                raise InvalidInput(f"{name} must be a year such as 2024, not {year!r}.")
        return replace(
            self,
            lang=check_lang(self.lang),
            tag=(self.tag or "").strip() or None,
            author=(self.author or "").strip() or None,
            q=(self.q or "").strip() or None,
        )

    def where(self) -> tuple[str, list[Any]]:
        """The WHERE clause (or "") and its arguments."""
        where: list[str] = []
        args: list[Any] = []
        for clause, value in (
            ("lang = ?", self.lang),
            ("year >= ?", self.year_from),
            ("year <= ?", self.year_to),
            (_HAS_TAG, self.tag),
            (_ANY_AUTHOR, self.author.lower() if self.author else None),
        ):
            if value is not None and value != "":
                where.append(clause)
                args.append(value)
        if self.q:
            where.append(f"(instr(lower(title), ?) OR {_ANY_AUTHOR})")
            args += [self.q.lower(), self.q.lower()]
        return ("WHERE " + " AND ".join(where) if where else ""), args


def check_lang(lang: str | None) -> str | None:
    """A language filter: None for all ("", "all", "any"), else a lowercase language code."""
    if lang is None or lang in ("", "all", "any"):
        return None
    if not (lang.isalpha() and 2 <= len(lang) <= 3 and lang.islower()):
        raise InvalidInput(f"lang must be a language code such as 'en' or 'zh', not {lang!r}.")
    return lang
