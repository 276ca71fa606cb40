"""The application layer: the only place that joins the store, ingest and index.

``Library`` is a thin facade over the services in this package. It pulls in numpy, FAISS
and the parsers, so it is imported on first use (PEP 562): ``kb search`` asking a running
server needs only ``kb.library.query`` and starts in a fraction of the time.
"""

import typing

from kb.lazy import lazy_names as _lazy_names

if typing.TYPE_CHECKING:
    from kb.library.facade import Library

__all__ = ["Library"]

__getattr__ = _lazy_names(__name__, {"Library": "kb.library.facade"})
