"""The HTTP edge of kb: the JSON API, its docs, and the web page, built by ``create_app``.

``app`` (the factory), ``deps`` (shared dependencies and parameter types), ``errors`` (the one
error-to-JSON mapping), ``auth``, ``schemas``; ``routes/`` holds one router per resource and
``web/`` the server-rendered pages.
"""

from api.app import create_app

__all__ = ["create_app"]
