"""The one place the HTTP API turns errors into JSON: ``{"error": "...", "status": N}``.

A ``KBError`` carries its status (``kb/errors.py``). Bad parameters (422), unknown routes (404)
and bodies over the size limit (413) are mapped here too, so every error answer has
``ErrorPublic``'s shape. The web pages render the same messages as HTML (``api.web.render``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from api.schemas import ErrorPublic
from kb.errors import KBError
from kb.settings import Settings

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
    """A library error as the API's error answer, with the error's own status."""
    return error_response(str(exc), exc.status)


def validation_message(exc: RequestValidationError) -> str:
    """One line naming each bad parameter or field: ``k: Input should be ...; lang: ...``."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path"))
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def too_large_message(upload_max_mb: int) -> str:
    return f"The request is too large: a PDF may be at most {upload_max_mb} MiB (KB_UPLOAD_MAX_MB)."


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of a route: these statuses answer with ``ErrorPublic``."""
    return {code: {"model": ErrorPublic} for code in codes}


def install_error_handlers(app: FastAPI, settings: Settings) -> None:
    """Every error answers with ErrorPublic's JSON: {"error": "...", "status": N}."""

    @app.exception_handler(KBError)
    async def kb_error(request: Request, exc: KBError) -> JSONResponse:
        return kb_error_response(exc)

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
