"""The storage layer: every SQLite and file read or write of kb.

``Store`` is the SQLite database (the source of truth, vectors included); it composes one
object per group of tables (``store.papers``, ``store.chunks``, ``store.works``,
``store.collections``, ``store.keywords``, ``store.jobs``), and owns the transactions and the
lock that serialises every statement. ``kb.store.files`` holds the atomic file writes and the
one file hasher.

The names are imported on first use (PEP 562): ``kb.store.filters`` alone is what a search
query needs, and ``kb search`` asking a running server should not load numpy and FAISS.
"""

import typing

from kb.lazy import lazy_names as _lazy_names

if typing.TYPE_CHECKING:
    from kb.store.chunks import Chunks
    from kb.store.collections import Collections
    from kb.store.database import MIGRATIONS
    from kb.store.files import (
        atomic_dir,
        atomic_path,
        read_arrays,
        read_faiss,
        read_json,
        sha256_file,
        write_arrays,
        write_faiss,
        write_json,
    )
    from kb.store.jobs import Jobs
    from kb.store.keywords import Keywords
    from kb.store.papers import Papers
    from kb.store.store import Store
    from kb.store.works import Works

__all__ = [
    "MIGRATIONS",
    "Chunks",
    "Collections",
    "Jobs",
    "Keywords",
    "Papers",
    "Store",
    "Works",
    "atomic_dir",
    "atomic_path",
    "read_arrays",
    "read_faiss",
    "read_json",
    "sha256_file",
    "write_arrays",
    "write_faiss",
    "write_json",
]

_WHERE = {
    "Chunks": "kb.store.chunks",
    "Collections": "kb.store.collections",
    "Jobs": "kb.store.jobs",
    "Keywords": "kb.store.keywords",
    "MIGRATIONS": "kb.store.database",
    "Papers": "kb.store.papers",
    "Store": "kb.store.store",
    "Works": "kb.store.works",
    "atomic_dir": "kb.store.files",
    "atomic_path": "kb.store.files",
    "read_arrays": "kb.store.files",
    "read_faiss": "kb.store.files",
    "read_json": "kb.store.files",
    "sha256_file": "kb.store.files",
    "write_arrays": "kb.store.files",
    "write_faiss": "kb.store.files",
    "write_json": "kb.store.files",
}

__getattr__ = _lazy_names(__name__, _WHERE)
