"""The one exception tree of kb.

Every error a user can cause or meet derives from :class:`KBError` and carries the HTTP
status the API answers with. The CLI turns any ``KBError`` into one line on stderr.

    KBError                      500
    ├── ConfigError              400  a setting or flag has a bad value
    ├── InvalidInput             400  a bad query, parameter or record
    ├── Unauthorized             401  no API key, or a wrong one
    ├── Forbidden                403  not allowed (a read-only kb, a folder outside the roots)
    ├── NotFound                 404
    │   ├── PaperNotFound        404
    │   └── CollectionNotFound   404
    ├── Conflict                 409  a name already taken
    ├── TooLarge                 413  an upload over the size limit
    ├── UnsupportedMedia         415  an upload that is not a PDF
    ├── IngestError              422  one input file could not be ingested
    ├── IndexMismatch            409  the index was built by another model
    ├── StoreError               500  the store on disk is damaged or unwritable
    ├── DiskFull                 507  no space left for the store or a file (nothing half-done)
    ├── ModelError               503  the embedding model cannot be prepared or loaded
    ├── RayUnavailable           503  Ray is not installed, or its cluster cannot be joined
    ├── Busy                     503  the ingest queue is full: try again (Retry-After)
    └── Cancelled                503  work stopped because the server is shutting down
"""

from __future__ import annotations

import errno
import sqlite3


class KBError(Exception):
    """Base class of all kb errors; ``str(err)`` is the user-facing message."""

    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(KBError):
    status = 400


class InvalidInput(KBError):
    status = 400


class Unauthorized(KBError):
    status = 401


class Forbidden(KBError):
    status = 403


class NotFound(KBError):
    status = 404


class Conflict(KBError):
    status = 409


class TooLarge(KBError):
    status = 413


class UnsupportedMedia(KBError):
    status = 415


class PaperNotFound(NotFound):
    status = 404


class CollectionNotFound(NotFound):
    status = 404


class IngestError(KBError):
    status = 422


class IndexMismatch(KBError):
    status = 409


class StoreError(KBError):
    status = 500


class DiskFull(KBError):
    status = 507


class ModelError(KBError):
    status = 503


class RayUnavailable(KBError):
    """``--ray``: Ray is not installed, or the cluster at the address cannot be joined."""

    status = 503


class MemoryBudgetExceeded(KBError):
    """A library would outgrow ``KB_MEMORY_MB``."""

    status = 507


class Busy(KBError):
    """Too much work is waiting; ``retry_after``: seconds after which to try again."""

    status = 503

    def __init__(self, message: str, retry_after: int = 30) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Cancelled(KBError):
    status = 503


_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_DAMAGED = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


def translate(exc: BaseException) -> KBError | None:
    """The ``KBError`` an operating-system or SQLite error stands for, else None.

    The edges (the API's handlers, the CLI's ``handle_errors``) call this in their one place
    for errors, so a full disk is a ``DiskFull`` (HTTP 507) and a damaged store a
    ``StoreError`` however deep they were raised. A write that failed this way was rolled
    back (store transactions, atomic file writes), which the messages say.
    """
    if isinstance(exc, KBError):
        return exc
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        where = f" writing {exc.filename}" if exc.filename else ""
        return DiskFull(
            f"The disk is full{where}: nothing was half-written. Free some space (or raise the "
            "quota), then run it again; what was stored before stays."
        )
    if isinstance(exc, sqlite3.Error):
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF  # the primary result code
        text = str(exc)
        if code == sqlite3.SQLITE_FULL or "disk is full" in text:
            return DiskFull(
                "The disk is full: the store's last change was rolled back. Free some space "
                "(or raise the quota), then run it again; what was stored before stays."
            )
        if code in _SQLITE_DAMAGED or "malformed" in text or "not a database" in text:
            return StoreError(
                f"The store's database is damaged ({text}). Run `kb doctor`: it names the "
                "damaged file and how to rebuild it."
            )
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in text:
            return StoreError(
                f"The store is busy ({text}): another kb process holds it. Try again shortly."
            )
        return StoreError(f"The store refused the change ({text}); it was rolled back.")
    if isinstance(exc, MemoryError):
        return KBError("Out of memory: the work stopped and was rolled back. Try a smaller input.")
    return None
