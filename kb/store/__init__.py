"""The storage layer: every SQLite and file read or write of kb.

``Store`` is the SQLite database (the source of truth, vectors included); it composes one
object per group of tables (``store.papers``, ``store.chunks``, ``store.works``,
``store.collections``, ``store.keywords``, ``store.jobs``), and owns the transactions and the
lock that serialises every statement. ``kb.store.files`` holds the atomic file writes and the
one file hasher.
"""

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
