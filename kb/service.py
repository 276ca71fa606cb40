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

from index.dense import DenseIndex
from index.embedder import Embedder, load_embedder
from index.keywords import fts_document
from index.search import check_query, interleave_languages
from ingest.documents import iter_inputs, parse_pdf
from ingest.records import read_records
from kb.errors import IngestError, InvalidInput, PaperNotFound
from kb.finder import Filters, run_search
from kb.settings import Settings
from kb.storage import Store, sha256_file
from kb.types import IngestSummary, Paper, ParsedDocument, SearchResponse

# (status, input name, detail) for each paper or record as it finishes: ingested, skipped or
# failed; ("start", "", number of files) once the inputs are expanded; ("file", path, "") after
# each file (a JSONL file holds many records).
Listener = Callable[[str, str, str], None]
SAVE_EVERY_S = 30.0
CALIBRATION = "reference-means-v1"  # bump when the indexed-vector transform changes
RECORD_BATCH = 64  # records embedded together (one batch across records is much faster)


def passage_text(title: str, text: str) -> str:
    """What is embedded for a chunk: its text, preceded by the paper title when missing."""
    if not title or text.startswith(title):
        return text
    return f"{title}\n{text}"


class Library:
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
        self._lock = threading.RLock()

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
            folder, extra = self.settings.index_dir, self._index_extra()
            sides = [DenseIndex(self.store, self.embedder, folder, None, extra)]
            second = self._second or _second_encoder(self.settings)
            if second is not None:
                sides.append(
                    DenseIndex(self.store, second, folder / second.name, second.name, extra)
                )
            self._dense = sides
            for side in sides:
                _ = side.vectors  # refuses a store built by another model, before any work
            self._backfill()
        return self._dense

    def prepare(self) -> None:
        """Load the models and open (or rebuild) the indexes, so the first request is fast."""
        with self._lock:
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
                [
                    (cid, _keyword_text(papers[c.paper_id].title, c.text))
                    for cid, c in chunks.items()
                ]
            )
            after = rows[-1][0]
        self.store.clear_state("fts_pending")

    def _save_index(self) -> None:
        for side in self.dense:
            side.save()

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
        """Embed the chunks of several documents in one batch per encoder, then store each."""
        out = [
            ("failed", d.source, f"{d.source!r} has no text to index.")
            for d in docs
            if not d.chunks
        ]
        docs = [d for d in docs if d.chunks]
        texts = [passage_text(d.meta.title, c.text) for d in docs for c in d.chunks]
        vecs = [side.embed_passages(texts) for side in self.dense]
        start = 0
        for doc in docs:
            end = start + len(doc.chunks)
            self._store(doc, [v[start:end] for v in vecs])
            start = end
            out.append(("ingested", doc.source, f"{len(doc.chunks)} chunks"))
        return out

    def _store(self, doc: ParsedDocument, vecs: list[np.ndarray]) -> int:
        """Write one document (all or nothing in SQLite), then add its vectors to every index."""
        old = self.store.paper_by_key(doc.key)
        old_ids = self.store.chunk_ids_of(old.id) if old else []
        extra = {side.slot: v for side, v in zip(self.dense[1:], vecs[1:], strict=True)}
        paper_id, ids = self.store.add_paper(
            doc,
            vecs[0],
            keyword_texts=[_keyword_text(doc.meta.title, c.text) for c in doc.chunks],
            extra_vectors=extra,
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
        filters = Filters(_check_lang(lang), year_from, year_to, author or None, tag or None)
        filters = filters.check()
        with self._lock:
            return run_search(
                text,
                store=self.store,
                dense=self.dense,
                ids_by_lang=self._ids_by_lang(filters),
                mode=mode or s.search_mode,
                k=k,
                candidates=s.candidates,
                snippets=s.snippets,
                filtered=filters.narrows_papers or filters.lang is not None,
                fusion=s.fusion,
            )

    def related(self, ref: str | int, *, k: int | None = None) -> SearchResponse:
        """The papers nearest to one paper (its chunks' mean per encoder), languages alternating."""
        k = self.settings.search_k if k is None else k
        if k < 1:
            raise InvalidInput(f"k must be at least 1, not {k}.")
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
            )
            return interleave_languages(found, k)

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

    def tag(self, ref: str | int, tags: list[str], *, remove: bool = False) -> Paper:
        """Add (or remove) tags on a paper; returns the paper as it is now."""
        clean = [t.strip() for t in tags if t.strip()]
        if not clean or any(len(t) > 100 for t in clean):
            raise InvalidInput("Give one or more tags of 1 to 100 characters.")
        with self._lock:
            paper = self.paper(ref)
            self.store.tag(paper.id, clean, remove=remove)
            return self.store.paper(paper.id)

    def remove(self, ref: str | int) -> Paper:
        with self._lock:
            paper = self.paper(ref)
            ids = self.store.remove_paper(paper.id)
            for side in self.dense:
                side.remove(ids)
            self._save_index()
            return paper

    def reindex(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Re-embed every chunk with the current encoders and rebuild the indexes."""
        with self._lock:
            main = DenseIndex(self.store, self.embedder, self.settings.index_dir, None, {})
            second = self._second or _second_encoder(self.settings)
            sides = [main] + ([] if second is None else [
                DenseIndex(self.store, second, self.settings.index_dir / second.name,
                           second.name, {})])  # fmt: skip
            total = self.store.stats()["chunks"]
            for side in sides:
                self.store.set_state(side.state_key, '{"model": "(reindex in progress)"}')
            done = 0
            for batch in self.store.iter_chunk_texts(batch=max(64, self.settings.batch_size * 4)):
                ids = [cid for cid, _, _ in batch]
                texts = [passage_text(title, text) for _, title, text in batch]
                for side in sides:
                    self.store.set_vectors(ids, side.embed_passages(texts), slot=side.slot)
                done += len(batch)
                if progress:
                    progress(done, total)
            for side in sides:
                side.extra = self._index_extra()
                side.reset()
            self._dense = None
            return done


def _keyword_text(title: str, text: str) -> str:
    """A chunk's keyword-index row: the same text that is embedded (title first)."""
    return fts_document(passage_text(title, text))


def _second_encoder(settings: Settings) -> Embedder | None:
    if settings.second_encoder == "none":
        return None
    from index.muse import MuseEmbedder

    return MuseEmbedder()


def _check_lang(lang: str | None) -> str | None:
    if lang is None or lang in ("", "all", "any"):
        return None
    if not (lang.isalpha() and 2 <= len(lang) <= 3 and lang.islower()):
        raise InvalidInput(f"lang must be a language code such as 'en' or 'zh', not {lang!r}.")
    return lang
