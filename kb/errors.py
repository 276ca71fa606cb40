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
    ├── ModelError               503  the embedding model cannot be prepared or loaded
    └── Cancelled                503  work stopped because the server is shutting down
"""

from __future__ import annotations


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


class ModelError(KBError):
    status = 503


class Cancelled(KBError):
    status = 503
