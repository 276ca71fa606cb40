"""Store I/O for keyword search: the SQLite FTS5 table of chunk tokens and BM25 queries.

``Store.keywords`` (a ``Keywords``) queries and fills it; a paper's rows are written and
deleted with the paper. The tokens come from ``index.keywords`` (jieba for Chinese, Snowball
stems for English). These writes leave the store's ``generation`` alone: it tracks vectors.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from kb.errors import InvalidInput, StoreError

if TYPE_CHECKING:
    from kb.store.database import Database


class Keywords:
    """The keyword (FTS5) index of the store's chunks; ``store.keywords``."""

    def __init__(self, store: Database) -> None:
        self._store = store

    def search(
        self, match: str, *, limit: int, chunk_ids_lang: str | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, score) of the chunks matching an FTS5 expression, best first.

        Args:
            match: an FTS5 MATCH expression, as ``index.keywords.fts_query`` builds it.
            chunk_ids_lang: keep only chunks in this language; None keeps all.
        """
        join, where, args = "", "", [match]
        if chunk_ids_lang:
            join, where = "JOIN chunks c ON c.id = chunk_fts.rowid", "AND c.lang = ?"
            args.append(chunk_ids_lang)
        sql = (
            f"SELECT chunk_fts.rowid, -bm25(chunk_fts) FROM chunk_fts {join} "
            f"WHERE chunk_fts MATCH ? {where} ORDER BY bm25(chunk_fts) LIMIT ?"
        )
        try:
            rows = self._store.read(sql, [*args, max(limit, 0)])
        except sqlite3.OperationalError as e:
            if e.sqlite_errorcode != sqlite3.SQLITE_ERROR:  # busy, I/O, corrupt: not the query
                raise StoreError(f"Keyword search failed in {self._store.path}: {e}.") from e
            raise InvalidInput(
                f"The keyword query {match!r} is not valid FTS5 syntax ({e}). "
                "Quote each term, as index.keywords.fts_query does."
            ) from e
        return [(int(cid), float(score)) for cid, score in rows]

    def set_texts(self, rows: list[tuple[int, str]]) -> int:
        """Insert or replace the keyword tokens of existing chunks in one transaction.

        Ids of chunks that no longer exist are skipped; returns how many rows were written.
        """
        with self._store.transaction() as db:
            cur = db.executemany(
                "INSERT OR REPLACE INTO chunk_fts (rowid, tokens) "
                "SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM chunks WHERE id = ?1)",
                rows,
            )
            return max(cur.rowcount, 0)

    def count(self) -> int:
        """How many keyword rows there are, from FTS5's own table of row sizes (one row per
        document, a few bytes each; counting ``chunk_fts`` itself reads every row's tokens:
        12 s at a million chunks with a cold disk cache)."""
        return int(self._store.read("SELECT COUNT(*) FROM chunk_fts_docsize")[0][0])

    def missing_chunk_ids(self, batch: int = 256, *, after: int = 0) -> list[tuple[int, str]]:
        """(chunk id, chunk text) of up to ``batch`` chunks with no keyword row, ids > ``after``.

        Backfill loops until this is empty, passing the last id seen as ``after``, then
        clears the ``fts_pending`` state set by the migration.
        """
        rows = self._store.read(
            "SELECT c.id, c.text FROM chunks c WHERE c.id > ? AND NOT EXISTS "
            "(SELECT 1 FROM chunk_fts f WHERE f.rowid = c.id) ORDER BY c.id LIMIT ?",
            (after, batch),
        )
        return [(int(r[0]), str(r[1])) for r in rows]

    def delete_rows(self, ids: list[int]) -> None:
        """Delete the keyword rows of these chunk ids (orphans that ``kb doctor`` found)."""
        with self._store.transaction() as db:
            db.executemany("DELETE FROM chunk_fts WHERE rowid = ?", [(i,) for i in ids])


def delete_fts(db: sqlite3.Connection, chunk_where: str, arg: object) -> None:
    """Delete the keyword rows of the chunks matching ``chunk_where`` (FTS5 has no cascade)."""
    sql = f"DELETE FROM chunk_fts WHERE rowid IN (SELECT id FROM chunks WHERE {chunk_where})"
    db.execute(sql, (arg,))
