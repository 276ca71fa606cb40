"""Store I/O for papers: a paper with its chunks written in one transaction, tags, listings.

``Store.papers`` (a ``Papers``) reads and writes the ``papers`` and ``paper_tags`` tables; a
paper's chunks, keyword rows and extras (files, pages, work ids) are written with it, through
the helpers of ``kb.store.chunks``, ``kb.store.keywords`` and ``kb.store.works``.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from kb.errors import InvalidInput, PaperNotFound, StoreError
from kb.store.chunks import Chunks, insert_chunks, put_vectors
from kb.store.filters import PAPER_ORDER, PaperFilters
from kb.store.keywords import log_keyword_changes
from kb.store.works import apply_edits, write_extras
from kb.types import Paper, ParsedDocument

if TYPE_CHECKING:
    from kb.store.database import Database

_PAPER_COLS = (
    "id, key, kind, source, content_hash, title, authors, year, lang, doi, arxiv_id, "
    "abstract, url, n_pages, added_at, author_kind, title_en, "
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


def _not_found(paper_id: int) -> PaperNotFound:
    return PaperNotFound(f"No paper with id {paper_id}. `kb list` shows the ids.")


class Papers:
    """The papers of a store, with their tags; ``store.papers``."""

    def __init__(self, store: Database, chunks: Chunks) -> None:
        self._store, self._chunks = store, chunks

    def add(
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
        with self._store.transaction() as db:
            paper_id = _write_paper(db, doc, replace_id, signature)
            ids = insert_chunks(db, paper_id, doc, vectors)
            if keyword_texts is not None:
                rows = zip(ids, keyword_texts, strict=True)
                db.executemany("INSERT INTO chunk_fts (rowid, tokens) VALUES (?, ?)", rows)
                log_keyword_changes(db, ids)
            for slot, vecs in (extra_vectors or {}).items():
                put_vectors(db, slot, ids, vecs)
            write_extras(db, paper_id, doc, file_path, work_ids)
            self._store.bump_generation(db)
        return paper_id, ids

    def tag(self, paper_id: int, tags: list[str], *, remove: bool = False) -> None:
        """Add (or remove) tags on a paper."""
        with self._store.transaction() as db:
            self.get(paper_id)  # PaperNotFound if there is none
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

    def remove(self, paper_id: int) -> list[int]:
        """Delete a paper and its chunks; return the removed chunk ids."""
        with self._store.transaction() as db:
            ids = self._chunks.ids_of(paper_id)  # their keyword rows go with them (m014)
            db.execute("DELETE FROM collection_papers WHERE paper_id = ?", (paper_id,))
            if db.execute("DELETE FROM papers WHERE id = ?", (paper_id,)).rowcount == 0:
                raise _not_found(paper_id)
            self._store.bump_generation(db)
        return ids

    def get(self, paper_id: int) -> Paper:
        """One paper; PaperNotFound when there is none."""
        found = self._store.read_one(f"SELECT {_PAPER_COLS} FROM papers WHERE id = ?", (paper_id,))
        if found is None:
            raise _not_found(paper_id)
        return _paper(found)

    def by_key(self, key: str) -> Paper | None:
        row = self._store.read_one(f"SELECT {_PAPER_COLS} FROM papers WHERE key = ?", (key,))
        return None if row is None else _paper(row)

    def by_hash(self, content_hash: str) -> Paper | None:
        row = self._store.read_one(
            f"SELECT {_PAPER_COLS} FROM papers WHERE content_hash = ? LIMIT 1", (content_hash,)
        )
        return None if row is None else _paper(row)

    def by_ids(self, ids: list[int]) -> dict[int, Paper]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._store.read(f"SELECT {_PAPER_COLS} FROM papers WHERE id IN ({marks})", ids)
        return {int(r["id"]): _paper(r) for r in rows}

    def select(
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
        rows = self._store.read(
            f"SELECT {_PAPER_COLS} FROM papers {where} ORDER BY {order} LIMIT ? OFFSET ?",
            [*args, limit, offset],
        )
        return [_paper(r) for r in rows]

    def count(self, filters: PaperFilters = PaperFilters()) -> int:  # noqa: B008
        where, args = filters.where()
        return int(self._store.read(f"SELECT COUNT(*) FROM papers {where}", args)[0][0])

    def stats(self) -> dict[str, Any]:
        read = self._store.read
        by_lang = read("SELECT lang, COUNT(*) FROM papers GROUP BY lang ORDER BY lang")
        by_kind = read("SELECT kind, COUNT(*) FROM papers GROUP BY kind ORDER BY kind")
        return {
            "papers": self.count(),
            "chunks": int(read("SELECT COUNT(*) FROM chunks")[0][0]),
            "papers_by_lang": {r[0]: r[1] for r in by_lang},
            "papers_by_kind": {r[0]: r[1] for r in by_kind},
        }

    def titles(self, ids: list[int]) -> dict[int, str]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._store.read(f"SELECT id, title FROM papers WHERE id IN ({marks})", ids)
        return {int(i): str(t) for i, t in rows}

    def ids_by_lang(self) -> dict[str, np.ndarray]:
        """paper language -> the ids of every paper in it, read from the index
        ``papers_lang`` alone (``index.chunkmap.ChunkMap``)."""
        sql = "SELECT id FROM papers WHERE lang = ?"
        langs = self._store.distinct("papers", "lang")
        return {lang: self._store.read_ints(sql, (lang,))[:, 0] for lang in langs}

    def langs(self) -> dict[int, str]:
        """paper id -> language, for every paper."""
        rows = self._store.read("SELECT id, lang FROM papers")
        return {int(i): str(lang) for i, lang in rows}


def _write_paper(
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
              json.dumps(doc.cited_arxiv_ids), m.author_kind, m.title_en)  # fmt: skip
    cols = (
        "key, kind, source, content_hash, title, authors, year, lang, doi, arxiv_id, "
        "abstract, url, n_pages, signature, cited, author_kind, title_en"
    )
    if old_id is None:
        cur = db.execute(
            f"INSERT INTO papers ({cols}, added_at) VALUES ({'?, ' * len(values)}?)",
            (*values, now),
        )
        return int(cur.lastrowid or 0)
    db.execute("DELETE FROM chunks WHERE paper_id = ?", (old_id,))  # keyword rows too (m014)
    db.execute("DELETE FROM paper_pages WHERE paper_id = ?", (old_id,))
    db.execute("DELETE FROM paper_work_ids WHERE paper_id = ?", (old_id,))
    sets = ", ".join(f"{c.strip()} = ?" for c in cols.split(","))
    if db.execute(f"UPDATE papers SET {sets} WHERE id = ?", (*values, old_id)).rowcount == 0:
        raise PaperNotFound(f"No paper with id {old_id} to replace.")
    apply_edits(db, old_id)
    return int(old_id)


def _paper(row: sqlite3.Row) -> Paper:
    data = dict(row)
    data["authors"] = json.loads(data["authors"])
    for name in ("tags", "files", "needs_ocr", "translations"):
        data[name] = json.loads(data[name] or "[]")
    data["edited"] = sorted(json.loads(data["edited"] or "{}"))
    return Paper(**data)
