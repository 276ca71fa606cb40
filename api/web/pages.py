"""The web page's search, paper and upload pages: server-rendered HTML (Jinja2) over the same
Library calls as the JSON API.

Routes stay thin: each calls one or two Library methods and hands the result to a small
view-model function, then to a template (``api.web.render``).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from api.auth import ReadAccess
from api.deps import LibraryDep, SettingsDep
from api.web.i18n import LANG_COOKIE, UI_LANGS
from api.web.render import HTMLRoute, export_links, paper_card, render
from kb.errors import InvalidInput, PaperNotFound
from kb.library import Library
from kb.library.query import SearchQuery
from kb.types import Paper, SearchHit, Snippet

SEARCH_K = 10
MAX_K = 50
RELATED_K = 8
SNIPPET_CHARS = 260
EXAMPLES = ("reward hacking", "越狱攻击", "shutdown avoidance", "可扩展监督")

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


def hit_card(hit: SearchHit) -> dict[str, Any]:
    snippets = [trim(s) for s in sorted(hit.snippets, key=lambda s: -s.score)]
    return {
        **paper_card(hit.paper),
        "score": hit.score,
        "weak": hit.weak,
        "snippets": snippets,
        "translations": hit.translations,
        "relation": hit.relation,
    }


def related_groups(hits: list[SearchHit]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Related papers by language: English, Chinese, then any other; empty groups kept."""
    groups: dict[str, list[dict[str, Any]]] = {"en": [], "zh": [], "other": []}
    for hit in hits:
        groups[hit.paper.lang if hit.paper.lang in ("en", "zh") else "other"].append(hit_card(hit))
    return [(lang, cards) for lang, cards in groups.items() if cards or lang != "other"]


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


# ---------------------------------------------------------------- pages


@router.get("/", dependencies=[ReadAccess])
def search_page(
    request: Request,
    lib: LibraryDep,
    q: str = "",
    lang: str = "all",
    year_from: str = "",
    year_to: str = "",
    k: str = "",
) -> Response:
    lang = lang if lang in ("all", "en", "zh") else "all"
    form = {"q": q.strip(), "lang": lang, "year_from": year_from, "year_to": year_to}
    context: dict[str, Any] = {"form": form, "examples": EXAMPLES}
    y_from, y_to = parse_year("year_from", year_from), parse_year("year_to", year_to)
    if form["q"]:
        n = parse_k(k)
        query = SearchQuery.build(form["q"], k=n, lang=lang, year_from=y_from, year_to=y_to)
        found = lib.search(query)
        context["result"] = found
        context["cards"] = [hit_card(h) for h in found.results]
        context["more_k"] = n * 2 if len(found.results) >= n and n < MAX_K else None
        # the same search as the page's, so the file holds the papers shown
        filters = {"lang": lang, "year_from": y_from, "year_to": y_to}
        context["exports"] = export_links(q=form["q"], k=n, **filters)
    else:
        context["stats"] = lib.stats()
        context["recent"] = [paper_card(p) for p in lib.papers(limit=8, sort="added")]
    return render(request, "search.html", context)


@router.get("/papers/{paper_id}", dependencies=[ReadAccess])
def paper_page(request: Request, lib: LibraryDep, settings: SettingsDep, paper_id: str) -> Response:
    paper = lib.paper(paper_id)
    context = {
        "card": paper_card(paper),
        "files": [os.path.basename(f) for f in paper.files],
        "translations": [paper_card(p) for p in translations_of(lib, paper)],
        "related": related_groups(related_hits(lib, paper)),
        "memberships": lib.memberships(paper.id),
        "all_collections": lib.collections(),
        "writable": bool(settings.keys),
    }
    return render(request, "paper.html", context)


@router.get("/papers/{paper_id}/related", dependencies=[ReadAccess])
def related_fragment(request: Request, lib: LibraryDep, paper_id: str) -> Response:
    """The related-work list of a search card, fetched when the card's section is opened."""
    paper = lib.paper(paper_id)
    groups = related_groups(related_hits(lib, paper))
    return render(request, "_related.html", {"related": groups, "paper": paper})


@router.get("/upload", dependencies=[ReadAccess])
def upload_page(request: Request, settings: SettingsDep) -> Response:
    context = {"writable": bool(settings.keys), "max_mb": settings.upload_max_mb}
    return render(request, "upload.html", context)


@router.get("/ui-lang/{code}")
def set_ui_lang(code: str, next: str = "/") -> Response:
    """The language toggle: remember the choice in a cookie and go back to the page."""
    if code not in UI_LANGS:
        raise InvalidInput(f"The interface speaks {' or '.join(UI_LANGS)}, not {code!r}.")
    safe = next if next.startswith("/") and not next.startswith(("//", "/\\")) else "/"
    response = RedirectResponse(safe, status_code=303)
    response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="lax")
    return response
