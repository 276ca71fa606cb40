"""The numbered schema migrations of the store (``kb.store.Store`` runs them in order).

Each runs inside one transaction; ``PRAGMA user_version`` records how many ran. Never edit a
migration that has shipped: add the next one.
"""

from __future__ import annotations

import sqlite3

import numpy as np


def _script(db: sqlite3.Connection, sql: str) -> None:
    """Run ``;``-separated statements inside the caller's transaction (executescript commits)."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def m001_papers_chunks(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE papers (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL CHECK (kind IN ('pdf', 'record')),
            source TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            title TEXT NOT NULL,
            authors TEXT NOT NULL DEFAULT '[]',
            year INTEGER,
            lang TEXT NOT NULL,
            doi TEXT,
            arxiv_id TEXT,
            abstract TEXT NOT NULL DEFAULT '',
            url TEXT,
            n_pages INTEGER,
            added_at TEXT NOT NULL
        );
        CREATE INDEX papers_content_hash ON papers(content_hash);
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            paper_id INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
            ord INTEGER NOT NULL,
            text TEXT NOT NULL,
            lang TEXT NOT NULL,
            page_start INTEGER,
            page_end INTEGER,
            vector BLOB,
            UNIQUE (paper_id, ord)
        );
        CREATE INDEX chunks_lang ON chunks(lang);
        CREATE TABLE state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO state (name, value) VALUES ('generation', '0');
        """,
    )


def m002_chunk_fts(db: sqlite3.Connection) -> None:
    """The keyword index: one row of analyzed tokens per chunk, rowid = chunk id."""
    db.execute(
        "CREATE VIRTUAL TABLE chunk_fts "
        "USING fts5(tokens, tokenize = 'unicode61 remove_diacritics 2')"
    )
    if db.execute("SELECT 1 FROM chunks LIMIT 1").fetchone() is not None:
        # Storage cannot analyze text (that is index/); the application backfills these rows.
        db.execute("INSERT OR REPLACE INTO state (name, value) VALUES ('fts_pending', '1')")


def m003_chunk_vectors(db: sqlite3.Connection) -> None:
    """Vectors of further encoders (the main encoder's stay in ``chunks.vector``)."""
    db.execute(
        "CREATE TABLE chunk_vectors ("
        " chunk_id INTEGER NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,"
        " slot TEXT NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (chunk_id, slot))"
    )


def m004_paper_tags(db: sqlite3.Connection) -> None:
    """Free-form tags on papers (a reading list, a project); they survive re-ingest."""
    db.execute(
        "CREATE TABLE paper_tags ("
        " paper_id INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,"
        " tag TEXT NOT NULL, PRIMARY KEY (paper_id, tag))"
    )
    db.execute("CREATE INDEX paper_tags_tag ON paper_tags(tag)")


def m005_works(db: sqlite3.Connection) -> None:
    """One paper, many files; per-page extraction; user edits; translation links; work ids."""
    _script(
        db,
        """
        CREATE TABLE paper_files (
            paper_id INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
            path TEXT NOT NULL UNIQUE,
            content_hash TEXT NOT NULL,
            added_at TEXT NOT NULL
        );
        CREATE INDEX paper_files_paper ON paper_files(paper_id);
        CREATE INDEX paper_files_hash ON paper_files(content_hash);
        CREATE TABLE paper_pages (
            paper_id INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
            page INTEGER NOT NULL,
            extractor TEXT NOT NULL,
            quality REAL NOT NULL,
            chars INTEGER NOT NULL,
            needs_ocr INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (paper_id, page)
        );
        CREATE TABLE paper_edits (
            paper_id INTEGER PRIMARY KEY REFERENCES papers(id) ON DELETE CASCADE,
            fields TEXT NOT NULL
        );
        CREATE TABLE paper_links (
            a INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
            b INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            score REAL,
            reason TEXT NOT NULL,
            PRIMARY KEY (a, b, kind),
            CHECK (a < b)
        );
        CREATE INDEX paper_links_b ON paper_links(b);
        CREATE TABLE paper_work_ids (
            paper_id INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
            work_id TEXT NOT NULL,
            PRIMARY KEY (paper_id, work_id)
        );
        CREATE INDEX paper_work_ids_work ON paper_work_ids(work_id);
        ALTER TABLE papers ADD COLUMN signature BLOB;
        ALTER TABLE papers ADD COLUMN cited TEXT NOT NULL DEFAULT '[]'
        """,
    )
    db.execute(
        "INSERT OR IGNORE INTO paper_files (paper_id, path, content_hash, added_at) "
        "SELECT id, source, content_hash, added_at FROM papers WHERE kind = 'pdf'"
    )


def m006_collections(db: sqlite3.Connection) -> None:
    """Shared reading lists: named collections of papers, each paper with the group's note."""
    _script(
        db,
        """
        CREATE TABLE collections (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE COLLATE NOCASE,
            description TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE collection_papers (
            collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
            paper_id INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
            note TEXT NOT NULL DEFAULT '',
            added_at TEXT NOT NULL,
            PRIMARY KEY (collection_id, paper_id)
        );
        CREATE INDEX collection_papers_paper ON collection_papers(paper_id)
        """,
    )


def m007_ingest_jobs(db: sqlite3.Connection) -> None:
    """The server's ingest jobs and their files, so that a restart resumes unfinished ones."""
    _script(
        db,
        """
        CREATE TABLE ingest_jobs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL,
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            error TEXT
        );
        CREATE INDEX ingest_jobs_status ON ingest_jobs(status);
        CREATE TABLE ingest_job_files (
            job_id TEXT NOT NULL REFERENCES ingest_jobs(id) ON DELETE CASCADE,
            ord INTEGER NOT NULL,
            name TEXT NOT NULL,
            path TEXT,
            status TEXT NOT NULL,
            paper_id INTEGER,
            detail TEXT,
            PRIMARY KEY (job_id, ord)
        )
        """,
    )


def m008_author_kind(db: sqlite3.Connection) -> None:
    """Whether a paper's authors are people or organisations (a citation writes an
    organisation whole), and a Chinese paper's English title as printed beside it."""
    _script(
        db,
        """
        ALTER TABLE papers ADD COLUMN author_kind TEXT NOT NULL DEFAULT 'person'
            CHECK (author_kind IN ('person', 'organisation'));
        ALTER TABLE papers ADD COLUMN title_en TEXT NOT NULL DEFAULT ''
        """,
    )


def m009_upload_names(db: sqlite3.Connection) -> None:
    """The file name an uploaded PDF had on the user's machine (kept uploads are named by
    their content hash), so pages show "report.pdf", never the server's path."""
    _script(
        db,
        """
        CREATE TABLE upload_names (
            content_hash TEXT PRIMARY KEY,
            name TEXT NOT NULL
        )
        """,
    )


def m010_job_ocr(db: sqlite3.Connection) -> None:
    """Whether an ingest job OCRs the pages without usable text (``ocr=true`` on upload), so
    a job resumed after a restart still does."""
    _script(db, "ALTER TABLE ingest_jobs ADD COLUMN ocr INTEGER NOT NULL DEFAULT 0")


def m011_vector_id_index(db: sqlite3.Connection) -> None:
    """The ids of the chunks with a main vector, as a partial index: opening a library checks
    its FAISS index against them, and reading them from the table read every vector (35 s
    for two encoders at a million chunks with a cold disk cache; docs/PERFORMANCE.md)."""
    _script(db, "CREATE INDEX chunks_with_vector ON chunks(id) WHERE vector IS NOT NULL")


def m012_keyword_log(db: sqlite3.Connection) -> None:
    """The chunk ids whose keyword rows changed, in order (``seq``): the tantivy keyword index
    of a large library (``index.terms``) catches up from it instead of being rebuilt."""
    _script(
        db,
        """
        CREATE TABLE keyword_log (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            chunk_id INTEGER NOT NULL
        )
        """,
    )


def m013_map_indexes(db: sqlite3.Connection) -> None:
    """Indexes that hold every chunk's id, paper and language, and every paper's id and
    language: a search's in-memory map of them (``index.chunkmap``) is read from these
    alone, never from the tables' texts and vectors. The chunk one replaces ``chunks_lang``
    (a prefix of it)."""
    _script(
        db,
        """
        CREATE INDEX chunks_lang_paper ON chunks(lang, paper_id);
        DROP INDEX chunks_lang;
        CREATE INDEX papers_lang ON papers(lang);
        """,
    )


def m014_keyword_rows_follow_chunks(db: sqlite3.Connection) -> None:
    """A deleted chunk's keyword row goes with it, logged for the keyword index, whichever
    statement deleted the chunk (a paper's removal cascades to its chunks): FTS5 tables have
    no foreign keys, and a path that deleted chunks without their keyword rows left orphans
    (session 10 found one)."""
    db.execute(  # one statement: its body's semicolons are not statement ends
        """
        CREATE TRIGGER chunks_keyword_row_gone AFTER DELETE ON chunks BEGIN
            DELETE FROM chunk_fts WHERE rowid = old.id;
            INSERT INTO keyword_log (chunk_id) VALUES (old.id);
        END
        """
    )


def _half(blob: bytes) -> bytes:
    """A float32 vector's bytes as float16; other bytes as they are (``kb doctor`` finds
    them, where a failing conversion would leave the store unopenable)."""
    if len(blob) % 4:
        return blob
    with np.errstate(over="ignore"):  # the dtypes spelled out: a migration never follows
        return np.frombuffer(blob, dtype="<f4").astype("<f2").tobytes()  # later code


def m015_half_precision_vectors(db: sqlite3.Connection) -> None:
    """Every stored vector in float16, 2 bytes a dimension instead of 4 (``kb.store.chunks``):
    the vectors are stored once, compactly, and the search indexes are derived from them.
    The indexes saved before keep their float32-derived values (under 1e-4 apart)
    until they are next rebuilt. The store is compacted afterwards (``REWRITES``). Both took
    7 s at 100k chunks (859 to 444 MiB) and 144 s at a million (8,726 to 4,507 MiB;
    docs/PERFORMANCE.md)."""
    db.create_function("kb_half", 1, _half, deterministic=True)
    db.execute("UPDATE chunks SET vector = kb_half(vector) WHERE vector IS NOT NULL")
    db.execute("UPDATE chunk_vectors SET vector = kb_half(vector)")


MIGRATIONS = [
    m001_papers_chunks,
    m002_chunk_fts,
    m003_chunk_vectors,
    m004_paper_tags,
    m005_works,
    m006_collections,
    m007_ingest_jobs,
    m008_author_kind,
    m009_upload_names,
    m010_job_ocr,
    m011_vector_id_index,
    m012_keyword_log,
    m013_map_indexes,
    m014_keyword_rows_follow_chunks,
    m015_half_precision_vectors,
]
# Migrations that rewrite most of the file: said before they run on a store that has data
# (they take a while), and followed by returning the freed pages to the disk (``VACUUM``).
REWRITES = {
    m015_half_precision_vectors: "every stored vector to float16, half the bytes (once; "
    "about 2.5 minutes a million chunks)",
}
