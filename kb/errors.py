"""The one exception tree of kb.

Every error a user can cause or meet derives from :class:`KBError` and carries the HTTP
status the API answers with. The CLI turns any ``KBError`` into one line on stderr.

    KBError                      500
    ├── ConfigError              400  a setting or flag has a bad value
    ├── InvalidInput             400  a bad query, parameter or record
    ├── NotFound                 404
    │   └── PaperNotFound        404
    ├── IngestError              422  one input file could not be ingested
    ├── IndexMismatch            409  the index was built by another model
    ├── StoreError               500  the store on disk is damaged or unwritable
    └── ModelError               503  the embedding model cannot be prepared or loaded
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


class NotFound(KBError):
    status = 404


class PaperNotFound(NotFound):
    status = 404


class IngestError(KBError):
    status = 422


class IndexMismatch(KBError):
    status = 409


class StoreError(KBError):
    status = 500


class ModelError(KBError):
    status = 503
