"""The request guard: the first thing every request meets, before one byte of its body is read.

A pure ASGI middleware (``RequestGuard``), in this order:

1. **The key.** A write (any method but GET, HEAD, OPTIONS) needs a valid Bearer key; under
   ``KB_READ_ACCESS=key`` so does every read of ``/api/...``, ``/docs``, ``/redoc`` and
   ``/openapi.json`` (header or the web page's cookie), and every other request that carries
   a body. Refused: 401 (403 on a read-only kb), on the headers alone.
2. **The size.** The upload routes take ``KB_UPLOAD_MAX_MB`` (a job: 20 times that); every
   other route at most ``JSON_MAX`` (1 MiB). A declared ``Content-Length`` over the limit is
   refused at once (413); a body without one is counted as it streams in and refused the
   moment it passes the limit, so at most one limit (plus one network read) is ever held.
3. **The depth.** A JSON body (at most 1 MiB, so it is read here whole) nesting deeper than
   ``ingest.safejson.MAX_DEPTH``, or holding over 10,000 arrays and objects (kb's bodies
   hold a handful), is refused (400) before the route parses it.

Routes keep their own key checks (``api.auth``): the guard is the first line, not the only one.
The HTML pages answer a missing read key themselves (an error page with the key form), so the
guard leaves their bodiless reads to them.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import KEY_COOKIE, bearer_key, cookie_key, read_refusal, write_refusal
from api.errors import error_response, kb_error_response, too_large_message
from ingest.safejson import MAX_DEPTH, depth_problem
from kb.errors import KBError
from kb.settings import Settings

JSON_MAX = 1 << 20  # every body but an upload's: JSON edits, notes, forms
MAX_CONTAINERS = 10_000  # arrays and objects in one JSON body (kb's hold a handful)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_PREFIXES = ("/healthz", "/static/", "/docs-static/", "/ui-lang/")  # never keyed
KEYED_PREFIXES = ("/api/", "/docs", "/redoc", "/openapi.json")  # keyed reads answered here


class BodyTooLarge(HTTPException):
    """Raised from the guarded ``receive`` when a streamed body passes its limit."""

    def __init__(self) -> None:
        super().__init__(413)


class RequestGuard:
    """Check the key, then the body's size (and a JSON body's depth); see the module docstring.

    Args:
        uploads: path -> byte limit of the routes that take a file (POST only).
    """

    def __init__(self, app: ASGIApp, settings: Settings, uploads: dict[str, int]) -> None:
        self.app, self.settings, self.uploads = app, settings, uploads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            return await kb_error_response(refusal)(scope, receive, send)
        method, path = scope.get("method", "GET"), scope.get("path", "")
        upload = self.uploads.get(path) if method == "POST" else None
        limit = JSON_MAX if upload is None else upload
        if _declared_length(headers) > limit:
            return await self._too_large(scope, receive, send, upload is not None)
        if upload is not None:  # streamed to disk by the route: counted, never held here
            return await self._streamed(scope, receive, send, limit)
        body = await _read_at_most(receive, limit)
        if body is None:
            return await self._too_large(scope, receive, send, False)
        problem = depth_problem(body, MAX_DEPTH, MAX_CONTAINERS) if _is_json(headers) else None
        if problem is not None:
            return await error_response(f"The JSON body {problem}.", 400)(scope, receive, send)
        await self.app(scope, _replay(body, receive), send)

    def _refusal(self, scope: Scope, headers: dict[bytes, bytes]) -> KBError | None:
        """Why the request is refused on its headers alone, or None."""
        method, path = scope.get("method", "GET"), scope.get("path", "")
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if method not in SAFE_METHODS:
            return write_refusal(self.settings, bearer_key(auth))
        if self.settings.read_access == "open" or path.startswith(OPEN_PREFIXES):
            return None
        if not (path.startswith(KEYED_PREFIXES) or _has_body(headers)):
            return None  # an HTML page: it renders its own refusal, with the key form
        cookies = cookie_parser(headers.get(b"cookie", b"").decode("latin-1"))
        given = bearer_key(auth) or cookie_key(cookies.get(KEY_COOKIE))
        return read_refusal(self.settings, given)

    async def _streamed(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:  # FastAPI re-raises HTTPException from body parsing: JSON 413
                raise BodyTooLarge()
            return message

        try:
            await self.app(scope, counted, send)
        except BodyTooLarge:  # raised where no handler maps it (nothing was sent yet)
            await self._too_large(scope, receive, send, True)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, upload: bool) -> None:
        message = too_large_message(self.settings.upload_max_mb if upload else None)
        await error_response(message, 413)(scope, receive, send)


def _declared_length(headers: dict[bytes, bytes]) -> int:
    try:
        return int(headers.get(b"content-length", b"-1"))
    except ValueError:
        return -1


def _has_body(headers: dict[bytes, bytes]) -> bool:
    return _declared_length(headers) > 0 or b"transfer-encoding" in headers


def _is_json(headers: dict[bytes, bytes]) -> bool:
    kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    return kind == b"application/json" or kind.endswith(b"+json")


async def _read_at_most(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes ``limit`` bytes (the rest is not read)."""
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(parts)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app ``body`` once, then waits on the real one
    (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
