"""The web page: server-rendered HTML (Jinja2) over the same Library calls as the JSON API."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    """Add the HTML pages and their static assets to ``app``."""
    app.include_router(router)
