"""All filesystem and SQLite I/O of kb.

File writes are atomic (temp file in the same folder, then ``os.replace``), database writes are
transactional, and schema changes go through the numbered ``MIGRATIONS``. SQLite is the source
of truth, vectors included; the FAISS index file is a persisted copy that carries the
``generation`` of the database it mirrors, so a crash between the two is detected and repaired
by rebuilding the index from SQLite. The FTS5 table ``chunk_fts`` (rowid = chunk id) holds
each chunk's keyword tokens, as ``index.keywords`` analyzed them; its writes never bump the
``generation``, which tracks vectors only.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from kb.errors import InvalidInput, PaperNotFound, StoreError
from kb.store.collections import CollectionsStore
from kb.store.filters import PAPER_ORDER, PaperFilters
from kb.store.jobs import JobsStore
from kb.store.keywords import KeywordStore
from kb.store.migrations import MIGRATIONS
from kb.store.works import WorksStore, apply_edits
from kb.types import Chunk, Paper, ParsedDocument

__all__ = ["MIGRATIONS", "Store"]

_PAPER_COLS = (
    "id, key, kind, source, content_hash, title, authors, year, lang, doi, arxiv_id, "
    "abstract, url, n_pages, added_at, "
    "(SELECT COUNT(*) FROM chunks c WHERE c.paper_id = papers.id) AS n_chunks, "
    "(SELECT json_group_array(tag) FROM (SELECT tag FROM paper_tags t "
    "WHERE t.paper_id = papers.id ORDER BY tag)) AS tags, "
    "(SELECT json_group_array(path) FROM (SELECT path FROM paper_files f "
    "WHERE f.paper_id = papers.id ORDER BY rowid)) AS files, "
    "(SELECT fields FROM paper_edits e WHERE e.paper_id = papers.id) AS edited, "
    "(SELECT json_group_array(page) FROM (SELECT page FROM paper_pages g "
    "WHERE g.paper_id = papers.id AND g.needs_ocr ORDER BY page)) AS needs_ocr, "
    "(SELECT json_group_array(other) FROM (SELECT b AS other FROM paper_links l "
    "WHERE l.a = papers.id AND l.kind = 'translation' UNION SELECT a FROM paper_links l "
    "WHERE l.b = papers.id AND l.kind = 'translation' ORDER BY other)) AS translations"
)
_CHUNK_COLS = "id, paper_id, ord, text, lang, page_start, page_end"


class Store(WorksStore, CollectionsStore, KeywordStore, JobsStore):
    """The SQLite database of papers, chunks, their vectors and store state."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mirrored: int | None = None  # see mark_mirrored
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA busy_timeout = 10000")
            self._migrate()
        except (sqlite3.Error, OSError) as e:
            raise StoreError(
                f"Cannot open the store at {path}: {e}. Check the folder is writable (KB_DATA_DIR)."
            ) from e

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it commits, or none of it."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"The store {self.path} has schema version {version}, newer than this kb "
                f"({len(MIGRATIONS)}). Upgrade kb."
            )
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction() as db:
                migration(db)
                db.execute(f"PRAGMA user_version = {number}")

    # -- state

    def generation(self) -> int:
        """A counter bumped by every change to chunks; the FAISS file records the one it saw."""
        row = self.db.execute("SELECT value FROM state WHERE name = 'generation'").fetchone()
        return int(row[0])

    def _bump(self, db: sqlite3.Connection) -> None:
        before = int(db.execute("SELECT value FROM state WHERE name = 'generation'").fetchone()[0])
        db.execute("UPDATE state SET value = CAST(value AS INTEGER) + 1 WHERE name = 'generation'")
        if self._mirrored == before:  # nobody else wrote since: this process still sees it all
            self._mirrored = before + 1

    # Several processes may share a store (`kb serve` and a `kb ingest`); each keeps its FAISS
    # indexes in memory. The generation this process's indexes mirror is followed through its
    # own writes; a write by another process leaves it behind, so the indexes are reloaded
    # (``changed_elsewhere``) and never saved as if they mirrored the other process's chunks.

    def mark_mirrored(self, generation: int) -> None:
        """This process's indexes now mirror the store at ``generation``."""
        self._mirrored = generation

    def mirrored_generation(self) -> int:
        """The generation this process's indexes mirror (-1: unknown)."""
        return -1 if self._mirrored is None else self._mirrored

    def changed_elsewhere(self) -> bool:
        """True when another process changed the chunks since this one's indexes were loaded."""
        return self._mirrored is not None and self.generation() != self._mirrored

    def get_state(self, name: str) -> str | None:
        row = self.db.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def clear_state(self, name: str) -> None:
        self.db.execute("DELETE FROM state WHERE name = ?", (name,))

    def set_state(self, name: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO state (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    # -- papers

    def add_paper(
        self,
        doc: ParsedDocument,
        vectors: np.ndarray,
        keyword_texts: list[str] | None = None,
        extra_vectors: dict[str, np.ndarray] | None = None,
        *,
        replace_id: int | None = None,
        file_path: str | None = None,
        signature: np.ndarray | None = None,
        work_ids: tuple[str, ...] = (),
    ) -> tuple[int, list[int]]:
        """Write a paper, its chunks and their vectors in one transaction.

        A paper with the same key, or ``replace_id``, is replaced in place: it keeps its id,
        tags, files and the user's edits (re-applied over the new metadata).

        Args:
            keyword_texts: each chunk's analyzed tokens for the keyword index, in chunk order.
            extra_vectors: further encoders' vectors by slot name, in chunk order.
            file_path: the PDF file it was read from (absolute), recorded among its files.
            signature: the MinHash signature of its text (near-duplicate detection).
            work_ids: identifiers of the work ("doi:...", "arxiv:...").
        """
        if len(vectors) != len(doc.chunks):
            raise StoreError(f"{len(doc.chunks)} chunks but {len(vectors)} vectors for {doc.key}.")
        if keyword_texts is not None and len(keyword_texts) != len(doc.chunks):
            raise StoreError(
                f"{len(doc.chunks)} chunks but {len(keyword_texts)} keyword texts for {doc.key}."
            )
        with self.transaction() as db:
            paper_id = self._write_paper(db, doc, replace_id, signature)
            ids = _insert_chunks(db, paper_id, doc, vectors)
            if keyword_texts is not None:
                rows = zip(ids, keyword_texts, strict=True)
                db.executemany("INSERT INTO chunk_fts (rowid, tokens) VALUES (?, ?)", rows)
            for slot, vecs in (extra_vectors or {}).items():
                _put_vectors(db, slot, ids, vecs)
            self._write_extras(db, paper_id, doc, file_path, work_ids)
            self._bump(db)
        return paper_id, ids

    def _write_paper(
        self,
        db: sqlite3.Connection,
        doc: ParsedDocument,
        replace_id: int | None,
        signature: np.ndarray | None,
    ) -> int:
        """Insert the paper row, or overwrite the old one in place; its old chunks go."""
        m = doc.meta
        now = datetime.now(UTC).isoformat(timespec="seconds")
        row = db.execute("SELECT id FROM papers WHERE key = ?", (doc.key,)).fetchone()
        old_id = replace_id if replace_id is not None else (row[0] if row else None)
        if row is not None and old_id is not None and row[0] != old_id:
            db.execute("DELETE FROM papers WHERE id = ?", (row[0],))  # same content, other entry
        sig = None if signature is None else np.asarray(signature, np.uint64).tobytes()
        values = (doc.key, doc.kind, doc.source, doc.content_hash, m.title,
                  json.dumps(m.authors, ensure_ascii=False), m.year, m.lang, m.doi, m.arxiv_id,
                  m.abstract, m.url, m.n_pages, sig,
                  json.dumps(doc.cited_arxiv_ids))  # fmt: skip
        cols = (
            "key, kind, source, content_hash, title, authors, year, lang, doi, arxiv_id, "
            "abstract, url, n_pages, signature, cited"
        )
        if old_id is None:
            cur = db.execute(
                f"INSERT INTO papers ({cols}, added_at) VALUES ({'?, ' * 15}?)", (*values, now)
            )
            return int(cur.lastrowid or 0)
        _delete_fts(db, "paper_id = ?", old_id)
        db.execute("DELETE FROM chunks WHERE paper_id = ?", (old_id,))
        db.execute("DELETE FROM paper_pages WHERE paper_id = ?", (old_id,))
        db.execute("DELETE FROM paper_work_ids WHERE paper_id = ?", (old_id,))
        sets = ", ".join(f"{c.strip()} = ?" for c in cols.split(","))
        if db.execute(f"UPDATE papers SET {sets} WHERE id = ?", (*values, old_id)).rowcount == 0:
            raise PaperNotFound(f"No paper with id {old_id} to replace.")
        apply_edits(db, old_id)
        return int(old_id)

    def tag(self, paper_id: int, tags: list[str], *, remove: bool = False) -> None:
        """Add (or remove) tags on a paper."""
        self.paper(paper_id)  # PaperNotFound if there is none
        with self.transaction() as db:
            if remove:
                db.executemany(
                    "DELETE FROM paper_tags WHERE paper_id = ? AND tag = ?",
                    [(paper_id, t) for t in tags],
                )
            else:
                db.executemany(
                    "INSERT OR IGNORE INTO paper_tags (paper_id, tag) VALUES (?, ?)",
                    [(paper_id, t) for t in tags],
                )

    def remove_paper(self, paper_id: int) -> list[int]:
        """Delete a paper and its chunks; return the removed chunk ids."""
        with self.transaction() as db:
            ids = self.chunk_ids_of(paper_id)
            _delete_fts(db, "paper_id = ?", paper_id)
            db.execute("DELETE FROM collection_papers WHERE paper_id = ?", (paper_id,))
            if db.execute("DELETE FROM papers WHERE id = ?", (paper_id,)).rowcount == 0:
                raise PaperNotFound(f"No paper with id {paper_id}. `kb list` shows the ids.")
            self._bump(db)
        return ids

    def paper(self, paper_id: int) -> Paper:
        row = self.db.execute(f"SELECT {_PAPER_COLS} FROM papers WHERE id = ?", (paper_id,))
        found = row.fetchone()
        if found is None:
            raise PaperNotFound(f"No paper with id {paper_id}. `kb list` shows the ids.")
        return _paper(found)

    def paper_by_key(self, key: str) -> Paper | None:
        row = self.db.execute(f"SELECT {_PAPER_COLS} FROM papers WHERE key = ?", (key,)).fetchone()
        return None if row is None else _paper(row)

    def paper_by_hash(self, content_hash: str) -> Paper | None:
        row = self.db.execute(
            f"SELECT {_PAPER_COLS} FROM papers WHERE content_hash = ? LIMIT 1", (content_hash,)
        ).fetchone()
        return None if row is None else _paper(row)

    def papers(
        self,
        *,
        limit: int = 50,
        offset: int = 0,
        sort: str = "id",
        filters: PaperFilters = PaperFilters(),  # noqa: B008 - frozen, so safe as a default
    ) -> list[Paper]:
        """Papers that pass ``filters``, in ``sort`` order.

        Args:
            sort: ``id`` (oldest first), ``added`` (newest first), ``year`` (newest first,
                undated last) or ``title`` (A to Z, case-insensitive).
        """
        where, args = filters.where()
        order = PAPER_ORDER.get(sort)
        if order is None:
            raise InvalidInput(f"sort must be one of {', '.join(PAPER_ORDER)}, not {sort!r}.")
        rows = self.db.execute(
            f"SELECT {_PAPER_COLS} FROM papers {where} ORDER BY {order} LIMIT ? OFFSET ?",
            [*args, limit, offset],
        )
        return [_paper(r) for r in rows]

    def papers_by_ids(self, ids: list[int]) -> dict[int, Paper]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(f"SELECT {_PAPER_COLS} FROM papers WHERE id IN ({marks})", ids)
        return {int(r["id"]): _paper(r) for r in rows}

    def count_papers(self, filters: PaperFilters = PaperFilters()) -> int:  # noqa: B008
        where, args = filters.where()
        return int(self.db.execute(f"SELECT COUNT(*) FROM papers {where}", args).fetchone()[0])

    def stats(self) -> dict[str, Any]:
        by_lang = self.db.execute("SELECT lang, COUNT(*) FROM papers GROUP BY lang ORDER BY lang")
        by_kind = self.db.execute("SELECT kind, COUNT(*) FROM papers GROUP BY kind ORDER BY kind")
        return {
            "papers": self.count_papers(),
            "chunks": int(self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]),
            "papers_by_lang": {r[0]: r[1] for r in by_lang},
            "papers_by_kind": {r[0]: r[1] for r in by_kind},
        }

    # -- chunks and vectors

    def chunks_by_ids(self, ids: list[int]) -> dict[int, Chunk]:
        out: dict[int, Chunk] = {}
        for start in range(0, len(ids), 900):  # stay under SQLite's variable limit
            part = ids[start : start + 900]
            marks = ",".join("?" * len(part))
            rows = self.db.execute(f"SELECT {_CHUNK_COLS} FROM chunks WHERE id IN ({marks})", part)
            out.update({int(r["id"]): Chunk(**dict(r)) for r in rows})
        return out

    def chunk_ids_of(self, paper_id: int) -> list[int]:
        rows = self.db.execute("SELECT id FROM chunks WHERE paper_id = ?", (paper_id,))
        return [int(r[0]) for r in rows]

    def chunk_ids_by_lang(
        self,
        *,
        year_from: int | None = None,
        year_to: int | None = None,
        author: str | None = None,
        tag: str | None = None,
    ) -> dict[str, np.ndarray]:
        """Chunk ids of each chunk language, of the papers that pass the filters.

        Args:
            author: a case-insensitive substring of any author name (Chinese names work as is).
            tag: papers carrying exactly this tag.
        """
        narrowed = PaperFilters(year_from=year_from, year_to=year_to, tag=tag, author=author)
        where, args = narrowed.where()
        sql = f"SELECT c.id, c.lang FROM chunks c JOIN papers ON papers.id = c.paper_id {where}"
        out: dict[str, list[int]] = {}
        for cid, lang in self.db.execute(sql + " ORDER BY c.id", args):
            out.setdefault(str(lang), []).append(int(cid))
        return {lang: np.asarray(ids, dtype=np.int64) for lang, ids in out.items()}

    def iter_chunk_texts(self, batch: int = 256) -> Iterator[list[tuple[int, str, str]]]:
        """(chunk id, paper title, chunk text) in batches, for re-embedding."""
        last = 0
        while True:
            rows = self.db.execute(
                "SELECT c.id, p.title, c.text FROM chunks c JOIN papers p ON p.id = c.paper_id "
                "WHERE c.id > ? ORDER BY c.id LIMIT ?",
                (last, batch),
            ).fetchall()
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
            rows = self.db.execute(sql, args).fetchall()
            if not rows:
                return
            ids = np.asarray([r[0] for r in rows], dtype=np.int64)
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
            yield ids, vecs.reshape(len(rows), dim), [str(r[2]) for r in rows]
            last = int(ids[-1])

    def set_vectors(self, ids: list[int], vectors: np.ndarray, *, slot: str | None = None) -> None:
        """Replace (or, for a further encoder, add) the vectors of the given chunks."""
        with self.transaction() as db:
            if slot is None:
                rows = zip(ids, vectors, strict=True)
                db.executemany(
                    "UPDATE chunks SET vector = ? WHERE id = ?",
                    [(np.asarray(v, np.float32).tobytes(), i) for i, v in rows],
                )
            else:
                _put_vectors(db, slot, ids, vectors)
            self._bump(db)

    def chunks_without_vectors(self, slot: str, limit: int) -> list[tuple[int, str, str, str]]:
        """(chunk id, paper title, text, lang) of chunks with no vector in ``slot`` yet."""
        rows = self.db.execute(
            "SELECT c.id, p.title, c.text, c.lang FROM chunks c JOIN papers p ON p.id = c.paper_id "
            "WHERE NOT EXISTS (SELECT 1 FROM chunk_vectors v WHERE v.chunk_id = c.id "
            "AND v.slot = ?) ORDER BY c.id LIMIT ?",
            (slot, limit),
        ).fetchall()
        return [(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]

    # -- keyword index (FTS5); these writes leave ``generation`` alone: it tracks vectors


def _insert_chunks(
    db: sqlite3.Connection, paper_id: int, doc: ParsedDocument, vectors: np.ndarray
) -> list[int]:
    ids = []
    for chunk, vec in zip(doc.chunks, vectors, strict=True):
        cur = db.execute(
            "INSERT INTO chunks (paper_id, ord, text, lang, page_start, page_end, vector) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (paper_id, chunk.ord, chunk.text, chunk.lang, chunk.page_start,
             chunk.page_end, np.asarray(vec, dtype=np.float32).tobytes()),
        )  # fmt: skip
        ids.append(int(cur.lastrowid or 0))
    return ids


def _delete_fts(db: sqlite3.Connection, chunk_where: str, arg: object) -> None:
    """Delete the keyword rows of the chunks matching ``chunk_where`` (FTS5 has no cascade)."""
    sql = f"DELETE FROM chunk_fts WHERE rowid IN (SELECT id FROM chunks WHERE {chunk_where})"
    db.execute(sql, (arg,))


def _put_vectors(db: sqlite3.Connection, slot: str, ids: list[int], vectors: np.ndarray) -> None:
    rows = [
        (i, slot, np.asarray(v, np.float32).tobytes()) for i, v in zip(ids, vectors, strict=True)
    ]
    db.executemany(
        "INSERT OR REPLACE INTO chunk_vectors (chunk_id, slot, vector) VALUES (?, ?, ?)", rows
    )


def _paper(row: sqlite3.Row) -> Paper:
    data = dict(row)
    data["authors"] = json.loads(data["authors"])
    for name in ("tags", "files", "needs_ocr", "translations"):
        data[name] = json.loads(data[name] or "[]")
    data["edited"] = sorted(json.loads(data["edited"] or "{}"))
    return Paper(**data)
