"""The library: the one object the CLI and the API call (ingest, search, list, remove, reindex).

This is the application layer: it ties the core (``kb.settings``, ``kb.storage``) to
``ingest`` (reading files) and ``index`` (embedding, FAISS, search). Routes and commands stay
thin wrappers around one method here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from index.calibration import LanguageMeans, LanguageStats
from index.embedder import Embedder, load_embedder
from index.search import SearchContext, check_query
from index.search import search as dense_search
from index.vectors import ModelIdentity, VectorIndex, check_identity
from ingest.documents import iter_inputs, parse_pdf
from ingest.lang import detect_lang
from ingest.records import read_records
from kb.errors import IngestError, InvalidInput, PaperNotFound
from kb.settings import Settings
from kb.storage import Store, read_arrays, sha256_file, write_arrays
from kb.types import IngestSummary, Paper, ParsedDocument, SearchResponse

# (status, input name, detail) for each paper or record as it finishes: ingested, skipped or
# failed; ("start", "", number of files) once the inputs are expanded; ("file", path, "") after
# each file (a JSONL file holds many records).
Listener = Callable[[str, str, str], None]
SAVE_EVERY_S = 30.0
CALIBRATION = "reference-means-v1"  # bump when the indexed-vector transform changes
MEANS_FILE = "language_means.npz"
SEARCH_MODES = ("dense", "keyword", "hybrid")
RECORD_BATCH = 64  # records embedded together (one batch across records is much faster)


def passage_text(title: str, text: str) -> str:
    """What is embedded for a chunk: its text, preceded by the paper title when missing."""
    if not title or text.startswith(title):
        return text
    return f"{title}\n{text}"


class Library:
    """A knowledge base on disk: SQLite store + FAISS index + embedding model (lazy)."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.store = Store(settings.db_path)
        self._embedder = embedder
        self._vectors: VectorIndex | None = None
        self._means: LanguageMeans | None = None
        self._search_cache: tuple[int, SearchContext] | None = None
        self._lock = threading.RLock()

    def close(self) -> None:
        self.store.close()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = load_embedder(self.settings)
        return self._embedder

    def prepare(self) -> None:
        """Load the model and open (or rebuild) the index, so the first request is fast."""
        _ = self.vectors
        _ = self.means

    @property
    def identity(self) -> ModelIdentity:
        e = self.embedder
        return ModelIdentity(name=e.name, dim=e.dim, fingerprint=e.fingerprint)

    @property
    def vectors(self) -> VectorIndex:
        if self._vectors is None:
            self._vectors = VectorIndex.load_or_rebuild(
                self.settings.index_dir,
                self.store,
                self.identity,
                self._index_extra(),
                self._to_index,
            )
        return self._vectors

    @property
    def means(self) -> LanguageMeans:
        """Per-language reference means of this model, computed once and cached on disk."""
        if self._means is None:
            path = self.settings.index_dir / MEANS_FILE
            saved = read_arrays(path)
            fingerprint = self.embedder.fingerprint
            if saved is not None and str(saved.pop("fingerprint", "")) == fingerprint:
                self._means = LanguageMeans.from_arrays(saved)
            else:
                self._means = LanguageMeans.compute(self.embedder)
                arrays = self._means.to_arrays()
                write_arrays(path, {**arrays, "fingerprint": np.asarray(fingerprint)})
        return self._means

    def _to_index(self, vectors: np.ndarray, langs: list[str]) -> np.ndarray:
        """Stored passage vectors -> indexed vectors (centred on their language's mean)."""
        return self.means.center(vectors, langs, "passage")

    def _index_extra(self) -> dict[str, Any]:
        s = self.settings
        return {
            "chunking": {"max_tokens": s.chunk_tokens, "overlap": s.chunk_overlap},
            "calibration": CALIBRATION,
        }

    def _search_context(self) -> SearchContext:
        """Per-language ids and score statistics, recomputed only when the store changed."""
        vectors = self.vectors  # first: refuses a store built by another model
        generation = self.store.generation()
        if self._search_cache is None or self._search_cache[0] != generation:
            dim = self.identity.dim
            batches = [
                (self._to_index(vecs, langs), langs)
                for _, vecs, langs in self.store.iter_vectors(dim)
            ]
            stats = LanguageStats.from_batches(batches, dim)
            ids = self.store.chunk_ids_by_lang()
            self._search_cache = (generation, SearchContext(self.store, vectors, stats, ids))
        return self._search_cache[1]

    def _save_index(self) -> None:
        self.vectors.save(
            self.settings.index_dir, self.identity, self.store.generation(), self._index_extra()
        )

    # -- ingest

    def ingest(self, paths: Iterable[Path], listener: Listener | None = None) -> IngestSummary:
        """Ingest PDFs and JSONL record files (folders recursively); one failure stops nothing."""
        notify = listener or (lambda status, name, detail: None)
        files, problems = iter_inputs(list(paths))
        summary = IngestSummary()
        notify("start", "", str(len(files) + len(problems)))
        for name, why in problems:
            summary.add("failed", name, why)
            notify("failed", name, why)
            notify("file", name, "")
        with self._lock:
            self.prepare()  # check the model against the store before any work
            last_save = time.monotonic()
            for path in files:
                for status, name, detail in self._ingest_file(path):
                    summary.add(status, name, detail)
                    notify(status, name, detail)
                notify("file", str(path), "")
                if time.monotonic() - last_save > SAVE_EVERY_S:
                    self._save_index()
                    last_save = time.monotonic()
            self._save_index()
        return summary

    def _ingest_file(self, path: Path) -> list[tuple[str, str, str]]:
        name = str(path)
        try:
            size_mb = path.stat().st_size / (1 << 20)
            if size_mb > self.settings.max_file_mb:
                raise IngestError(
                    f"{path.name!r} is {size_mb:.0f} MiB, over the {self.settings.max_file_mb} MiB "
                    "limit. Raise KB_MAX_FILE_MB to ingest it."
                )
            if path.suffix.lower() == ".jsonl":
                return self._ingest_records(path)
            if self.store.paper_by_hash(sha256_file(path)) is not None:
                return [("skipped", name, "already in the library (same content)")]
            s = self.settings
            doc = parse_pdf(path, max_tokens=s.chunk_tokens, overlap=s.chunk_overlap)
            return self._add_many([doc])
        except IngestError as e:
            return [("failed", name, str(e))]
        except OSError as e:
            return [("failed", name, f"Cannot read {path.name!r}: {e.strerror or e}.")]

    def _ingest_records(self, path: Path) -> list[tuple[str, str, str]]:
        s = self.settings
        out: list[tuple[str, str, str]] = []
        pending: list[ParsedDocument] = []
        for item in read_records(path, max_tokens=s.chunk_tokens, overlap=s.chunk_overlap):
            if isinstance(item, IngestError):
                out.append(("failed", str(path), str(item)))
                continue
            known = self.store.paper_by_key(item.key)
            if known is not None and known.content_hash == item.content_hash:
                out.append(("skipped", item.source, "unchanged record"))
                continue
            pending.append(item)
            if len(pending) >= RECORD_BATCH:
                out += self._add_many(pending)
                pending = []
        return out + self._add_many(pending)

    def _add_many(self, docs: list[ParsedDocument]) -> list[tuple[str, str, str]]:
        """Embed the chunks of several documents in one batch, then store each document."""
        out = [
            ("failed", d.source, f"{d.source!r} has no text to index.")
            for d in docs
            if not d.chunks
        ]
        docs = [d for d in docs if d.chunks]
        texts = [passage_text(d.meta.title, c.text) for d in docs for c in d.chunks]
        vecs = self.embedder.encode(texts, kind="passage")
        start = 0
        for doc in docs:
            doc_vecs = vecs[start : start + len(doc.chunks)]
            start += len(doc.chunks)
            self._store(doc, doc_vecs)
            out.append(("ingested", doc.source, f"{len(doc.chunks)} chunks"))
        return out

    def _store(self, doc: ParsedDocument, vecs: np.ndarray) -> int:
        old = self.store.paper_by_key(doc.key)
        old_ids = self.store.chunk_ids_of(old.id) if old else []
        paper_id, ids = self.store.add_paper(doc, vecs)
        self.vectors.remove(old_ids)
        self.vectors.add(ids, self._to_index(vecs, [c.lang for c in doc.chunks]))
        return paper_id

    # -- read

    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        lang: str | None = None,
        mode: str = "dense",
    ) -> SearchResponse:
        """Papers for a query in any language, from both languages, best first.

        Args:
            mode: ``dense`` (embeddings), ``keyword`` (BM25) or ``hybrid`` (both).
        """
        s = self.settings
        k = s.search_k if k is None else k
        text, lang = check_query(query, k), _check_lang(lang)
        if mode not in SEARCH_MODES:
            raise InvalidInput(f"mode must be one of {', '.join(SEARCH_MODES)}, not {mode!r}.")
        if mode != "dense":
            raise InvalidInput(f"Search mode {mode!r} is not available yet; use mode=dense.")
        with self._lock:
            qvec = self.embedder.encode([text], kind="query")
            qvec = self.means.center(qvec, [detect_lang(text)], "query")[0]
            return dense_search(
                text,
                qvec,
                self._search_context(),
                k=k,
                lang=lang,
                candidates=s.candidates,
                snippets=s.snippets,
            )

    def paper(self, ref: str | int) -> Paper:
        """A paper by numeric id, or by key (a record key or a PDF's content hash)."""
        with self._lock:
            if isinstance(ref, int) or str(ref).isdigit():
                try:
                    return self.store.paper(int(ref))
                except PaperNotFound:
                    pass
            found = self.store.paper_by_key(str(ref))
            if found is None:
                raise PaperNotFound(f"No paper with id or key {ref!r}. `kb list` shows them.")
            return found

    def papers(self, *, limit: int = 50, offset: int = 0, lang: str | None = None) -> list[Paper]:
        with self._lock:
            return self.store.papers(limit=limit, offset=offset, lang=_check_lang(lang))

    def count(self, lang: str | None = None) -> int:
        with self._lock:
            return self.store.count_papers(_check_lang(lang))

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                **self.store.stats(),
                "data_dir": str(self.settings.data_dir),
                "model": self.settings.model,
            }

    # -- write

    def remove(self, ref: str | int) -> Paper:
        with self._lock:
            paper = self.paper(ref)
            ids = self.store.remove_paper(paper.id)
            self.vectors.remove(ids)
            self._save_index()
            return paper

    def reindex(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Re-embed every chunk with the current model and rebuild the index; returns chunks."""
        with self._lock:
            total = self.store.stats()["chunks"]
            self.store.set_state("model", '{"model": "(reindex in progress)"}')
            done = 0
            for batch in self.store.iter_chunk_texts(batch=max(64, self.settings.batch_size * 4)):
                ids = [cid for cid, _, _ in batch]
                texts = [passage_text(title, text) for _, title, text in batch]
                self.store.set_vectors(ids, self.embedder.encode(texts, kind="passage"))
                done += len(batch)
                if progress:
                    progress(done, total)
            self.store.clear_state("model")  # the current model is adopted just below
            check_identity(self.store, self.identity)
            self._vectors = VectorIndex.rebuild(self.store, self.identity.dim, self._to_index)
            self._save_index()
            return done


def _check_lang(lang: str | None) -> str | None:
    if lang is None or lang == "" or lang == "all":
        return None
    if not (lang.isalpha() and 2 <= len(lang) <= 3 and lang.islower()):
        raise InvalidInput(f"lang must be a language code such as 'en' or 'zh', not {lang!r}.")
    return lang
