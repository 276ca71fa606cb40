"""The storage layer: every SQLite and file read or write of kb.

``Store`` is the SQLite database (the source of truth, vectors included); ``kb.store.files``
holds the atomic file writes and the one file hasher.
"""

from kb.store.database import MIGRATIONS, Store
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

__all__ = [
    "MIGRATIONS",
    "Store",
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
