"""Store I/O for works: a paper's files, pages, identifiers, user edits and translation links.

``Store.works`` (a ``Works``) reads and writes them, and checks the store's integrity for
``kb doctor``; a paper's files, pages and identifiers are first written with the paper
(``Store.papers.add``, through ``write_extras``). A user's edit is kept in ``paper_edits``
and written over the extracted metadata, so it survives a re-ingest that replaces the paper's
content.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from kb.errors import InvalidInput, PaperNotFound
from kb.types import PageReport, ParsedDocument

if TYPE_CHECKING:
    from kb.store.database import Database

# Fields a user may correct, with the SQLite column each is stored in.
EDITABLE = (
    "title", "authors", "year", "abstract", "doi", "arxiv_id", "url", "author_kind", "title_en",
    "lang",
)  # fmt: skip
TRANSLATION = "translation"


def apply_edits(db: sqlite3.Connection, paper_id: int) -> None:
    """Write the user's recorded corrections of a paper over its columns."""
    row = db.execute("SELECT fields FROM paper_edits WHERE paper_id = ?", (paper_id,)).fetchone()
    if row is None:
        return
    fields = json.loads(row[0])
    for name, value in fields.items():
        if name in EDITABLE:  # names come from our own JSON; checked anyway
            stored = json.dumps(value, ensure_ascii=False) if name == "authors" else value
            db.execute(f"UPDATE papers SET {name} = ? WHERE id = ?", (stored, paper_id))


def write_extras(
    db: sqlite3.Connection,
    paper_id: int,
    doc: ParsedDocument,
    file_path: str | None,
    work_ids: tuple[str, ...],
) -> None:
    """Record a paper's file, its pages' report and its work ids (in the caller's transaction)."""
    if file_path is not None:
        _put_file(db, paper_id, file_path, doc.content_hash)
    db.executemany(
        "INSERT INTO paper_pages (paper_id, page, extractor, quality, chars, needs_ocr) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            (paper_id, p.number, p.extractor, p.quality, p.chars, int(p.needs_ocr))
            for p in doc.pages
        ],
    )
    db.executemany(
        "INSERT OR IGNORE INTO paper_work_ids (paper_id, work_id) VALUES (?, ?)",
        [(paper_id, w) for w in work_ids],
    )


class Works:
    """Files, pages, identifiers, edits and links of the store's papers; ``store.works``."""

    def __init__(self, store: Database) -> None:
        self._store = store

    # -- files

    def add_file(self, paper_id: int, path: str, content_hash: str) -> None:
        """Record another file of an existing paper (a duplicate copy or version)."""
        with self._store.transaction() as db:
            _put_file(db, paper_id, path, content_hash)

    def file_owner(self, path: str) -> tuple[int, str] | None:
        """(paper id, content hash) of the paper a file path belongs to."""
        row = self._store.read_one(
            "SELECT paper_id, content_hash FROM paper_files WHERE path = ?", (path,)
        )
        return None if row is None else (int(row[0]), str(row[1]))

    def paper_id_by_file_hash(self, content_hash: str) -> int | None:
        """The paper that has a file (or is a paper) with this content hash."""
        row = self._store.read_one(
            "SELECT paper_id FROM paper_files WHERE content_hash = ? UNION ALL "
            "SELECT id FROM papers WHERE content_hash = ? LIMIT 1",
            (content_hash, content_hash),
        )
        return None if row is None else int(row[0])

    def name_upload(self, content_hash: str, name: str) -> None:
        """Remember the name an uploaded file had (the last name given wins)."""
        with self._store.transaction() as db:
            db.execute(
                "INSERT INTO upload_names (content_hash, name) VALUES (?, ?) "
                "ON CONFLICT(content_hash) DO UPDATE SET name = excluded.name",
                (content_hash, name),
            )

    def upload_names(self, content_hashes: list[str]) -> dict[str, str]:
        """content hash -> the name the file was uploaded with, for those uploaded."""
        found: dict[str, str] = {}
        for start in range(0, len(content_hashes), 500):  # SQLite's bound-variable limit
            part = content_hashes[start : start + 500]
            marks = ", ".join("?" * len(part))
            rows = self._store.read(
                f"SELECT content_hash, name FROM upload_names WHERE content_hash IN ({marks})",
                tuple(part),
            )
            found.update({str(h): str(n) for h, n in rows})
        return found

    # -- identifiers and near-duplicates

    def papers_by_work_ids(self, work_ids: set[str]) -> list[int]:
        if not work_ids:
            return []
        marks = ",".join("?" * len(work_ids))
        rows = self._store.read(
            f"SELECT DISTINCT paper_id FROM paper_work_ids WHERE work_id IN ({marks}) "
            "ORDER BY paper_id",
            sorted(work_ids),
        )
        return [int(r[0]) for r in rows]

    def work_ids(self) -> dict[int, set[str]]:
        out: dict[int, set[str]] = {}
        for pid, wid in self._store.read("SELECT paper_id, work_id FROM paper_work_ids"):
            out.setdefault(int(pid), set()).add(str(wid))
        return out

    def signatures(self) -> tuple[np.ndarray, np.ndarray]:
        """(paper ids, MinHash signatures as rows) of the papers that have one."""
        rows = self._store.read(
            "SELECT id, signature FROM papers WHERE signature IS NOT NULL ORDER BY id"
        )
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.uint64)
        ids = np.asarray([r[0] for r in rows], dtype=np.int64)
        sigs = np.stack([np.frombuffer(r[1], dtype=np.uint64) for r in rows])
        return ids, sigs

    # -- pages

    def pages_of(self, paper_id: int) -> list[PageReport]:
        rows = self._store.read(
            "SELECT page, extractor, quality, chars, needs_ocr FROM paper_pages "
            "WHERE paper_id = ? ORDER BY page",
            (paper_id,),
        )
        return [PageReport(int(r[0]), r[1], float(r[2]), int(r[3]), bool(r[4])) for r in rows]

    def needing_ocr(self) -> dict[int, int]:
        """paper id -> how many of its pages have no usable text (only OCR could read them)."""
        rows = self._store.read(
            "SELECT paper_id, COUNT(*) FROM paper_pages WHERE needs_ocr "
            "GROUP BY paper_id ORDER BY paper_id"
        )
        return {int(r[0]): int(r[1]) for r in rows}

    # -- edits

    def edit_paper(self, paper_id: int, fields: dict[str, Any]) -> None:
        """Correct fields of a paper; the correction is kept and survives re-ingest."""
        unknown = sorted(set(fields) - set(EDITABLE))
        if unknown:
            raise InvalidInput(
                f"Cannot edit {', '.join(unknown)}; editable: {', '.join(EDITABLE)}."
            )
        with self._store.transaction() as db:
            row = db.execute(
                "SELECT (SELECT fields FROM paper_edits WHERE paper_id = p.id) FROM papers p "
                "WHERE p.id = ?",
                (paper_id,),
            ).fetchone()
            if row is None:
                raise PaperNotFound(f"No paper with id {paper_id}. `kb list` shows the ids.")
            merged = {**json.loads(row[0] or "{}"), **fields}
            db.execute(
                "INSERT INTO paper_edits (paper_id, fields) VALUES (?, ?) "
                "ON CONFLICT(paper_id) DO UPDATE SET fields = excluded.fields",
                (paper_id, json.dumps(merged, ensure_ascii=False)),
            )
            apply_edits(db, paper_id)

    # -- translation links

    def set_links(self, links: list[tuple[int, int, float, str]], kind: str = TRANSLATION) -> None:
        """Replace every link of ``kind`` by ``links``: (paper a, paper b, score, reason)."""
        rows = [
            (min(a, b), max(a, b), kind, None if np.isnan(s) else float(s), r)
            for a, b, s, r in links
            if a != b
        ]
        with self._store.transaction() as db:
            db.execute("DELETE FROM paper_links WHERE kind = ?", (kind,))
            db.executemany(
                "INSERT OR REPLACE INTO paper_links (a, b, kind, score, reason) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def links(self, kind: str = TRANSLATION) -> dict[int, list[int]]:
        """paper id -> ids of the papers linked to it."""
        out: dict[int, list[int]] = {}
        for a, b in self._store.read("SELECT a, b FROM paper_links WHERE kind = ?", (kind,)):
            out.setdefault(int(a), []).append(int(b))
            out.setdefault(int(b), []).append(int(a))
        return out

    def translations_of(self, paper_ids: list[int]) -> dict[int, list[int]]:
        """paper id -> ids of its translations, for the given papers."""
        if not paper_ids:
            return {}
        marks = ",".join("?" * len(paper_ids))
        rows = self._store.read(
            f"SELECT a, b FROM paper_links WHERE kind = '{TRANSLATION}' "
            f"AND (a IN ({marks}) OR b IN ({marks}))",
            [*paper_ids, *paper_ids],
        )
        out: dict[int, list[int]] = {}
        for a, b in rows:
            out.setdefault(int(a), []).append(int(b))
            out.setdefault(int(b), []).append(int(a))
        return out

    # -- integrity (kb doctor)

    def integrity(self) -> dict[str, list[int]]:
        """Ids of what is inconsistent inside SQLite, by problem."""
        q: dict[str, str] = {
            "chunks_without_vector": "SELECT id FROM chunks WHERE vector IS NULL",
            "papers_without_chunks": "SELECT id FROM papers p WHERE NOT EXISTS "
            "(SELECT 1 FROM chunks c WHERE c.paper_id = p.id)",
            "keyword_rows_without_chunk": "SELECT rowid FROM chunk_fts f WHERE NOT EXISTS "
            "(SELECT 1 FROM chunks c WHERE c.id = f.rowid)",
            "chunks_without_keyword_row": "SELECT id FROM chunks c WHERE NOT EXISTS "
            "(SELECT 1 FROM chunk_fts f WHERE f.rowid = c.id)",
        }
        return {name: [int(r[0]) for r in self._store.read(sql)] for name, sql in q.items()}

    def missing_files(self) -> Iterator[tuple[int, str]]:
        """(paper id, path) of recorded files; the caller checks which are gone."""
        for pid, path in self._store.read("SELECT paper_id, path FROM paper_files ORDER BY rowid"):
            yield int(pid), str(path)

    # -- bundles (kb export-bundle)

    def paper_internals(self, paper_id: int) -> dict[str, Any]:
        """What a bundle carries beyond ``Paper``: edits, work ids, signature, cited, files."""
        read = self._store.read
        row = self._store.read_one(
            "SELECT signature, cited, (SELECT fields FROM paper_edits e WHERE e.paper_id = p.id) "
            "FROM papers p WHERE id = ?",
            (paper_id,),
        )
        if row is None:
            raise PaperNotFound(f"No paper with id {paper_id}. `kb list` shows the ids.")
        wids = read(
            "SELECT work_id FROM paper_work_ids WHERE paper_id = ? ORDER BY work_id", (paper_id,)
        )
        files = read(
            "SELECT path, content_hash FROM paper_files WHERE paper_id = ? ORDER BY rowid",
            (paper_id,),
        )
        return {
            "signature": None if row[0] is None else bytes(row[0]),
            "cited": json.loads(row[1] or "[]"),
            "edits": json.loads(row[2] or "{}"),
            "work_ids": [str(r[0]) for r in wids],
            "files": [(str(p), str(h)) for p, h in files],
        }


def _put_file(db: sqlite3.Connection, paper_id: int, path: str, content_hash: str) -> None:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    db.execute(
        "INSERT INTO paper_files (paper_id, path, content_hash, added_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(path) DO UPDATE SET paper_id = excluded.paper_id, "
        "content_hash = excluded.content_hash, added_at = excluded.added_at",
        (paper_id, path, content_hash, now),
    )
