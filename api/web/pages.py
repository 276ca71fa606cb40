"""The web page's search, paper and upload pages: server-rendered HTML (Jinja2) over the same
Library calls as the JSON API.

Routes stay thin: each calls one or two Library methods and hands the result to a small
view-model function, then to a template (``api.web.render``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from itertools import zip_longest
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from api.auth import ReadAccess
from api.deps import LibraryDep, SettingsDep
from api.web.i18n import LANG_COOKIE, UI_LANGS
from api.web.render import (
    HTMLRoute,
    export_links,
    has_pdf,
    page_links,
    paper_card,
    paper_cards,
    render,
    safe_path,
    shown_name,
)
from ingest.lang import HAN_CHARS
from kb.errors import InvalidInput, NotFound, PaperNotFound
from kb.library import Library
from kb.library.exports import gbt7714
from kb.library.query import SearchQuery
from kb.types import Paper, SearchHit, Snippet

SEARCH_K = 10
MAX_K = 50
RELATED_K = 8
SNIPPET_CHARS = 260
N_EXAMPLES = 4
LIST_PAGE = 20  # papers per page of /papers
PAPER_SORTS = ("added", "year", "title")
_HAN = re.compile(f"[{HAN_CHARS}]")  # a Chinese query or title
# Where a title's key phrase ends: "Jailbreak attacks: a survey" -> "Jailbreak attacks".
_TITLE_SPLIT = re.compile(r"\s*(?:[:：|—–(（【\[]|\s-\s)\s*")

router = APIRouter(include_in_schema=False, route_class=HTMLRoute)


# ---------------------------------------------------------------- view models


def trim(snippet: Snippet, width: int = SNIPPET_CHARS) -> Snippet:
    """About ``width`` characters of a snippet (half for CJK), from just before its first
    highlight; the highlights move along, and one cut by the end is dropped."""
    text = snippet.text
    if snippet.lang in ("zh", "ja", "ko"):
        width = width * 3 // 5  # a CJK character is about twice as wide as a Latin one
    if len(text) <= width:
        return snippet
    first = min((a for a, _ in snippet.highlights), default=0)
    start = max(0, min(first - width // 4, len(text) - width))
    space = text.find(" ", start, start + 20)  # start and end on a word where words have spaces
    if start > 0 and space != -1:
        start = space + 1
    end = min(len(text), start + width)
    space = text.rfind(" ", end - 20, end)
    if end < len(text) and space > start:
        end = space
    head, tail = ("…" if start > 0 else ""), ("…" if end < len(text) else "")
    shift = len(head) - start
    spans = [(max(a, start) + shift, b + shift) for a, b in snippet.highlights if b <= end]
    spans = [(a, b) for a, b in spans if a < b]
    return replace(snippet, text=head + text[start:end] + tail, highlights=spans)


def hit_card(hit: SearchHit, upload_name: str | None = None) -> dict[str, Any]:
    snippets = [trim(s) for s in sorted(hit.snippets, key=lambda s: -s.score)]
    return {
        **paper_card(hit.paper, upload_name),
        "score": hit.score,
        "weak": hit.weak,
        "snippets": snippets,
        "translations": hit.translations,
        "relation": hit.relation,
    }


def hit_cards(lib: Library, hits: list[SearchHit]) -> list[dict[str, Any]]:
    names = lib.upload_names([h.paper for h in hits])
    return [hit_card(h, names.get(h.paper.id)) for h in hits]


def related_groups(lib: Library, hits: list[SearchHit]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Related papers by language: English, Chinese, then any other; empty groups kept."""
    groups: dict[str, list[dict[str, Any]]] = {"en": [], "zh": [], "other": []}
    for hit, card in zip(hits, hit_cards(lib, hits), strict=True):
        groups[hit.paper.lang if hit.paper.lang in ("en", "zh") else "other"].append(card)
    return [(lang, cards) for lang, cards in groups.items() if cards or lang != "other"]


def title_phrase(title: str) -> str:
    """A title's key phrase (its main part, before a colon or a dash), when short enough to
    be a query: 2 to 5 words, or 2 to 12 characters of Chinese; else ""."""
    head = _TITLE_SPLIT.split(title.strip(), maxsplit=1)[0].strip(" .。,，")
    if _HAN.search(head):
        return head if 2 <= len(head.replace(" ", "")) <= 12 else ""
    return head if 2 <= len(head.split()) <= 5 and len(head) <= 48 else ""


def example_queries(papers: list[Paper], n: int = N_EXAMPLES) -> list[str]:
    """Queries to try, drawn from the library: its most used tags, then the key phrases of
    its newest titles; half Chinese and half English where the library has both."""
    tags = Counter(t for p in papers for t in p.tags)
    ranked = [t for t, _ in tags.most_common()] + [title_phrase(p.title) for p in papers]
    seen: set[str] = set()
    unique = []
    for query in ranked:
        if query and query.lower() not in seen:
            seen.add(query.lower())
            unique.append(query)
    en = [q for q in unique if not _HAN.search(q)][: n // 2]
    zh = [q for q in unique if _HAN.search(q)][: n // 2]
    chosen = [q for pair in zip_longest(en, zh) for q in pair if q]
    return chosen + [q for q in unique if q not in chosen][: n - len(chosen)]


def parse_page(raw: str | None) -> int:
    """A 1-based page number from the query string; anything odd is page 1."""
    return int(raw) if raw and raw.isdigit() and 0 < int(raw) < 10**6 else 1


def parse_year(name: str, raw: str | None) -> int | None:
    """A year from a form field: empty means none; anything else must be 1000..3000."""
    raw = (raw or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 1000 <= int(raw) <= 3000:
        raise InvalidInput(f"{name} must be a year such as 2023, not {raw!r}.")
    return int(raw)


def parse_k(raw: str | None) -> int:
    try:
        return min(max(int(raw or SEARCH_K), 1), MAX_K)
    except ValueError:
        return SEARCH_K


def translations_of(lib: Library, paper: Paper) -> list[Paper]:
    found = []
    for tid in paper.translations:
        try:
            found.append(lib.paper(tid))
        except PaperNotFound:  # removed since; the link is stale, not an error of this page
            continue
    return found


def related_hits(lib: Library, paper: Paper) -> list[SearchHit]:
    # a paper without passages (no text) has no vector to compare with
    return lib.related(paper.id, k=RELATED_K).results if paper.n_chunks else []


def citations(lib: Library, paper: Paper) -> list[tuple[str, str, str]]:
    """(format, label, text) of the paper's "Cite" box: BibTeX, RIS and GB/T 7714 (no file
    link: the text is for pasting into a bibliography)."""
    return [
        ("bibtex", "BibTeX", lib.export([paper], "bibtex", files={}).strip()),
        ("ris", "RIS", lib.export([paper], "ris", files={}).replace("\r\n", "\n").strip()),
        ("gbt7714", "GB/T 7714", gbt7714(paper)),
    ]


def file_names(lib: Library, paper: Paper) -> list[str]:
    """The paper's files by name (as uploaded, or as on disk), never as server paths."""
    name = lib.upload_names([paper]).get(paper.id)
    return [
        shown_name(f, name if f == paper.source or len(paper.files) == 1 else None)
        for f in paper.files
    ]


# ---------------------------------------------------------------- pages


@router.get("/", dependencies=[ReadAccess])
def search_page(
    request: Request,
    lib: LibraryDep,
    settings: SettingsDep,
    q: str = "",
    lang: str = "all",
    year_from: str = "",
    year_to: str = "",
    k: str = "",
) -> Response:
    lang = lang if lang in ("all", "en", "zh") else "all"
    form = {"q": q.strip(), "lang": lang, "year_from": year_from, "year_to": year_to}
    context: dict[str, Any] = {"form": form}
    y_from, y_to = parse_year("year_from", year_from), parse_year("year_to", year_to)
    if form["q"]:
        n = parse_k(k)
        query = SearchQuery.build(form["q"], k=n, lang=lang, year_from=y_from, year_to=y_to)
        found = lib.search(query)
        context["result"] = found
        context["cards"] = hit_cards(lib, found.results)
        context["all_collections"] = lib.collections()
        context["writable"] = settings.writable
        context["more_k"] = n * 2 if len(found.results) >= n and n < MAX_K else None
        # the same search as the page's, so the file holds the papers shown
        filters = {"lang": lang, "year_from": y_from, "year_to": y_to}
        context["exports"] = export_links(q=form["q"], k=n, **filters)
    else:
        context["stats"] = lib.stats()
        newest = lib.papers(limit=200, sort="added")
        context["recent"] = paper_cards(lib, newest[:8])
        context["examples"] = example_queries(newest)
    return render(request, "search.html", context)


@router.get("/papers/{paper_id}", dependencies=[ReadAccess])
def paper_page(
    request: Request, lib: LibraryDep, settings: SettingsDep, paper_id: str, back: str = "/"
) -> Response:
    """One paper; ``back``: the search page it was opened from (query and filters kept)."""
    paper = lib.paper(paper_id)
    context = {
        "card": paper_cards(lib, [paper])[0],
        "files": [f for f in file_names(lib, paper) if f],
        "back": safe_path(back, "/"),
        "cite": citations(lib, paper),
        "translations": paper_cards(lib, translations_of(lib, paper)),
        "related": related_groups(lib, related_hits(lib, paper)),
        "memberships": lib.memberships(paper.id),
        "all_collections": lib.collections(),
        "writable": settings.writable,
    }
    return render(request, "paper.html", context)


@router.get("/papers/{paper_id}/read", dependencies=[ReadAccess])
def reader_page(
    request: Request,
    lib: LibraryDep,
    paper_id: str,
    page: str = "1",
    t: Annotated[list[str] | None, Query()] = None,
    back: str = "/",
) -> Response:
    """The paper's PDF in pdf.js (served by kb), at ``page``, with the terms ``t`` highlighted
    there: where a search snippet's page link leads."""
    paper = lib.paper(paper_id)
    if not has_pdf(paper):
        raise NotFound(f"Paper {paper.id} has no PDF to read.")
    context = {
        "paper": paper,
        "page": parse_page(page),
        "find": [term[:200] for term in (t or [])[:6]],
        "back": safe_path(back, "/"),
    }
    return render(request, "reader.html", context)


@router.get("/papers/{paper_id}/related", dependencies=[ReadAccess])
def related_fragment(request: Request, lib: LibraryDep, paper_id: str) -> Response:
    """The related-work list of a search card, fetched when the card's section is opened."""
    paper = lib.paper(paper_id)
    groups = related_groups(lib, related_hits(lib, paper))
    return render(request, "_related.html", {"related": groups, "paper": paper})


@router.get("/papers", dependencies=[ReadAccess])
def papers_page(request: Request, lib: LibraryDep, sort: str = "added", page: str = "") -> Response:
    """Every paper, a page at a time, newest first (or by year, or by title)."""
    sort = sort if sort in PAPER_SORTS else "added"
    total = lib.count()
    n = min(parse_page(page), max(1, -(-total // LIST_PAGE)))
    papers = lib.papers(limit=LIST_PAGE, offset=(n - 1) * LIST_PAGE, sort=sort)
    context = {
        "cards": paper_cards(lib, papers),
        "total": total,
        "sort": sort,
        "sorts": PAPER_SORTS,
        "pages": page_links("/papers", {"sort": sort}, n, total, LIST_PAGE),
    }
    return render(request, "papers.html", context)


@router.get("/upload", dependencies=[ReadAccess])
def upload_page(request: Request, settings: SettingsDep) -> Response:
    from ingest.ocr import ocr_available

    context = {
        "writable": settings.writable,
        "max_mb": settings.upload_max_mb,
        "ocr_missing": ocr_available(),  # None: Tesseract can run
    }
    return render(request, "upload.html", context)


@router.get("/ui-lang/{code}")
def set_ui_lang(code: str, next: str = "/") -> Response:
    """The language toggle: remember the choice in a cookie and go back to the page."""
    if code not in UI_LANGS:
        raise InvalidInput(f"The interface speaks {' or '.join(UI_LANGS)}, not {code!r}.")
    response = RedirectResponse(safe_path(next, "/"), status_code=303)
    response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="lax")
    return response
