"""Rendering the web page: the Jinja2 templates, error pages, and what pages share.

Errors raised by the library (bad year, unknown paper, a missing key) become a friendly HTML
page with the error's status, never a traceback; ``HTMLRoute`` does that for every page.
Templates are in ``api/templates`` and assets in ``api/static`` (no CDN: the page works
offline).
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from api.errors import validation_message
from api.web.i18n import LANG_COOKIE, js_messages, pick_lang, translator
from ingest.lang import UNSPACED_CHARS
from kb.errors import KBError, translate
from kb.library import Library
from kb.types import Paper, Snippet

HERE = Path(__file__).resolve().parent.parent  # api/: templates/ and static/
STATIC = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))

_HASH_NAME = re.compile(r"[0-9a-f]{64}\.pdf")
FORMATS = (("bibtex", "BibTeX"), ("ris", "RIS"), ("csl-json", "CSL-JSON"))  # of /api/export


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
        # a read replica says so where a page would offer a write (KB_READ_ONLY)
        "read_only": getattr(getattr(request.state, "settings", None), "read_only", False),
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status)


def error_page(request: Request, status: int, detail: str) -> Response:
    return render(request, "error.html", {"status": status, "detail": detail}, status=status)


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
                return error_page(request, 422, validation_message(exc))
            except (OSError, sqlite3.Error, MemoryError) as exc:  # a full disk, a damaged store
                known = translate(exc)
                if known is None:
                    raise
                return error_page(request, known.status, str(known))

        return route


# ---------------------------------------------------------------- shared view models


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


# What the reading page searches for when a snippet has no keyword highlight (a dense-only
# match): the snippet's opening words, few enough to sit on one line of the PDF.
_OPENING_WORDS = 6
_OPENING_CJK_CHARS = 12
_UNSPACED = re.compile(f"[{UNSPACED_CHARS}]")  # Chinese (and Japanese): no spaces between words


def find_terms(snippet: Snippet) -> list[str]:
    """What the reading page highlights on the snippet's page: where the passage starts (its
    opening words), then the query keywords it matched, as printed in it; six at most."""
    words = snippet.text.split()
    if not words:
        opening = ""
    elif _UNSPACED.search(words[0]):
        opening = words[0][:_OPENING_CJK_CHARS]
    else:
        opening = " ".join(words[:_OPENING_WORDS])
    terms = [opening] if opening else []
    for start, end in sorted(snippet.highlights):
        term = snippet.text[start:end].strip()
        if term and term.lower() not in (t.lower() for t in terms):
            terms.append(term)
    return terms[:6]


def reader_href(paper_id: int, snippet: Snippet, back: str) -> str:
    """The reading page at the snippet's page, highlighting its terms; ``back``: this page."""
    query = [("page", str(snippet.page or 1)), *(("t", t) for t in find_terms(snippet))]
    return f"/papers/{paper_id}/read?" + urlencode([*query, ("back", back)])


templates.env.globals.update(lang_badge=lang_badge, marked=marked, reader_href=reader_href)


def has_pdf(paper: Paper) -> bool:
    return paper.kind == "pdf" or bool(paper.files)


def shown_name(path: str, upload_name: str | None = None) -> str:
    """A file as the page names it: the name it was uploaded with, else its base name; ""
    for a kept upload of unknown name (``<sha256>.pdf``: a server detail, not a name)."""
    if upload_name:
        return upload_name
    base = os.path.basename(path.rstrip("/\\"))
    return "" if _HASH_NAME.fullmatch(base) else base


def paper_card(paper: Paper, upload_name: str | None = None) -> dict[str, Any]:
    """What a card or a list row shows of a paper; ``upload_name``: its PDF's name as
    uploaded (``Library.upload_names``). The source is a file name, never a server path."""
    authors = paper.authors[:4] + (["et al."] if len(paper.authors) > 4 else [])
    return {
        "paper": paper,
        "authors": ", ".join(authors),
        "source": shown_name(paper.source, upload_name),
        "has_pdf": has_pdf(paper),
    }


def paper_cards(lib: Library, papers: list[Paper]) -> list[dict[str, Any]]:
    """``paper_card`` of each paper, with the names their PDFs were uploaded with."""
    names = lib.upload_names(papers)
    return [paper_card(p, names.get(p.id)) for p in papers]


def export_links(**params: object) -> list[tuple[str, str]]:
    """(label, URL) of ``/api/export`` in each format, with ``params`` (empty ones left out)."""
    kept = {k: v for k, v in params.items() if v is not None and v != ""}
    return [(label, "/api/export?" + urlencode({"format": f, **kept})) for f, label in FORMATS]


def safe_path(target: str | None, default: str) -> str:
    """``target`` when it is a path of this site ("/?q=x"), else ``default``: a link or a
    redirect taken from the query string never leads to another site."""
    target = target or ""
    ok = target.startswith("/") and not target.startswith(("//", "/\\"))
    return target if ok and "\n" not in target and "\r" not in target else default


def page_links(
    path: str, params: dict[str, str], page: int, total: int, per_page: int
) -> dict[str, Any]:
    """Paging of a list: this page's number, how many there are, and the previous and next
    pages' URLs (None at either end), with ``params`` (the sort) kept."""
    pages = max(1, -(-total // per_page))
    page = min(page, pages)

    def url(n: int) -> str:
        return f"{path}?{urlencode({**params, 'page': n})}"

    return {
        "page": page,
        "pages": pages,
        "prev": url(page - 1) if page > 1 else None,
        "next": url(page + 1) if page < pages else None,
    }
