"""Store I/O for keyword search: the SQLite FTS5 table of chunk tokens and BM25 queries.

Part of the storage layer (``kb.store.Store`` inherits it); split out to keep modules small.
The tokens come from ``index.keywords`` (jieba for Chinese, Snowball stems for English).
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from kb.errors import InvalidInput, StoreError


class KeywordStore:
    """Mixin of ``kb.store.Store``: needs ``self.db``, ``self.path`` and ``transaction()``."""

    db: sqlite3.Connection
    path: Path

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def keyword_search(
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
            rows = self.db.execute(sql, [*args, max(limit, 0)]).fetchall()
        except sqlite3.OperationalError as e:
            if e.sqlite_errorcode != sqlite3.SQLITE_ERROR:  # busy, I/O, corrupt: not the query
                raise StoreError(f"Keyword search failed in {self.path}: {e}.") from e
            raise InvalidInput(
                f"The keyword query {match!r} is not valid FTS5 syntax ({e}). "
                "Quote each term, as index.keywords.fts_query does."
            ) from e
        return [(int(cid), float(score)) for cid, score in rows]

    def set_keyword_texts(self, rows: list[tuple[int, str]]) -> int:
        """Insert or replace the keyword tokens of existing chunks in one transaction.

        Ids of chunks that no longer exist are skipped; returns how many rows were written.
        """
        with self.transaction() as db:
            cur = db.executemany(
                "INSERT OR REPLACE INTO chunk_fts (rowid, tokens) "
                "SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM chunks WHERE id = ?1)",
                rows,
            )
            return max(cur.rowcount, 0)

    def fts_missing_chunk_ids(self, batch: int = 256, *, after: int = 0) -> list[tuple[int, str]]:
        """(chunk id, chunk text) of up to ``batch`` chunks with no keyword row, ids > ``after``.

        Backfill loops until this is empty, passing the last id seen as ``after``, then
        clears the ``fts_pending`` state set by the migration.
        """
        rows = self.db.execute(
            "SELECT c.id, c.text FROM chunks c WHERE c.id > ? AND NOT EXISTS "
            "(SELECT 1 FROM chunk_fts f WHERE f.rowid = c.id) ORDER BY c.id LIMIT ?",
            (after, batch),
        ).fetchall()
        return [(int(r[0]), str(r[1])) for r in rows]
