"""Store I/O for chunks and their vectors: the main encoder's in ``chunks.vector``, further
encoders' in ``chunk_vectors`` (one row per chunk and slot).

A vector is stored once, as little-endian float16 (``VECTOR_DTYPE``: 2 bytes a dimension,
1,792 bytes a chunk for both default encoders; docs/PERFORMANCE.md), and read back as float32.
Half precision moves a stored vector's cosine with a query by under 1e-4 (e5: median 8e-6);
the standard and full-text evaluations give the figures they gave with float32
(docs/EVALUATION.md). What an index holds is computed from these values (``as_stored``), so
an index rebuilt from the store is the one it replaces.

``Store.chunks`` (a ``Chunks``) reads them and replaces vectors; chunks are written with their
paper (``Store.papers.add``, through ``insert_chunks``). Every vector write bumps the store's
``generation``, which the FAISS index files record.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from kb.errors import StoreError
from kb.store.filters import PaperFilters
from kb.types import Chunk, ParsedDocument

if TYPE_CHECKING:
    from kb.store.database import Database

_CHUNK_COLS = "id, paper_id, ord, text, lang, page_start, page_end"
VECTOR_DTYPE = np.dtype("<f2")


def _half(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` in the store's precision; StoreError for values it cannot hold (a model's
    unit vectors never come near float16's limit of 65,504)."""
    with np.errstate(over="ignore"):  # an overflow becomes inf, refused below
        half = np.asarray(vectors, dtype=np.float32).astype(VECTOR_DTYPE)
    if not np.isfinite(half).all():
        raise StoreError("A vector has values that are not finite or too large to store.")
    return half


def vector_blobs(vectors: np.ndarray) -> list[bytes]:
    """Vectors (one a row) as the store keeps them, one blob each, converted at once."""
    return [row.tobytes() for row in _half(vectors)]


def as_stored(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` (float32) with the values the store gives back for them."""
    return _half(vectors).astype(np.float32)


def _decoded(raw: bytes, n: int, dim: int) -> np.ndarray:
    """``n`` stored vectors of ``dim`` values, joined, as a float32 [n, dim] array."""
    if len(raw) != n * dim * VECTOR_DTYPE.itemsize:
        raise StoreError(
            f"The stored vectors are not {dim}-dimensional float16 vectors ({len(raw)} bytes "
            f"for {n}): the store was changed outside kb; `kb doctor --repair` embeds them again."
        )
    return np.frombuffer(raw, dtype=VECTOR_DTYPE).astype(np.float32).reshape(n, dim)


class Chunks:
    """The chunks of a store and their vectors; ``store.chunks``."""

    def __init__(self, store: Database) -> None:
        self._store = store

    def by_ids(self, ids: list[int]) -> dict[int, Chunk]:
        rows = self._store.read_in(f"SELECT {_CHUNK_COLS} FROM chunks WHERE id IN ({{ids}})", ids)
        return {int(r[0]): Chunk(*r) for r in rows}  # columns in field order

    def ids_of(self, paper_id: int) -> list[int]:
        rows = self._store.read("SELECT id FROM chunks WHERE paper_id = ?", (paper_id,))
        return [int(r[0]) for r in rows]

    def ids_by_lang(self, filters: PaperFilters | None = None) -> dict[str, np.ndarray]:
        """Chunk ids of each chunk language, of the papers that pass the filters (their
        ``lang`` aside: a search's language filter applies to chunks, by the caller)."""
        narrowed = dataclasses.replace(filters or PaperFilters(), lang=None)
        where, args = narrowed.where()
        if where:
            sql = f"SELECT c.id, c.lang FROM chunks c JOIN papers ON papers.id = c.paper_id {where}"
        else:  # every chunk: read from the index on lang alone, never the table's vectors
            sql = "SELECT c.id, c.lang FROM chunks c"
        rows = self._store.read(sql, args)
        if not rows:
            return {}
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        names, which = np.unique(np.asarray([str(r[1]) for r in rows]), return_inverse=True)
        return {str(lang): np.sort(ids[which == i]) for i, lang in enumerate(names)}

    def map_rows(self) -> dict[str, np.ndarray]:
        """chunk language -> (chunk id, paper id) rows (an n x 2 array) of every chunk, read
        from the index ``chunks_lang_paper`` alone (``index.chunkmap.ChunkMap``)."""
        sql = "SELECT id, paper_id FROM chunks WHERE lang = ?"
        langs = self._store.distinct("chunks", "lang")
        return {lang: self._store.read_ints(sql, (lang,), 2) for lang in langs}

    def paper_ids(self) -> dict[int, int]:
        """chunk id -> paper id, for every chunk."""
        return {int(c): int(p) for c, p in self._store.read("SELECT id, paper_id FROM chunks")}

    def iter_texts(self, batch: int = 256) -> Iterator[list[tuple[int, str, str]]]:
        """(chunk id, paper title, chunk text) in batches, for re-embedding."""
        last = 0
        while True:
            rows = self._store.read(
                "SELECT c.id, p.title, c.text FROM chunks c JOIN papers p ON p.id = c.paper_id "
                "WHERE c.id > ? ORDER BY c.id LIMIT ?",
                (last, batch),
            )
            if not rows:
                return
            yield [(int(r[0]), str(r[1]), str(r[2])) for r in rows]
            last = int(rows[-1][0])

    def iter_vectors(
        self, dim: int, batch: int = 4096, *, slot: str | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, list[str]]]:
        """(chunk ids, float32 vectors, chunk languages) of every embedded chunk, in id order.

        Args:
            slot: which encoder's vectors; None for the main encoder's.
        """
        last = 0
        if slot is None:
            sql = (
                "SELECT id, vector, lang FROM chunks WHERE id > ? AND vector IS NOT NULL "
                "ORDER BY id LIMIT ?"
            )
        else:
            sql = (
                "SELECT c.id, v.vector, c.lang FROM chunk_vectors v JOIN chunks c "
                "ON c.id = v.chunk_id WHERE v.slot = ? AND c.id > ? ORDER BY c.id LIMIT ?"
            )
        while True:
            args = (last, batch) if slot is None else (slot, last, batch)
            rows = self._store.read(sql, args)
            if not rows:
                return
            ids = np.asarray([r[0] for r in rows], dtype=np.int64)
            vecs = _decoded(b"".join(r[1] for r in rows), len(rows), dim)
            yield ids, vecs, [str(r[2]) for r in rows]
            last = int(ids[-1])

    def as_stored(self, vectors: np.ndarray) -> np.ndarray:
        """``vectors`` with the values the store keeps for them (float16, read as float32)."""
        return as_stored(vectors)

    def vector_ids(self, *, slot: str | None = None) -> np.ndarray:
        """The ids of every embedded chunk (``slot``: that encoder's vectors), in id order."""
        # both read an index only, never the vectors: the partial index chunks_with_vector,
        # and chunk_vectors' primary key (a vector's chunk exists: ON DELETE CASCADE)
        # as plain tuples, not Rows: 0.4 s instead of 0.8 s a million chunks, at every start
        if slot is None:
            sql = "SELECT id FROM chunks WHERE vector IS NOT NULL ORDER BY id"
            ids = self._store.read_ints(sql)
        else:
            ids = self._store.read_ints(
                "SELECT chunk_id FROM chunk_vectors WHERE slot = ? ORDER BY chunk_id", (slot,)
            )
        return ids.ravel()

    def count(self) -> int:
        """How many chunks the store holds (read from an index, not the table)."""
        return int(self._store.read("SELECT COUNT(*) FROM chunks")[0][0])

    def any(self) -> bool:
        """Whether the store holds a chunk at all (one row read, whatever the size)."""
        return self._store.read_one("SELECT 1 FROM chunks LIMIT 1") is not None

    def lang_counts(self, *, slot: str | None = None) -> dict[str, int]:
        """Embedded chunks per chunk language (``slot``: that encoder's vectors)."""
        if slot is None:
            rows = self._store.read(
                "SELECT lang, COUNT(*) FROM chunks WHERE vector IS NOT NULL GROUP BY lang"
            )
        else:
            rows = self._store.read(
                "SELECT c.lang, COUNT(*) FROM chunk_vectors v JOIN chunks c ON c.id = v.chunk_id "
                "WHERE v.slot = ? GROUP BY c.lang",
                (slot,),
            )
        return {str(lang): int(n) for lang, n in rows}

    def count_vectors(self, *, slot: str | None = None) -> int:
        """How many chunks have a vector (``slot``: that encoder's)."""
        if slot is None:
            row = self._store.read_one("SELECT COUNT(*) FROM chunks WHERE vector IS NOT NULL")
        else:
            row = self._store.read_one(
                "SELECT COUNT(*) FROM chunk_vectors v JOIN chunks c ON c.id = v.chunk_id "
                "WHERE v.slot = ?",
                (slot,),
            )
        return 0 if row is None else int(row[0])

    def set_vectors(self, ids: list[int], vectors: np.ndarray, *, slot: str | None = None) -> None:
        """Replace (or, for a further encoder, add) the vectors of the given chunks."""
        with self._store.transaction() as db:
            if slot is None:
                rows = zip(vector_blobs(vectors), ids, strict=True)
                db.executemany("UPDATE chunks SET vector = ? WHERE id = ?", list(rows))
            else:
                put_vectors(db, slot, ids, vectors)
            self._store.bump_generation(db)

    def wrong_size(self, dim: int, *, slot: str | None = None) -> list[int]:
        """Chunks whose stored vector (``slot``: that encoder's) is not ``dim`` float16
        values: written outside kb, they cannot be read (``kb doctor`` finds them)."""
        size = dim * VECTOR_DTYPE.itemsize
        if slot is None:
            sql = "SELECT id FROM chunks WHERE vector IS NOT NULL AND length(vector) != ?"
            rows = self._store.read(sql, (size,))
        else:
            sql = "SELECT chunk_id FROM chunk_vectors WHERE slot = ? AND length(vector) != ?"
            rows = self._store.read(sql, (slot, size))
        return [int(r[0]) for r in rows]

    def drop_vectors(self, ids: list[int], *, slot: str | None = None) -> None:
        """Forget these chunks' vectors (``slot``: that encoder's), to embed them again."""
        if not ids:
            return
        with self._store.transaction() as db:
            if slot is None:
                db.executemany("UPDATE chunks SET vector = NULL WHERE id = ?", [(i,) for i in ids])
            else:
                db.executemany(
                    "DELETE FROM chunk_vectors WHERE slot = ? AND chunk_id = ?",
                    [(slot, i) for i in ids],
                )
            self._store.bump_generation(db)

    def without_vectors(self, slot: str, limit: int) -> list[tuple[int, str, str, str]]:
        """(chunk id, paper title, text, lang) of chunks with no vector in ``slot`` yet."""
        rows = self._store.read(
            "SELECT c.id, p.title, c.text, c.lang FROM chunks c JOIN papers p ON p.id = c.paper_id "
            "WHERE NOT EXISTS (SELECT 1 FROM chunk_vectors v WHERE v.chunk_id = c.id "
            "AND v.slot = ?) ORDER BY c.id LIMIT ?",
            (slot, limit),
        )
        return [(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]

    def vectors_of(self, chunk_ids: list[int], dim: int, slot: str | None = None) -> np.ndarray:
        """The stored vectors of these chunks, in this order ([n, dim] float32); every one
        must have a vector."""
        found, vecs, _ = self.vectors_with_langs(chunk_ids, dim, slot=slot)
        if len(found) < len(chunk_ids):
            have = set(found)
            lacking = [i for i in chunk_ids if i not in have]
            raise StoreError(
                f"Chunks {lacking[:5]} have no {slot or 'main'} vector; run `kb doctor --repair`."
            )
        return vecs

    def vectors_with_langs(
        self, chunk_ids: list[int], dim: int, *, slot: str | None = None, lang: str | None = None
    ) -> tuple[list[int], np.ndarray, list[str]]:
        """(ids found, their stored vectors [n, dim] float32, their languages) of these
        chunks, in the given order; ids without a vector (or gone) are left out.

        Args:
            lang: every chunk's language, when the caller knows it: a further encoder's
                vectors are then read without joining ``chunks`` for it (at a million chunks
                that join took half the time of a search's vector reads).
        """
        if slot is None:
            sql, args = "SELECT id, vector, lang FROM chunks WHERE id IN ({ids})", []
        elif lang is not None:
            sql = (
                "SELECT chunk_id, vector, ? FROM chunk_vectors "
                "WHERE slot = ? AND chunk_id IN ({ids})"
            )
            args = [lang, slot]
        else:
            sql = (
                "SELECT v.chunk_id, v.vector, c.lang FROM chunk_vectors v JOIN chunks c "
                "ON c.id = v.chunk_id WHERE v.slot = ? AND v.chunk_id IN ({ids})"
            )
            args = [slot]
        rows = self._store.read_in(sql, chunk_ids, args)
        found = {int(i): (v, str(lg)) for i, v, lg in rows if v is not None}
        ids = [i for i in chunk_ids if i in found]
        raw = b"".join(found[i][0] for i in ids)
        return ids, _decoded(raw, len(ids), dim), [found[i][1] for i in ids]


def insert_chunks(
    db: sqlite3.Connection, paper_id: int, doc: ParsedDocument, vectors: np.ndarray
) -> list[int]:
    """Insert a paper's chunks with their main vectors (inside the caller's transaction)."""
    ids = []
    for chunk, blob in zip(doc.chunks, vector_blobs(vectors), strict=True):
        cur = db.execute(
            "INSERT INTO chunks (paper_id, ord, text, lang, page_start, page_end, vector) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (paper_id, chunk.ord, chunk.text, chunk.lang, chunk.page_start,
             chunk.page_end, blob),
        )  # fmt: skip
        ids.append(int(cur.lastrowid or 0))
    return ids


def put_vectors(db: sqlite3.Connection, slot: str, ids: list[int], vectors: np.ndarray) -> None:
    """Insert or replace a further encoder's vectors (inside the caller's transaction)."""
    rows = [(i, slot, blob) for i, blob in zip(ids, vector_blobs(vectors), strict=True)]
    db.executemany(
        "INSERT OR REPLACE INTO chunk_vectors (chunk_id, slot, vector) VALUES (?, ?, ?)", rows
    )
