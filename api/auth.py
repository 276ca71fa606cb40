"""Access to the HTTP API: reads are open or keyed (KB_READ_ACCESS); every write needs a key.

Keys come from ``Settings.api_keys`` and are compared in constant time (``hmac``); a key is
never logged, echoed in an error, or stored anywhere but the settings.
"""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import SettingsDep
from kb.errors import Forbidden, KBError, Unauthorized
from kb.settings import Settings

READ_ONLY_MESSAGE = (
    "This library is served read-only (KB_READ_ONLY=1): it is a read replica. Send writes to "
    "the kb that ingests, then copy or export the library to the replicas again."
)
KEY_COOKIE = "kb_key"  # set by the web page's key form; accepted for reads only (no CSRF risk)

_bearer = HTTPBearer(auto_error=False, description="An API key from KB_API_KEYS.")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def key_matches(given: str, settings: Settings) -> bool:
    """True when ``given`` is one of the configured keys; constant time in the key's content."""
    found = False
    for key in settings.keys:  # every key is compared, so timing does not tell which matched
        found |= hmac.compare_digest(given.encode("utf-8"), key.encode("utf-8"))
    return found


def write_refusal(settings: Settings, key: str | None) -> KBError | None:
    """Why a write with this Bearer ``key`` (None: no header) is refused, or None if allowed."""
    if settings.read_only:  # a read replica: no key opens it
        return Forbidden(READ_ONLY_MESSAGE)
    if not settings.keys:
        return Forbidden("This kb is read-only: the server has no API keys (set KB_API_KEYS).")
    if key is None:
        return Unauthorized("Writing needs an API key: send 'Authorization: Bearer KEY'.")
    if not key_matches(key, settings):
        return Unauthorized("The API key is not valid.")
    return None


def read_refusal(settings: Settings, key: str | None) -> KBError | None:
    """Why a read with this key (header or cookie; None: none) is refused, or None if allowed."""
    if settings.read_access == "open":
        return None
    if not key:
        return Unauthorized("Reading this kb needs an API key: send 'Authorization: Bearer KEY'.")
    if not key_matches(key, settings):
        return Unauthorized("The API key is not valid.")
    return None


def cookie_key(value: str | None) -> str | None:
    """The key held by the web page's cookie.

    The page stores it URL-encoded (``encodeURIComponent``: a base64 key's ``+ / =`` become
    ``%2B %2F %3D``, and a ``%`` ``%25``), so decoding gives back exactly the key typed.
    """
    return unquote(value) if value else None


def bearer_key(header: str | None) -> str | None:
    """The key of an ``Authorization: Bearer KEY`` header value, else None."""
    scheme, _, key = (header or "").partition(" ")
    return key.strip() or None if scheme.lower() == "bearer" else None


def require_write(settings: SettingsDep, credentials: BearerDep) -> None:
    """Dependency of every route that changes the library."""
    refusal = write_refusal(settings, None if credentials is None else credentials.credentials)
    if refusal is not None:
        raise refusal


def require_read(request: Request, settings: SettingsDep, credentials: BearerDep) -> None:
    """Dependency of every route that reads: open, or a key (header or cookie) when keyed."""
    if credentials is not None:
        given: str | None = credentials.credentials
    else:
        given = cookie_key(request.cookies.get(KEY_COOKIE))
    refusal = read_refusal(settings, given)
    if refusal is not None:
        raise refusal


WriteAccess = Depends(require_write)
ReadAccess = Depends(require_read)
