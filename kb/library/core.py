"""The core every library service shares: settings, the store, the encoders, the one lock.

``Core`` owns what is expensive or shared: the store, the encoders with their FAISS indexes,
and ``lock``, the one lock that keeps the store and the in-memory indexes a consistent pair
(every read of both, and every write to both, holds it). Loading models and opening (or
rebuilding) indexes are explicit calls (``load``), never side effects of an attribute.
Services (``kb.library.search``, ``kb.library.ingest``, ...) receive the core once and never
call back into the ``Library`` facade.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from index.alignment import Alignment, load_alignment
from index.chunkmap import ChunkMap
from index.dense import DenseIndex
from index.embedder import Embedder, load_embedder
from index.terms import TermIndex
from index.vectors import IndexPlan
from kb.errors import PaperNotFound
from kb.library.encoders import keyword_text, passage_text, second_encoder
from kb.library.memory import MemoryBudget
from kb.settings import Settings
from kb.store import Store
from kb.store.filters import PaperFilters
from kb.types import Paper

SAVE_EVERY_S = 30.0
log = logging.getLogger(__name__)
CALIBRATION = "reference-means-v1"  # bump when the indexed-vector transform changes


class Core:
    """Settings, store, encoders and the one lock of a library.

    Args:
        embedder: use this main encoder instead of loading ``settings.model`` (tests).
        second: use this second encoder instead of ``settings.second_encoder`` (tests).
    """

    def __init__(
        self, settings: Settings, embedder: Embedder | None = None, second: Embedder | None = None
    ) -> None:
        self.settings = settings
        self.store = Store(settings.db_path)
        self.lock = threading.RLock()  # the store and the indexes, as one consistent pair
        self.ingest_lock = threading.Lock()  # one ingest (or bundle import) at a time
        self._embedder = embedder
        self._second = second
        self._sides: list[DenseIndex] | None = None
        self._map: tuple[int, ChunkMap] | None = None
        self._terms: TermIndex | None = None
        self._last_save = time.monotonic()
        self.memory = MemoryBudget(settings.memory_mb)
        self.repairs: list[str] = []  # what opening the indexes found damaged and rebuilt

    def close(self) -> None:
        self.store.close()

    # -- encoders and indexes

    def embedder(self) -> Embedder:
        """The main encoder, loaded on the first call."""
        if self._embedder is None:
            self._embedder = load_embedder(self.settings)
        return self._embedder

    def second_embedder(self) -> Embedder | None:
        """The second encoder (loaded on the first call), or None when it is off."""
        if self._second is None:
            self._second = second_encoder(self.settings)
        return self._second

    def unloaded(self) -> list[DenseIndex]:
        """The encoders, their FAISS indexes not opened yet (so not yet repaired on open)."""
        if self._sides is not None:
            return self._sides
        folder, extra = self.settings.index_dir, self.index_extra()
        main = self.embedder()
        plan = self.index_plan()
        sides = [DenseIndex(self.store, main, folder, None, extra, self.alignment(main), plan)]
        second = self.second_embedder()
        if second is not None:
            sides.append(
                DenseIndex(
                    self.store, second, folder / second.name, second.name, extra,
                    self.alignment(second), plan,
                )
            )  # fmt: skip
        return sides

    def index_plan(self) -> IndexPlan:
        """The FAISS index kind for the library's size (``KB_INDEX``, ``KB_IVF_MIN_CHUNKS``,
        ``KB_NPROBE``)."""
        s = self.settings
        return IndexPlan(kind=s.index, ivf_min=s.ivf_min_chunks, nprobe=s.nprobe)

    def alignment(self, embedder: Embedder) -> Alignment | None:
        """The shipped cross-language alignment fitted on ``embedder``'s weights, or None
        (``KB_ALIGN=0``, or another model)."""
        if not self.settings.align:
            return None
        return load_alignment(embedder.fingerprint, dim=embedder.dim)

    def extra_slots(self) -> list[str]:
        return [side.slot for side in self.unloaded() if side.slot is not None]

    def encoders(self) -> list[DenseIndex]:
        """The encoders of dense search (the main model, then the second encoder if enabled),
        their indexes opened: loaded, checked against the store and back-filled on the first
        call. Hold ``lock``."""
        if self._sides is None:
            generation = self.store.generation()
            sides = self.unloaded()
            if self.memory.limit_mib:  # before any index is built or read
                if not self.memory.models_mib:
                    self.memory.measure_models()  # the models are loaded, no index open yet
                self.memory.check(sides, self.store.chunks.count_vectors())
            self._sides = sides
            for side in sides:
                opened = side.open()  # refuses a store built by another model, before any work
                side.moments()  # the statistics' sums, before this process adds a chunk
                if opened.rebuilt_because:
                    self.repairs.append(
                        f"{datetime.now(UTC).isoformat(timespec='seconds')}: the "
                        f"{side.embedder.name} index was rebuilt from the store "
                        f"({opened.rebuilt_because})"
                    )
            if self.store.generation() == generation:  # else a later load() reloads
                self.store.mark_mirrored(generation)
            self.backfill(sides)
        return self._sides

    def load(self) -> list[DenseIndex]:
        """Load the models and open (or rebuild) the indexes, so the first request is fast.

        Indexes are reloaded when another process (a `kb ingest` beside `kb serve`) changed
        the store since they were loaded.
        """
        with self.lock:
            if self._sides is not None and self.store.changed_elsewhere():
                self.forget_indexes()
            sides = self.encoders()
            self.terms()
            return sides

    def terms(self) -> TermIndex | None:
        """The tantivy keyword index, caught up with the store's keyword rows, when this
        library searches it (``KB_KEYWORD_INDEX``: auto from ``KB_KEYWORD_INDEX_MIN_CHUNKS``
        chunks); None: search SQLite's FTS5 table. Opened, caught up or built (once, about
        3 s per 100,000 chunks) here, never by a read-only replica. Hold ``lock``."""
        s = self.settings
        if s.keyword_index == "sqlite":
            return None
        if s.keyword_index == "auto" and self._terms is None:
            if self.chunk_map().chunk_total < s.keyword_index_min_chunks:
                return None
        seq = self.store.keywords.log_seq()
        terms = self._terms
        if terms is not None and terms.seq == seq:
            return terms
        if terms is None or terms.replaced():  # another process built it again meanwhile
            terms = self._terms = TermIndex.open(self.terms_folder())
        else:
            terms.reload()  # another process may have caught it up
        if s.read_only:
            return terms if terms is not None and terms.seq >= seq else None
        if terms is not None and terms.seq < seq:
            applied = terms.seq
            outcome = terms.catch_up(self.store.keywords)
            if outcome == "busy":
                return None  # another process is writing it: FTS5 this time
            if outcome == "done" and terms.seq > applied:
                self.store.keywords.trim_log(terms.seq)  # the index on disk has them
            if outcome == "behind":
                terms = None
        if terms is None:
            folder = self.terms_folder()
            log.info("Building the keyword index in %s (about 3 s per 100,000 chunks).", folder)
            terms = self._build_terms()
        return terms if terms.seq >= seq else None

    def keeps_terms(self) -> bool:
        """Whether this library has a tantivy keyword index (opened, or on disk)."""
        uses = self.settings.keyword_index != "sqlite"
        return uses and (self._terms is not None or self.terms_folder().exists())

    def terms_folder(self) -> Path:
        """Where the tantivy keyword index is (or would be) kept."""
        return self.settings.index_dir / "keywords"

    def rebuild_terms(self) -> None:
        """Build the tantivy keyword index again, if the library keeps one (``kb doctor
        --repair``). Hold ``lock``."""
        if self.keeps_terms():
            self._build_terms()

    def _build_terms(self) -> TermIndex:
        """Build the keyword index from the store's keyword rows, and drop the log entries
        it holds."""
        self._terms = TermIndex.build(self.terms_folder(), self.store.keywords)
        self.store.keywords.trim_log(self._terms.seq)
        return self._terms

    def opened(self) -> list[DenseIndex] | None:
        """The encoders with their indexes open, or None before the first ``encoders()``."""
        return self._sides

    def forget_indexes(self) -> None:
        """Drop the opened indexes; the next ``encoders()`` opens (or rebuilds) them again."""
        self._sides, self._map = None, None

    def replace_indexes(self, sides: list[DenseIndex]) -> None:
        """Serve ``sides`` (already opened or rebuilt) from now on."""
        self._sides, self._map = sides, None

    def index_extra(self) -> dict[str, Any]:
        s = self.settings
        return {
            "chunking": {"max_tokens": s.chunk_tokens, "overlap": s.chunk_overlap},
            "calibration": CALIBRATION,
        }

    def backfill(self, sides: list[DenseIndex]) -> None:
        """Fill what an older store lacks: second-encoder vectors, keyword rows."""
        total = self.store.chunks.count()
        for side in sides[1:]:
            if side.open().size >= total:  # every chunk has its vector: no scan for the rest
                continue
            while batch := self.store.chunks.without_vectors(side.slot or "", limit=512):
                ids = [cid for cid, _, _, _ in batch]
                vecs = side.embed_passages([passage_text(t, x) for _, t, x, _ in batch])
                self.store.chunks.set_vectors(ids, vecs, slot=side.slot)
                side.add(ids, vecs, [lang for _, _, _, lang in batch])
            side.save()
        pending = self.store.get_state("fts_pending") is not None
        if not pending and self.store.keywords.count() >= total:
            return  # a row for every chunk: no scan of them all (``kb doctor`` finds the rest)
        after = 0
        while rows := self.store.keywords.missing_chunk_ids(512, after=after):
            chunks = self.store.chunks.by_ids([cid for cid, _ in rows])
            papers = self.store.papers.by_ids(list({c.paper_id for c in chunks.values()}))
            self.store.keywords.set_texts(
                [(cid, keyword_text(papers[c.paper_id].title, c.text)) for cid, c in chunks.items()]
            )
            after = rows[-1][0]
        self.store.clear_state("fts_pending")

    def save_indexes(self) -> None:
        """Write every opened index to disk. Hold ``lock``."""
        for side in self.encoders():
            side.save()
        self._last_save = time.monotonic()

    def save_indexes_if_due(self) -> None:
        """Save the indexes when the last save is SAVE_EVERY_S old (a long ingest)."""
        if time.monotonic() - self._last_save > SAVE_EVERY_S:
            with self.lock:
                self.save_indexes()

    # -- reads shared by the services

    def chunk_map(self) -> ChunkMap:
        """Every chunk's paper and language and every paper's language, read once per store
        generation (``index.chunkmap``). Hold ``lock``."""
        generation = self.store.generation()
        if self._map is None or self._map[0] != generation:
            rows = (self.store.chunks.map_rows(), self.store.papers.ids_by_lang())
            self._map = (generation, ChunkMap.build(*rows))
        return self._map[1]

    def ids_by_lang(self, filters: PaperFilters) -> dict[str, np.ndarray]:
        """Chunk ids per language that the filters allow (unfiltered: from the chunk map).
        Hold ``lock``."""
        if filters.narrows_papers:
            ids = self.store.chunks.ids_by_lang(filters)
        else:
            ids = self.chunk_map().by_lang
        if filters.lang:
            return {filters.lang: ids[filters.lang]} if filters.lang in ids else {}
        return ids

    def paper(self, ref: str | int) -> Paper:
        """A paper by numeric id, or by key (a record key or a PDF's content hash)."""
        with self.lock:
            if isinstance(ref, int) or str(ref).isdigit():
                if not 0 <= int(ref) < 2**63:  # beyond SQLite's integers: no such paper
                    raise PaperNotFound(f"No paper with id {ref}. `kb list` shows them.")
                try:
                    return self.store.papers.get(int(ref))
                except PaperNotFound:
                    pass
            found = self.store.papers.by_key(str(ref))
            if found is None:
                raise PaperNotFound(f"No paper with id or key {ref!r}. `kb list` shows them.")
            return found
