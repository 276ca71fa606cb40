"""The FastAPI app, built by a factory from Settings; state lives in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api import routes, routes_collections, routes_jobs, routes_papers, web
from kb.errors import KBError
from kb.service import Library
from kb.settings import Settings


def create_app(settings: Settings, library: Library | None = None) -> FastAPI:
    """Build the app. ``library``: an open Library to serve (else one is opened from settings)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        lib = library or Library(settings)
        try:
            yield {"library": lib, "settings": settings}
        finally:
            if library is None:
                lib.close()

    app = FastAPI(
        title="kb",
        summary="Bilingual (English/Chinese) search over AI-safety papers",
        version="0.1.0",
        lifespan=lifespan,
        responses={400: {"model": routes.ErrorPublic}, 404: {"model": routes.ErrorPublic}},
    )

    @app.exception_handler(KBError)
    async def kb_error(request: Request, exc: KBError) -> JSONResponse:
        return JSONResponse({"error": str(exc), "status": exc.status}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path"))
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return JSONResponse({"error": "; ".join(parts), "status": 422}, status_code=422)

    app.include_router(routes.router)
    app.include_router(routes_papers.router)
    app.include_router(routes_jobs.router)
    app.include_router(routes_collections.router)
    web.install(app)
    return app
