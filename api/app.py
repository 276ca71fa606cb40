"""The FastAPI app, built by a factory from Settings; state lives in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import web
from api.auth import ReadAccess
from api.docs import install_docs
from api.errors import AUTH_ERRORS, install_error_handlers
from api.guard import RequestGuard
from api.routes import collections, exports, jobs, meta, papers, search
from api.schemas import ErrorPublic
from kb.library import Library
from kb.settings import Settings

MULTIPART_SLACK = 1 << 16  # room for multipart headers around one uploaded file
JOB_UPLOAD_FACTOR = 20  # one ingest job's request may carry this many KB_UPLOAD_MAX_MB


def create_app(settings: Settings, library: Library | None = None) -> FastAPI:
    """Build the app. ``library``: an open Library to serve (else one is opened from settings)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        lib = library or Library(settings)
        runner = lib.job_runner()
        if not settings.read_only:  # a read replica runs no ingest jobs (nor resumes any)
            runner.start()
        try:
            yield {"library": lib, "settings": settings, "jobs": runner}
        finally:
            # the running job stops at its next file; it and the queued ones stay queued
            # in the store, and the next start resumes them
            stopped = runner.stop()
            if library is None and stopped:  # else its thread still uses the store
                lib.close()

    app = FastAPI(
        title="kb",
        summary="Bilingual (English/Chinese) search over AI-safety papers",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served by api.docs with local assets (no CDN offline)
        redoc_url=None,
        responses={
            400: {"model": ErrorPublic},
            404: {"model": ErrorPublic},
            422: {"model": ErrorPublic, "description": "Invalid parameters or body"},
        },
    )
    install_error_handlers(app, settings)
    upload_max = settings.upload_max_mb << 20
    limits = {
        "/api/papers": upload_max + MULTIPART_SLACK,
        "/api/ingest-jobs": upload_max * JOB_UPLOAD_FACTOR + MULTIPART_SLACK,
    }
    app.add_middleware(RequestGuard, settings=settings, uploads=limits)
    if settings.cors_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_list),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.include_router(meta.router)  # open even when reads need a key (health checks)
    for resource in (search, papers, jobs, collections, exports):
        app.include_router(resource.router, dependencies=[ReadAccess], responses=AUTH_ERRORS)
    web.install(app)
    install_docs(app)
    return app
