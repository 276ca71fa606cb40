"""The keyword index of a large library: the chunks' search tokens in tantivy, for BM25 top-k.

SQLite's FTS5 table holds every chunk's search tokens (``index.keywords.analyze``) and stays
the truth. But FTS5 scores every row that matches any term of an OR query before it keeps the
best: at a million chunks a title-length query took 710 ms (docs/PERFORMANCE.md). Tantivy
(a Lucene-like engine, ``tantivy`` on PyPI) skips the blocks of postings that cannot reach the
top k (block-max WAND) and answers the same query in a few milliseconds.

Its scores are Lucene's BM25 (k1 1.2, b 0.75, idf ``ln(1 + (N - n + 0.5) / (n + 0.5))``,
document lengths rounded to one byte), not FTS5's (whose idf is ~0 for a term in half the
rows). Search uses keyword scores as a ranking (fusion by rank, or z-scored), and the standard
evaluation measured the two the same (docs/EVALUATION.md).

The index mirrors the store's keyword rows and says which: ``kb_terms.json`` records the last
entry of the store's keyword log it applied (``seq``). Every keyword write in the store appends
the chunk ids it touched to that log, so an index behind the store catches up by re-reading
those chunks' rows (``catch_up``), in whichever process searches next; one far behind (or
missing, or unreadable) is built again from the rows (``build``). A folder is replaced whole
(built beside it, then renamed), so a reader never sees half an index. ``index`` does not
import the store: what it reads there is ``KeywordRows``, which ``store.keywords`` satisfies.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Protocol

from kb.errors import StoreError

FORMAT = 1
META_FILE = "kb_terms.json"
TOKENIZER = "kb_tokens"  # the stored text is tokens joined by spaces: split on whitespace only
MAX_TOKEN_BYTES = 255  # longer runs (base64, hashes in a PDF's text) are dropped, not indexed
WRITER_HEAP = 64_000_000  # bytes of the one-thread writer's buffer (tantivy's minimum is 15 MB)
CATCH_UP_SHARE = 0.25  # more logged changes than this share of the index: build it again

log = logging.getLogger(__name__)
CatchUp = Literal["done", "behind", "busy"]


class KeywordRows(Protocol):
    """The store's keyword rows and their change log (``store.keywords``)."""

    def log_seq(self) -> int:
        """The last entry of the keyword log (0: none)."""
        ...

    def changed_since(self, seq: int, limit: int) -> tuple[int, list[int]] | None:
        """(the last seq, the chunk ids logged after ``seq``); None past ``limit`` entries."""
        ...

    def texts_of(self, ids: list[int]) -> dict[int, str]:
        """chunk id -> tokens, for the ids that have a keyword row."""
        ...

    def snapshot_texts(self, batch: int = 4096) -> tuple[int, Iterator[list[tuple[int, str]]]]:
        """(the log's last seq, every keyword row in batches), the rows read after the seq."""
        ...


def _tantivy() -> Any:
    try:
        import tantivy
    except ImportError as e:  # pragma: no cover - a broken install
        raise ImportError(
            "the large-library keyword index needs tantivy: pip install tantivy"
        ) from e
    return tantivy


class TermIndex:
    """A tantivy index of (chunk id, tokens), and the keyword-log seq it mirrors.

    Open one with ``open`` (None when there is none usable) or ``build``; ``catch_up`` applies
    the store's later changes; ``search`` is BM25 over OR-ed tokens.
    """

    def __init__(self, folder: Path, index: Any, seq: int, build_id: str) -> None:
        self.folder = folder
        self.seq = seq
        self.build_id = build_id  # a new one each build: another process's build replaced it
        self._index = index
        self._searcher = index.searcher()
        self._lock = threading.Lock()  # tantivy objects are shared by the search threads

    @property
    def size(self) -> int:
        """The number of chunks in the index."""
        return int(self._searcher.num_docs)

    @classmethod
    def open(cls, folder: Path) -> TermIndex | None:
        """The index saved in ``folder``, or None when there is none or it cannot be read
        (the caller builds it again; the log line says why)."""
        meta = _read_meta(folder)
        if meta is None:
            return None
        try:
            index = _tantivy().Index.open(str(folder))
            _register(index)
            return cls(folder, index, int(meta["seq"]), str(meta["build"]))
        except (ValueError, OSError, KeyError, TypeError) as e:
            log.warning(
                "The keyword index in %s cannot be read (%s); it is built again.", folder, e
            )
            return None

    @classmethod
    def build(cls, folder: Path, rows: KeywordRows) -> TermIndex:
        """Index every keyword row into a new folder beside ``folder``, then put it in its
        place."""
        tantivy = _tantivy()
        fresh = folder.with_name(folder.name + ".new")
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir(parents=True)
        index = tantivy.Index(_schema(), path=str(fresh))
        _register(index)
        writer = index.writer(heap_size=WRITER_HEAP, num_threads=1)
        seq, batches = rows.snapshot_texts()
        for batch in batches:
            for cid, tokens in batch:
                writer.add_document(tantivy.Document(id=cid, tokens=tokens))
        writer.commit()
        writer.wait_merging_threads()
        build_id = uuid.uuid4().hex
        _write_meta(fresh, seq, build_id)
        _swap(fresh, folder)
        index = tantivy.Index.open(str(folder))
        _register(index)
        return cls(folder, index, seq, build_id)

    def reload(self) -> None:
        """Follow what another process applied to this same build (its later ``seq``)."""
        meta = _read_meta(self.folder)
        if meta is not None and meta.get("build") == self.build_id and meta["seq"] != self.seq:
            self._follow(int(meta["seq"]))

    def _follow(self, seq: int) -> None:
        """Search what the folder holds now, which has applied the log up to ``seq``."""
        with self._lock:
            self._index.reload()
            self._searcher = self._index.searcher()
            self.seq = seq

    def replaced(self) -> bool:
        """Whether the folder now holds another build (another process built it again):
        open it anew rather than write through this one."""
        meta = _read_meta(self.folder)
        return meta is None or meta.get("build") != self.build_id

    def catch_up(self, rows: KeywordRows) -> CatchUp:
        """Apply the store's keyword changes logged since ``seq``: ``done``; ``behind`` when
        they are too many (more than ``CATCH_UP_SHARE`` of the index: build it again instead);
        ``busy`` when another process is writing the index (search the store meanwhile)."""
        limit = max(10_000, int(self.size * CATCH_UP_SHARE))
        changes = rows.changed_since(self.seq, limit)
        if changes is None:
            return "behind"
        seq, ids = changes
        if ids:
            tantivy = _tantivy()
            try:
                writer = self._index.writer(heap_size=WRITER_HEAP, num_threads=1)
            except ValueError as e:  # another process holds the writer's lock file
                log.info("The keyword index in %s is being written elsewhere: %s", self.folder, e)
                return "busy"
            for cid in ids:
                writer.delete_documents_by_term("id", cid)
            for cid, tokens in rows.texts_of(ids).items():
                writer.add_document(tantivy.Document(id=cid, tokens=tokens))
            writer.commit()
            writer.wait_merging_threads()
        _write_meta(self.folder, seq, self.build_id)
        self._follow(seq)
        return "done"

    def search(self, tokens: list[str], k: int) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) of the ``k`` best chunks matching any of ``tokens``."""
        terms = [t for t in dict.fromkeys(tokens) if 0 < len(t.encode()) <= MAX_TOKEN_BYTES]
        if not terms or k <= 0:
            return []
        tantivy = _tantivy()
        should = tantivy.Occur.Should
        with self._lock:
            schema, searcher = self._index.schema, self._searcher
            query = tantivy.Query.boolean_query(
                [(should, tantivy.Query.term_query(schema, "tokens", t)) for t in terms]
            )
            try:
                hits = searcher.search(query, k, count=False).hits
                return [(int(searcher.doc(addr)["id"][0]), float(score)) for score, addr in hits]
            except (ValueError, OSError) as e:  # its files damaged since it was opened
                raise StoreError(
                    f"The keyword index in {self.folder} cannot be searched ({e}). Delete that "
                    "folder: kb builds it again from the store."
                ) from e


def _schema() -> Any:
    tantivy = _tantivy()
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("id", stored=True, indexed=True)
    builder.add_text_field("tokens", tokenizer_name=TOKENIZER, index_option="freq")
    return builder.build()


def _register(index: Any) -> None:
    tantivy = _tantivy()
    analyzer = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace())
        .filter(tantivy.Filter.remove_long(MAX_TOKEN_BYTES + 1))
        .build()
    )
    index.register_tokenizer(TOKENIZER, analyzer)


def _read_meta(folder: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        return None
    return meta


def _write_meta(folder: Path, seq: int, build_id: str) -> None:
    tmp = folder / (META_FILE + ".tmp")
    meta = {"format": FORMAT, "seq": seq, "build": build_id}
    tmp.write_text(json.dumps(meta), encoding="utf-8")
    os.replace(tmp, folder / META_FILE)


def _swap(fresh: Path, folder: Path) -> None:
    """Put the folder ``fresh`` in the place of ``folder`` (two renames, then the old one goes)."""
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    try:
        if folder.exists():
            folder.rename(old)
        fresh.rename(folder)
    except OSError as e:
        raise StoreError(f"Could not put the new keyword index in place at {folder}: {e}.") from e
    shutil.rmtree(old, ignore_errors=True)
