"""kb: a bilingual (English/Chinese) knowledge base of AI-safety papers.

    from kb import Library, Settings

    lib = Library(Settings.from_env())
    print(lib.paper(1).title)

The public surface is ``__all__``: the ``Library`` facade, its ``Settings``, the error tree of
``kb.errors`` and the records a search or a listing returns (``kb.types``). ``import kb`` stays
cheap: ``Library`` (which pulls in numpy, FAISS and the parsers) is imported on first use.
"""

import typing

from kb.errors import (
    Cancelled,
    CollectionNotFound,
    ConfigError,
    Conflict,
    Forbidden,
    IndexMismatch,
    IngestError,
    InvalidInput,
    KBError,
    MemoryBudgetExceeded,
    ModelError,
    NotFound,
    PaperNotFound,
    StoreError,
    TooLarge,
    Unauthorized,
    UnsupportedMedia,
)
from kb.lazy import lazy_names as _lazy_names
from kb.settings import Settings
from kb.types import (
    Collection,
    CollectionItem,
    IngestSummary,
    Membership,
    Paper,
    SearchHit,
    SearchResponse,
    Snippet,
)

if typing.TYPE_CHECKING:
    from kb.library import Library

__all__ = [
    "Cancelled",
    "Collection",
    "CollectionItem",
    "CollectionNotFound",
    "ConfigError",
    "Conflict",
    "Forbidden",
    "IndexMismatch",
    "IngestError",
    "IngestSummary",
    "InvalidInput",
    "KBError",
    "Library",
    "MemoryBudgetExceeded",
    "Membership",
    "ModelError",
    "NotFound",
    "Paper",
    "PaperNotFound",
    "SearchHit",
    "SearchResponse",
    "Settings",
    "Snippet",
    "StoreError",
    "TooLarge",
    "Unauthorized",
    "UnsupportedMedia",
]

__getattr__ = _lazy_names(__name__, {"Library": "kb.library.facade"})
