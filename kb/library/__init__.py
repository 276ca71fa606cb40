"""The application layer: the only place that joins the store, ingest and index.

``Library`` is a thin facade over the services in this package.
"""

from kb.library.facade import Library

__all__ = ["Library"]
