"""The one value of a search: ``SearchQuery``, built and checked once at each edge.

The CLI, the API and the web page each build a ``SearchQuery`` from what the user typed
(``SearchQuery.build`` checks the text, ``k``, the mode and the filters, and says what is
wrong); everything below them (``Library.search``, ``kb.library.search``) takes it as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from kb.errors import InvalidInput
from kb.store.filters import PaperFilters

SEARCH_MODES = ("dense", "keyword", "hybrid")
MAX_QUERY_CHARS = 2000


@dataclass(frozen=True)
class SearchQuery:
    """One search: the query text, how many papers, the mode and the filters.

    Attributes:
        k: papers wanted; None takes ``Settings.search_k``.
        mode: ``dense``, ``keyword`` or ``hybrid``; None takes ``Settings.search_mode``.
        filters: restrictions applied inside the search (lang, years, author, tag).
        min_score: leave out results scoring under it (dense and hybrid scores); None keeps
            them (those under ``Settings.min_score`` are marked weak).
    """

    text: str
    k: int | None = None
    mode: str | None = None
    filters: PaperFilters = field(default_factory=PaperFilters)
    min_score: float | None = None

    @classmethod
    def build(
        cls,
        text: str,
        *,
        k: int | None = None,
        mode: str | None = None,
        lang: str | None = None,
        year_from: int | None = None,
        year_to: int | None = None,
        author: str | None = None,
        tag: str | None = None,
        min_score: float | None = None,
    ) -> SearchQuery:
        """A checked query; InvalidInput says what is wrong (empty text, k < 1, bad mode...).

        Args:
            lang: a language code (``en``, ``zh``); None, ``any`` or ``all`` for every language.
            author: a case-insensitive substring of an author's name; tag: an exact tag.
        """
        if k is not None and k < 1:
            raise InvalidInput(f"k must be at least 1, not {k}.")
        if mode is not None and mode not in SEARCH_MODES:
            raise InvalidInput(f"mode must be one of {', '.join(SEARCH_MODES)}, not {mode!r}.")
        if min_score is not None and not math.isfinite(min_score):
            raise InvalidInput(f"min_score must be a finite number, not {min_score}.")
        filters = PaperFilters(
            lang=lang, year_from=year_from, year_to=year_to, author=author, tag=tag
        ).checked()
        if filters.year_from and filters.year_to and filters.year_from > filters.year_to:
            raise InvalidInput(
                f"year_from ({filters.year_from}) is after year_to ({filters.year_to})."
            )
        return cls(check_text(text), k, mode, filters, min_score)

    def params(self) -> dict[str, Any]:
        """This search as ``GET /api/search`` parameters (what is not set left out)."""
        f = self.filters
        values = {
            "q": self.text, "k": self.k, "mode": self.mode, "lang": f.lang,
            "year_from": f.year_from, "year_to": f.year_to, "author": f.author, "tag": f.tag,
            "min_score": self.min_score,
        }  # fmt: skip
        return {name: value for name, value in values.items() if value is not None}


def check_text(query: str) -> str:
    """The stripped query, or InvalidInput saying what is wrong with it."""
    text = query.strip()
    if not text:
        raise InvalidInput("The query is empty. Type a question or keywords in English or Chinese.")
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidInput(f"The query has {len(text)} characters; the limit is {MAX_QUERY_CHARS}.")
    return text
