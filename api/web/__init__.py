"""The web page: server-rendered HTML over the same Library calls as the JSON API.

``render`` holds the templates and what the pages share; ``pages`` (search, paper, upload)
and ``collections`` build on it, and neither imports the other.
"""

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.web import collections, pages
from api.web.render import STATIC

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Add the HTML pages and their static assets to ``app``."""
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.include_router(pages.router)
    app.include_router(collections.router)
