"""Store I/O for keyword search: the SQLite FTS5 table of chunk tokens and BM25 queries.

``Store.keywords`` (a ``Keywords``) queries and fills it; a paper's rows are written and
deleted with the paper. The tokens come from ``index.keywords`` (jieba for Chinese, Snowball
stems for English). These writes leave the store's ``generation`` alone: it tracks vectors.

Every write of keyword rows also appends the chunk ids it touched to ``keyword_log``, in the
same transaction: the tantivy index of a large library (``index.terms``) catches up from the
log (``changed_since``) instead of being rebuilt, in whichever process searches next.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
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
            log_keyword_changes(db, [cid for cid, _ in rows])
            return max(cur.rowcount, 0)

    def log_seq(self) -> int:
        """The last seq the keyword log gave (0: none yet), trimmed entries included."""
        row = self._store.read_one("SELECT seq FROM sqlite_sequence WHERE name = 'keyword_log'")
        return 0 if row is None else int(row[0])

    def changed_since(self, seq: int, limit: int) -> tuple[int, list[int]] | None:
        """(the log's last seq, the distinct chunk ids logged after ``seq``), or None when more
        than ``limit`` entries follow it (rebuilding is then cheaper than catching up) or the
        entries after it were trimmed away."""
        last = self.log_seq()  # every entry up to it has committed: one writer at a time
        if last - seq > limit:
            return None
        first = self._store.read_one("SELECT MIN(seq) FROM keyword_log")
        if last > seq and (first is None or first[0] is None or int(first[0]) > seq + 1):
            return None  # seqs have no gaps but the trimmed ones
        rows = self._store.read(
            "SELECT DISTINCT chunk_id FROM keyword_log WHERE seq > ? AND seq <= ?", (seq, last)
        )
        return last, [int(r[0]) for r in rows]

    def trim_log(self, seq: int) -> None:
        """Drop the log's entries up to ``seq``: the keyword index on disk has applied them,
        and a process that opens it (or follows it) starts from there."""
        with self._store.transaction() as db:
            db.execute("DELETE FROM keyword_log WHERE seq <= ?", (seq,))

    def texts_of(self, ids: list[int]) -> dict[int, str]:
        """chunk id -> its stored keyword tokens, for the ids that have a keyword row."""
        rows = self._store.read_in(
            "SELECT rowid, tokens FROM chunk_fts WHERE rowid IN ({ids})", ids
        )
        return {int(i): str(t) for i, t in rows}

    def snapshot_texts(self, batch: int = 4096) -> tuple[int, Iterator[list[tuple[int, str]]]]:
        """(the log's last seq, every keyword row in batches of (chunk id, tokens)).

        The rows are read after the seq, so they are at least that new; a row changed in
        between is logged after it, and catching up applies it again (to the same effect).
        """

        def rows() -> Iterator[list[tuple[int, str]]]:
            after = -1
            while True:
                part = self._store.read(
                    "SELECT rowid, tokens FROM chunk_fts WHERE rowid > ? ORDER BY rowid LIMIT ?",
                    (after, batch),
                )
                if not part:
                    return
                yield [(int(i), str(t)) for i, t in part]
                after = int(part[-1][0])

        return self.log_seq(), rows()

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
            log_keyword_changes(db, ids)


def log_keyword_changes(db: sqlite3.Connection, chunk_ids: Iterable[int]) -> None:
    """Log that these chunks' keyword rows changed (inside the writing transaction)."""
    db.executemany("INSERT INTO keyword_log (chunk_id) VALUES (?)", [(i,) for i in chunk_ids])
