"""The application layer: the only place that joins the store, ingest and index.

``Library`` is a thin facade over the services in this package. It pulls in numpy, FAISS
and the parsers, so it is imported on first use (PEP 562): ``kb search`` asking a running
server needs only ``kb.library.query`` and starts in a fraction of the time.
"""

import typing

if typing.TYPE_CHECKING:
    from kb.library.facade import Library

__all__ = ["Library"]


def __getattr__(name: str) -> object:
    """``kb.library.Library`` imports the facade on first use."""
    if name == "Library":
        from kb.library.facade import Library

        globals()[name] = Library
        return Library
    raise AttributeError(f"module 'kb.library' has no attribute {name!r}")
