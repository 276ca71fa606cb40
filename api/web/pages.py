"""The web page: server-rendered HTML (Jinja2) over the same Library calls as the JSON API.

Routes stay thin: each calls one or two Library methods and hands the result to a small
view-model function, then to a template in ``api/templates``. Errors raised by the library
(bad year, unknown paper, a missing key) become a friendly HTML page with the error's status,
never a traceback; ``HTMLRoute`` does that for every page. Assets are served by the app from
``api/static`` (no CDN: the page works offline).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from api.auth import ReadAccess
from api.web.i18n import LANG_COOKIE, UI_LANGS, js_messages, pick_lang, translator
from kb.errors import InvalidInput, KBError, PaperNotFound
from kb.library.facade import Library
from kb.types import Paper, SearchHit, Snippet

HERE = Path(__file__).resolve().parent.parent  # api/: templates/ and static/
templates = Jinja2Templates(directory=str(HERE / "templates"))

SEARCH_K = 10
MAX_K = 50
RELATED_K = 8
SNIPPET_CHARS = 260
EXAMPLES = ("reward hacking", "越狱攻击", "shutdown avoidance", "可扩展监督")
FORMATS = (("bibtex", "BibTeX"), ("ris", "RIS"), ("csl-json", "CSL-JSON"))  # of /api/export


def install(app: FastAPI) -> None:
    """Add the HTML pages and their static assets to ``app``."""
    from api.web import collections as web_collections  # it builds on this module's helpers

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(router)
    app.include_router(web_collections.router)


# ---------------------------------------------------------------- rendering and errors


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    """Render a template with what every page needs: the translator, the UI language, etc."""
    ui = pick_lang(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    base = {
        "t": translator(ui),
        "ui_lang": ui,
        "other_lang": "zh" if ui == "en" else "en",
        "here": here,
        "js_messages": js_messages(ui),
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status)


def error_page(request: Request, status: int, detail: str) -> Response:
    return render(request, "error.html", {"status": status, "detail": detail}, status=status)


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path"))
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


class HTMLRoute(APIRoute):
    """A page route: library errors and bad parameters render the error page, not JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except KBError as exc:
                return error_page(request, exc.status, str(exc))
            except RequestValidationError as exc:
                return error_page(request, 422, _validation_detail(exc))

        return route


router = APIRouter(include_in_schema=False, route_class=HTMLRoute)


# ---------------------------------------------------------------- view models


def lang_badge(lang: str) -> str:
    return {"en": "EN", "zh": "中文"}.get(lang, lang.upper())


def marked(snippet: Snippet) -> Markup:
    """The snippet's text with its highlight spans in <mark>; every text piece escaped."""
    text, out, at = snippet.text, [], 0
    for start, end in sorted(snippet.highlights):
        start, end = max(start, at), min(end, len(text))
        if end <= start:
            continue
        out += [escape(text[at:start]), Markup("<mark>"), escape(text[start:end])]
        out.append(Markup("</mark>"))
        at = end
    out.append(escape(text[at:]))
    return Markup("").join(out)


templates.env.globals.update(lang_badge=lang_badge, marked=marked)


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


def has_pdf(paper: Paper) -> bool:
    return paper.kind == "pdf" or bool(paper.files)


def paper_card(paper: Paper) -> dict[str, Any]:
    """What a card or a list row shows of a paper."""
    authors = paper.authors[:4] + (["et al."] if len(paper.authors) > 4 else [])
    return {
        "paper": paper,
        "authors": ", ".join(authors),
        "source": os.path.basename(paper.source.rstrip("/\\")) or paper.source,
        "has_pdf": has_pdf(paper),
    }


def hit_card(hit: SearchHit) -> dict[str, Any]:
    snippets = [trim(s) for s in sorted(hit.snippets, key=lambda s: -s.score)]
    return {
        **paper_card(hit.paper),
        "score": hit.score,
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


def export_links(**params: object) -> list[tuple[str, str]]:
    """(label, URL) of ``/api/export`` in each format, with ``params`` (empty ones left out)."""
    kept = {k: v for k, v in params.items() if v is not None and v != ""}
    return [(label, "/api/export?" + urlencode({"format": f, **kept})) for f, label in FORMATS]


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
    q: str = "",
    lang: str = "all",
    year_from: str = "",
    year_to: str = "",
    k: str = "",
) -> Response:
    lib: Library = request.state.library
    lang = lang if lang in ("all", "en", "zh") else "all"
    form = {"q": q.strip(), "lang": lang, "year_from": year_from, "year_to": year_to}
    context: dict[str, Any] = {"form": form, "examples": EXAMPLES}
    y_from, y_to = parse_year("year_from", year_from), parse_year("year_to", year_to)
    if form["q"]:
        n = parse_k(k)
        found = lib.search(form["q"], k=n, lang=lang, year_from=y_from, year_to=y_to)
        context["result"] = found
        context["cards"] = [hit_card(h) for h in found.results]
        context["more_k"] = n * 2 if len(found.results) >= n and n < MAX_K else None
        # the same search as the page's, so the file holds the papers shown
        filters = {"lang": lang, "year_from": y_from, "year_to": y_to}
        context["exports"] = export_links(q=form["q"], k=n, **filters)
    else:
        context["stats"] = lib.stats()
        context["recent"] = [paper_card(p) for p in lib.papers(limit=8)]
    return render(request, "search.html", context)


@router.get("/papers/{paper_id}", dependencies=[ReadAccess])
def paper_page(request: Request, paper_id: str) -> Response:
    lib: Library = request.state.library
    paper = lib.paper(paper_id)
    context = {
        "card": paper_card(paper),
        "files": [os.path.basename(f) for f in paper.files],
        "translations": [paper_card(p) for p in translations_of(lib, paper)],
        "related": related_groups(related_hits(lib, paper)),
        "memberships": lib.memberships(paper.id),
        "all_collections": lib.collections(),
        "writable": bool(request.state.settings.keys),
    }
    return render(request, "paper.html", context)


@router.get("/papers/{paper_id}/related", dependencies=[ReadAccess])
def related_fragment(request: Request, paper_id: str) -> Response:
    """The related-work list of a search card, fetched when the card's section is opened."""
    lib: Library = request.state.library
    paper = lib.paper(paper_id)
    groups = related_groups(related_hits(lib, paper))
    return render(request, "_related.html", {"related": groups, "paper": paper})


@router.get("/upload", dependencies=[ReadAccess])
def upload_page(request: Request) -> Response:
    settings = request.state.settings
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
