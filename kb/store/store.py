"""``Store``: the SQLite database of kb with one object per group of tables.

``store.papers`` (papers and tags), ``store.chunks`` (chunks and their vectors),
``store.works`` (files, pages, identifiers, edits, links, integrity), ``store.collections``,
``store.keywords`` (the FTS5 index) and ``store.jobs`` (the server's ingest jobs). Each table
object is given the ``Database`` (connection, transactions, lock) and nothing else.
"""

from __future__ import annotations

from pathlib import Path

from kb.store.chunks import Chunks
from kb.store.collections import Collections
from kb.store.database import Database
from kb.store.jobs import Jobs
from kb.store.keywords import Keywords
from kb.store.papers import Papers
from kb.store.works import Works

__all__ = ["Store"]


class Store(Database):
    """The SQLite database of papers, chunks, their vectors and store state."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.chunks = Chunks(self)
        self.papers = Papers(self, self.chunks)
        self.works = Works(self)
        self.collections = Collections(self, self.papers)
        self.keywords = Keywords(self)
        self.jobs = Jobs(self)
