"""The one place the HTTP API turns errors into JSON: ``{"error": "...", "status": N}``.

A ``KBError`` carries its status (``kb/errors.py``). Bad parameters (422), unknown routes (404)
and bodies over the size limit (413) are mapped here too, and so are operating-system and SQLite
errors (``kb.errors.translate``: a full disk is 507) and, last, any other error (500, its
traceback in the server's log only), so every error answer has ``ErrorPublic``'s shape. The web
pages render the same messages as HTML (``api.web.render``).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from api.schemas import ErrorPublic
from kb.errors import KBError, translate
from kb.settings import Settings

log = logging.getLogger(__name__)

# the OpenAPI entry of the routes behind a key (included once per router in api.app)
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic, "description": "No API key, or a wrong one"}
}


def error_response(
    message: str, status: int, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The API's error answer: ``{"error": message, "status": status}`` with that status."""
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


def kb_error_response(exc: KBError) -> JSONResponse:
    """A library error as the API's error answer, with the error's own status (and a
    ``Retry-After`` header when it says when to try again)."""
    retry = getattr(exc, "retry_after", None)
    headers = None if retry is None else {"Retry-After": str(retry)}
    return error_response(str(exc), exc.status, headers)


def unexpected_response(request: Request, exc: BaseException) -> JSONResponse:
    """A 500 for an error kb did not expect: the traceback goes to the log, never the client."""
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    message = (
        f"The server failed on {request.method} {request.url.path} ({type(exc).__name__}); "
        "nothing half-done was kept. The server's log has the details; `kb doctor` checks "
        "whether the store is damaged."
    )
    return error_response(message, 500)


def validation_message(exc: RequestValidationError) -> str:
    """One line naming each bad parameter or field: ``k: Input should be ...; lang: ...``."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path"))
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def too_large_message(upload_max_mb: int | None) -> str:
    """Why a body was refused (413): an upload over KB_UPLOAD_MAX_MB (``None``: a JSON body)."""
    if upload_max_mb is None:
        return "The request body is too large: a body other than an upload may be at most 1 MiB."
    return f"The request is too large: a PDF may be at most {upload_max_mb} MiB (KB_UPLOAD_MAX_MB)."


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of a route: these statuses answer with ``ErrorPublic``."""
    return {code: {"model": ErrorPublic} for code in codes}


def install_error_handlers(app: FastAPI, settings: Settings) -> None:
    """Every error answers with ErrorPublic's JSON: {"error": "...", "status": N}."""

    @app.exception_handler(KBError)
    async def kb_error(request: Request, exc: KBError) -> JSONResponse:
        return kb_error_response(exc)

    @app.exception_handler(OSError)
    @app.exception_handler(sqlite3.Error)
    @app.exception_handler(MemoryError)
    async def system_error(request: Request, exc: Exception) -> JSONResponse:
        known = translate(exc)
        if known is None:
            return unexpected_response(request, exc)
        log.warning("%s %s: %s", request.method, request.url.path, known)
        return kb_error_response(known)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return unexpected_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_message(exc), 422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 413:
            message = too_large_message(settings.upload_max_mb)
        elif exc.status_code == 404:
            message = f"No route {request.url.path}; the API is described at /docs."
        return error_response(message, exc.status_code, exc.headers)
