"""The library: the one object the CLI and the API call (ingest, search, list, remove, reindex).

This is the application layer: it ties the core (``kb.settings``, ``kb.store``) to
``ingest`` (reading files) and ``index`` (embedding, FAISS, search). Routes and commands stay
thin wrappers around one method here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from index.dense import DenseIndex
from index.embedder import Embedder, load_embedder
from index.search import check_query, interleave_languages
from ingest.documents import iter_inputs
from ingest.lang import detect_lang
from kb.errors import InvalidInput, PaperNotFound
from kb.library.collections import Collections
from kb.library.curation import Curation
from kb.library.encoders import keyword_text, passage_text, second_encoder
from kb.library.ingest import STATUSES, IngestEvent, Listener, Pipeline
from kb.library.maintenance import Maintenance, translations_first
from kb.library.search import Filters, run_search
from kb.settings import Settings
from kb.store import Store
from kb.store.filters import PaperFilters, check_lang
from kb.types import IngestSummary, PageReport, Paper, ParsedDocument, SearchResponse

SAVE_EVERY_S = 30.0
CALIBRATION = "reference-means-v1"  # bump when the indexed-vector transform changes


class Library(Maintenance, Collections, Curation):
    """A knowledge base on disk: SQLite store + FAISS index + embedding model (lazy)."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        second: Embedder | None = None,
    ) -> None:
        """Open the store; models load on first use.

        Args:
            embedder: use this main encoder instead of loading ``settings.model`` (tests).
            second: use this second encoder instead of ``settings.second_encoder`` (tests).
        """
        self.settings = settings
        self.store = Store(settings.db_path)
        self._embedder = embedder
        self._second = second
        self._dense: list[DenseIndex] | None = None
        self._ids_cache: tuple[int, dict[str, np.ndarray]] | None = None
        self._lock = threading.RLock()  # the store and the indexes: reads and writes
        self._ingest_lock = threading.Lock()  # one ingest at a time
        self._last_save = time.monotonic()

    def close(self) -> None:
        self.store.close()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = load_embedder(self.settings)
        return self._embedder

    @property
    def dense(self) -> list[DenseIndex]:
        """The encoders of dense search: the main model, then the second encoder if enabled."""
        if self._dense is None:
            generation = self.store.generation()
            sides = self.dense_unloaded()
            self._dense = sides
            for side in sides:
                _ = side.vectors  # refuses a store built by another model, before any work
            if self.store.generation() == generation:  # else a later prepare() reloads
                self.store.mark_mirrored(generation)
            self._backfill()
        return self._dense

    def dense_unloaded(self) -> list[DenseIndex]:
        """The encoders, their FAISS indexes not opened yet (so not yet repaired on open)."""
        if self._dense is not None:
            return self._dense
        folder, extra = self.settings.index_dir, self._index_extra()
        sides = [DenseIndex(self.store, self.embedder, folder, None, extra)]
        second = self._second or second_encoder(self.settings)
        if second is not None:
            self._second = second
            sides.append(DenseIndex(self.store, second, folder / second.name, second.name, extra))
        return sides

    def extra_slots(self) -> list[str]:
        return [side.slot for side in self.dense_unloaded() if side.slot is not None]

    def prepare(self) -> None:
        """Load the models and open (or rebuild) the indexes, so the first request is fast.

        Indexes are reloaded when another process (a `kb ingest` beside `kb serve`) changed
        the store since they were loaded.
        """
        with self._lock:
            if self._dense is not None and self.store.changed_elsewhere():
                self._dense, self._ids_cache = None, None
            for side in self.dense:
                _ = side.means

    def _index_extra(self) -> dict[str, Any]:
        s = self.settings
        return {
            "chunking": {"max_tokens": s.chunk_tokens, "overlap": s.chunk_overlap},
            "calibration": CALIBRATION,
        }

    def _backfill(self) -> None:
        """Fill what an older store lacks: second-encoder vectors, keyword rows."""
        assert self._dense is not None
        for side in self._dense[1:]:
            while batch := self.store.chunks_without_vectors(side.slot or "", limit=512):
                ids = [cid for cid, _, _, _ in batch]
                vecs = side.embed_passages([passage_text(t, x) for _, t, x, _ in batch])
                self.store.set_vectors(ids, vecs, slot=side.slot)
                side.add(ids, vecs, [lang for _, _, _, lang in batch])
            side.save()
        after = 0
        while rows := self.store.fts_missing_chunk_ids(512, after=after):
            chunks = self.store.chunks_by_ids([cid for cid, _ in rows])
            papers = self.store.papers_by_ids(list({c.paper_id for c in chunks.values()}))
            self.store.set_keyword_texts(
                [(cid, keyword_text(papers[c.paper_id].title, c.text)) for cid, c in chunks.items()]
            )
            after = rows[-1][0]
        self.store.clear_state("fts_pending")

    def _save_index(self) -> None:
        for side in self.dense:
            side.save()
        self._last_save = time.monotonic()

    def _ids_by_lang(self, filters: Filters) -> dict[str, np.ndarray]:
        """Chunk ids per language that the filters allow (unfiltered: cached per generation)."""
        if filters.narrows_papers:
            ids = self.store.chunk_ids_by_lang(
                year_from=filters.year_from,
                year_to=filters.year_to,
                author=filters.author,
                tag=filters.tag,
            )
        else:
            generation = self.store.generation()
            if self._ids_cache is None or self._ids_cache[0] != generation:
                self._ids_cache = (generation, self.store.chunk_ids_by_lang())
            ids = self._ids_cache[1]
        if filters.lang:
            return {filters.lang: ids[filters.lang]} if filters.lang in ids else {}
        return ids

    # -- ingest

    def ingest(
        self, paths: Iterable[Path], listener: Listener | None = None, *, ocr: bool = False
    ) -> IngestSummary:
        """Ingest PDFs and JSONL record files (folders recursively); one failure stops nothing.

        Args:
            listener: called with every ``IngestEvent`` (a "start" event first).
            ocr: run OCR (Tesseract) on pages that have no usable text, when it is installed.
        """
        notify = listener or (lambda event: None)
        files, problems = iter_inputs(list(paths))
        summary = IngestSummary()

        def record(event: IngestEvent) -> None:
            if event.status in STATUSES:
                summary.add(event.status, event.name, event.detail)
            notify(event)

        notify(IngestEvent("start", "", total=len(files) + len(problems)))
        for name, why in problems:
            record(IngestEvent("failed", name, why))
        # One ingest at a time; searches go on meanwhile: the pipeline takes the read/write
        # lock only to check and store, never while parsing or embedding.
        with self._ingest_lock:
            with self._lock:
                self.prepare()  # check the model against the store before any work
            run = Pipeline(self, record, ocr=ocr)
            try:
                run.run_pdfs([f for f in files if f.suffix.lower() == ".pdf"])
                for feed in (f for f in files if f.suffix.lower() == ".jsonl"):
                    run.run_records(feed)
            finally:  # on Ctrl-C, what is stored stays; unembedded files are redone next run
                with self._lock:
                    self._save_index()
            if run.changed:
                self.link_translations()
        return summary

    def embed_docs(self, docs: list[ParsedDocument]) -> list[np.ndarray]:
        """The passage vectors of every chunk of ``docs``, in order, one array per encoder."""
        texts = [passage_text(d.meta.title, c.text) for d in docs for c in d.chunks]
        vecs = [side.embed_passages(texts) for side in self.dense]
        if time.monotonic() - self._last_save > SAVE_EVERY_S:
            with self._lock:
                self._save_index()
        return vecs

    def store_doc(
        self,
        doc: ParsedDocument,
        vecs: list[np.ndarray],
        *,
        replace_id: int | None = None,
        file_path: str | None = None,
        signature: np.ndarray | None = None,
        work_ids: tuple[str, ...] = (),
    ) -> int:
        """Write one document (all or nothing in SQLite), then add its vectors to every index."""
        with self._lock:
            return self._store_doc(doc, vecs, replace_id, file_path, signature, work_ids)

    def _store_doc(
        self,
        doc: ParsedDocument,
        vecs: list[np.ndarray],
        replace_id: int | None,
        file_path: str | None,
        signature: np.ndarray | None,
        work_ids: tuple[str, ...],
    ) -> int:
        old = self.store.paper_by_key(doc.key)
        old_ids = [] if old is None else self.store.chunk_ids_of(old.id)
        if replace_id is not None:
            old_ids += self.store.chunk_ids_of(replace_id)
        extra = {side.slot: v for side, v in zip(self.dense[1:], vecs[1:], strict=True)}
        paper_id, ids = self.store.add_paper(
            doc,
            vecs[0],
            keyword_texts=[keyword_text(doc.meta.title, c.text) for c in doc.chunks],
            extra_vectors=extra,
            replace_id=replace_id,
            file_path=file_path,
            signature=signature,
            work_ids=work_ids,
        )
        langs = [c.lang for c in doc.chunks]
        for side, v in zip(self.dense, vecs, strict=True):
            side.remove(old_ids)
            side.add(ids, v, langs)
        return paper_id

    # -- read

    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        lang: str | None = None,
        mode: str | None = None,
        year_from: int | None = None,
        year_to: int | None = None,
        author: str | None = None,
        tag: str | None = None,
    ) -> SearchResponse:
        """Papers for a query in any language, from both languages, best first.

        Args:
            mode: ``dense`` (embeddings), ``keyword`` (BM25) or ``hybrid``; default from settings.
            year_from, year_to, author, tag: filters applied inside the search (author: a
                substring of an author's name; tag: an exact tag).
        """
        s = self.settings
        k = s.search_k if k is None else k
        text = check_query(query, k)
        filters = Filters(check_lang(lang), year_from, year_to, author or None, tag or None)
        filters = filters.check()
        started, mode = time.perf_counter(), mode or s.search_mode
        self.prepare()  # models loaded; indexes reloaded if another process changed the store
        qvecs = self._embed_query(text) if mode in ("dense", "hybrid") else None
        with self._lock:
            return run_search(
                text,
                store=self.store,
                dense=self.dense,
                ids_by_lang=self._ids_by_lang(filters),
                mode=mode,
                k=k,
                candidates=s.candidates,
                snippets=s.snippets,
                filtered=filters.narrows_papers or filters.lang is not None,
                fusion=s.fusion,
                qvecs=qvecs,
                started=started,
            )

    def _embed_query(self, text: str) -> list[np.ndarray]:
        """The query's vector per encoder, embedded outside the library's lock: a search
        waiting for the model (busy with an ingest job's passages) holds up no other."""
        qlang = detect_lang(text)
        return [side.embed_query(text, qlang) for side in self.dense]

    def related(self, ref: str | int, *, k: int | None = None) -> SearchResponse:
        """The papers nearest to one paper (its chunks' mean per encoder), languages alternating."""
        k = self.settings.search_k if k is None else k
        if k < 1:
            raise InvalidInput(f"k must be at least 1, not {k}.")
        self.prepare()
        with self._lock:
            paper = self.paper(ref)
            ids = np.asarray(self.store.chunk_ids_of(paper.id), dtype=np.int64)
            like = []
            for side in self.dense:
                mean = side.vectors.vectors_of(ids).mean(axis=0)
                like.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
            found = run_search(
                paper.title,
                store=self.store,
                dense=self.dense,
                ids_by_lang=self._ids_by_lang(Filters()),
                mode="dense",
                k=k * 2,  # enough of each language to alternate
                candidates=self.settings.candidates,
                snippets=self.settings.snippets,
                exclude_paper=paper.id,
                like=like,
                group=False,  # its translations are put first below, marked as such
            )
            return translations_first(interleave_languages(found, k), paper, self.store)

    def paper(self, ref: str | int) -> Paper:
        """A paper by numeric id, or by key (a record key or a PDF's content hash)."""
        with self._lock:
            if isinstance(ref, int) or str(ref).isdigit():
                if not 0 <= int(ref) < 2**63:  # beyond SQLite's integers: no such paper
                    raise PaperNotFound(f"No paper with id {ref}. `kb list` shows them.")
                try:
                    return self.store.paper(int(ref))
                except PaperNotFound:
                    pass
            found = self.store.paper_by_key(str(ref))
            if found is None:
                raise PaperNotFound(f"No paper with id or key {ref!r}. `kb list` shows them.")
            return found

    def pages(self, ref: str | int) -> list[PageReport]:
        """How each page of a PDF paper was read (extractor, quality); [] for records."""
        with self._lock:
            return self.store.pages_of(self.paper(ref).id)

    def papers(
        self, *, limit: int = 50, offset: int = 0, sort: str = "id", **filters: Any
    ) -> list[Paper]:
        """A page of papers that pass the filters (``kb.store.filters.PaperFilters``: lang,
        year_from, year_to, tag, author, q).

        Args:
            sort: ``id`` (oldest first), ``added`` (newest first), ``year`` (newest first) or
                ``title``.
        """
        checked = PaperFilters(**filters).checked()
        with self._lock:
            return self.store.papers(limit=limit, offset=offset, sort=sort, filters=checked)

    def count(self, lang: str | None = None, **filters: Any) -> int:
        """How many papers pass the filters (the same as ``papers``)."""
        checked = PaperFilters(lang=lang, **filters).checked()
        with self._lock:
            return self.store.count_papers(checked)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                **self.store.stats(),
                "data_dir": str(self.settings.data_dir),
                "model": self.settings.model,
            }
