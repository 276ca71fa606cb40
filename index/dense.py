"""One encoder's side of dense search: its model, FAISS index, language means and statistics.

kb can run several encoders side by side (the main model plus, by default, mUSE); each gets a
``DenseIndex`` with its own folder under the index directory. Stored vectors are raw model
output; indexed vectors are centred on their language's mean (``index.calibration``), then
corrected by the encoder's cross-language alignment when one is given (``index.alignment``).
"""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from index.alignment import Alignment
from index.calibration import LanguageMeans, LanguageStats, Moments
from index.embedder import Embedder
from index.vectors import IndexPlan, ModelIdentity, VectorIndex, VectorSource, check_identity
from kb.store.files import read_arrays, write_arrays

MEANS_FILE = "language_means.npz"
STATS_FILE = "score_stats.npz"  # the running sums of the statistics, saved with the index
PASSAGE_SLICE = 8  # passages embedded per model call, so a query never waits long
STATS_DRIFT = 0.05  # compute the sums again once removals reach 5 % of the index


class DenseIndex:
    """An encoder bound to the store: embeds, indexes and scores chunks calibrated per language.

    Args:
        store: what the index reads and records in the store (a ``VectorSource``, which
            ``kb.store.Store`` is).
        slot: None for the main encoder (vectors in ``chunks.vector``), else the name under which
            this encoder's vectors are stored.
        extra: settings recorded in the index config; a change rebuilds the index.
        alignment: the cross-language correction applied after centring (None: none); its
            fingerprint is recorded in the index config beside ``extra``.
        plan: which FAISS index kind the library's size gets (``KB_INDEX``).
    """

    def __init__(
        self,
        store: VectorSource,
        embedder: Embedder,
        folder: Path,
        slot: str | None,
        extra: dict[str, Any],
        alignment: Alignment | None = None,
        plan: IndexPlan | None = None,
    ) -> None:
        self.store, self.embedder, self.folder, self.slot = store, embedder, folder, slot
        self.alignment = alignment
        self.plan = plan or IndexPlan()
        self.extra = extra
        self._vectors: VectorIndex | None = None
        self._means: LanguageMeans | None = None
        self._moments: Moments | None = None  # running sums of the indexed vectors
        self._stats: LanguageStats | None = None  # derived from them, until they change
        self._removed = 0  # chunks removed since the sums were computed
        self._model_turn = FairLock()  # one model call at a time, in arrival order

    @property
    def extra(self) -> dict[str, Any]:
        """The settings recorded in the index config: those given, and the alignment."""
        alignment = "off" if self.alignment is None else self.alignment.fingerprint
        return {**self._extra, "alignment": alignment}

    @extra.setter
    def extra(self, value: dict[str, Any]) -> None:
        self._extra = dict(value)

    @property
    def identity(self) -> ModelIdentity:
        e = self.embedder
        return ModelIdentity(e.name, e.dim, e.fingerprint, e.numerics)

    @property
    def state_key(self) -> str:
        return "model" if self.slot is None else f"model:{self.slot}"

    def open(self) -> VectorIndex:
        """Open this encoder's FAISS index (rebuilt from the store when the saved one is
        missing, stale or from another model) and its language means: the slow, explicit step
        before ``vectors`` can be used. Opening again is a no-op."""
        self.means()
        if self._vectors is None:
            self._vectors = VectorIndex.load_or_rebuild(
                self.folder,
                self.store,
                self.identity,
                self.extra,
                self.to_index,
                slot=self.slot,
                plan=self.plan,
            )
            self._vectors.exact = self.exact_vectors
        return self._vectors

    @property
    def vectors(self) -> VectorIndex:
        """The opened FAISS index (``open()`` first)."""
        if self._vectors is None:
            raise RuntimeError(f"The {self.embedder.name} index is not open; call open() first.")
        return self._vectors

    def means(self) -> LanguageMeans:
        """Per-language reference means of this encoder, computed once and cached on disk."""
        if self._means is None:
            path = self.folder / MEANS_FILE
            saved = read_arrays(path)
            fingerprint = self.embedder.fingerprint
            if saved is not None and str(saved.pop("fingerprint", "")) == fingerprint:
                self._means = LanguageMeans.from_arrays(saved)  # None: an older file
            if self._means is None:
                self._means = LanguageMeans.compute(self.embedder)
                arrays = self._means.to_arrays()
                write_arrays(path, {**arrays, "fingerprint": np.asarray(fingerprint)})
        return self._means

    def to_index(self, vectors: np.ndarray, langs: list[str]) -> np.ndarray:
        """Stored passage vectors -> indexed vectors (centred on their language's mean, then
        aligned)."""
        centred = self.means().center(vectors, langs, "passage")
        return centred if self.alignment is None else self.alignment.apply(centred, langs)

    def exact_vectors(self, ids: np.ndarray, lang: str | None = None) -> np.ndarray:
        """The exact indexed vectors of these chunks, from the stored ones (an IVF index
        holds quantised copies only); ``lang``: all of theirs, when the caller knows it.
        Read each time: a search keeps the scores it took (``index.search.EncoderQuery``)."""
        id_list = [int(i) for i in ids]
        wanted = list(dict.fromkeys(id_list))
        if not wanted:
            return np.zeros((0, self.identity.dim), dtype=np.float32)
        found, raw, langs = self.store.chunks.vectors_with_langs(
            wanted, self.identity.dim, slot=self.slot, lang=lang
        )
        by_id = dict(zip(found, self.to_index(raw, langs), strict=True))
        if len(found) < len(wanted):  # a chunk deleted since the index was read:
            gone = np.asarray([c for c in wanted if c not in by_id], dtype=np.int64)
            approx = self.vectors.index.reconstruct_batch(gone)
            by_id.update(zip(gone.tolist(), approx, strict=True))
        return np.stack([by_id[cid] for cid in id_list]).astype(np.float32, copy=False)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        """Passage vectors, a few texts per model call.

        A server embeds an ingest job's passages while it answers searches. The model is
        taken in turn (first come, first served) one call at a time, so a query waits at most
        for one slice of PASSAGE_SLICE texts (about a second on 2 cores), and a stream of
        queries cannot starve the ingest either. The texts are embedded shortest first, so
        a slice pads its texts to a length close to their own (a record's short last chunk
        no longer pads to a full one), and returned in their order.
        """
        step = max(min(int(getattr(self.embedder, "batch_size", PASSAGE_SLICE)), PASSAGE_SLICE), 1)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        parts = []
        for start in range(0, len(texts), step):
            part = [texts[i] for i in order[start : start + step]]
            with self._model_turn:
                parts.append(self.embedder.encode(part, kind="passage"))
        if not parts:
            return self.embedder.encode([], kind="passage")
        out = np.empty_like(parts[0], shape=(len(texts), parts[0].shape[1]))
        out[order] = np.concatenate(parts)
        return out

    def embed_query(self, text: str, lang: str) -> np.ndarray:
        """The query's centred, normalised vector for this encoder."""
        with self._model_turn:  # a tokenizer must not be used by two threads at once
            vec = self.embedder.encode([text], kind="query")
        centred = self.means().center(vec, [lang], "query")
        return (centred if self.alignment is None else self.alignment.apply(centred, [lang]))[0]

    def add(self, ids: list[int], vectors: np.ndarray, langs: list[str]) -> None:
        """Index these chunks' vectors, with the values the store keeps for them: the index
        then holds what a rebuild from the store would."""
        indexed = self.to_index(self.store.chunks.as_stored(vectors), langs)
        # sums not read yet are computed later from the store, which holds these chunks
        counted = self._moments is not None
        self.open().add(ids, indexed, langs)
        if self._moments is not None and counted:
            self._moments.add(indexed, langs)
            self._stats = None

    def remove(self, ids: list[int]) -> None:
        before = self.open().size
        self.open().remove(ids)
        self._removed += before - self.open().size

    def save(self, generation: int | None = None) -> None:
        """Write the index, stamped with the store generation it mirrors (default: the one
        this process follows, ``Store.mirrored_generation``); a stale stamp makes the next
        loader rebuild from SQLite. The running statistics are saved with it."""
        if generation is None:
            generation = self.store.mirrored_generation()
        unfit = self.plan.unfit(self.open())
        if unfit is not None:  # the library grew past (or shrank under) its index kind
            self._vectors = self._rebuilt()
            self._vectors.rebuilt_because = unfit
        self.open().save(self.folder, self.identity, generation, self.extra)
        if self._moments is not None:
            self._write_moments(generation)

    def moments(self) -> Moments:
        """The running per-language sums the score statistics come from: those saved with
        the index when they mirror the same store generation and settings, else computed
        from every stored vector (once; from then on kept up to date as chunks come in)."""
        if self._moments is None or self._removed > STATS_DRIFT * max(self.open().size, 1):
            saved = None if self._moments is not None else self._read_moments()
            self._moments = saved or self._computed_moments()
            self._removed, self._stats = 0, None
        return self._moments

    def stats(self) -> LanguageStats:
        """Per-language score statistics of the indexed chunks.

        They come from running sums (``Moments``): a new chunk is counted in as it is added,
        so a growing library is never read again. A removed chunk is not counted out (its
        language is gone with it from the store); once removals pass STATS_DRIFT of the
        index, the sums are computed again from the store.
        """
        moments = self.moments()
        if self._stats is None:
            means = self.means()
            if self.alignment is not None:
                means = aligned_means(means, self.alignment)
            prior, queries = means.reference_stats(), means.typical_queries()
            self._stats = moments.stats(prior, queries=queries)
        return self._stats

    def _computed_moments(self) -> Moments:
        """The sums over every stored vector (O(chunks x dim²)), saved at once."""
        moments = Moments.empty(self.identity.dim)
        for _, vecs, langs in self.store.chunks.iter_vectors(self.identity.dim, slot=self.slot):
            moments.add(self.to_index(vecs, langs), langs)
        self._moments = moments
        self._write_moments(self.store.generation())
        return moments

    def _stats_key(self) -> str:
        """What the saved sums were computed with: the model, the alignment, and the
        settings recorded in the index (chunking, the calibration version)."""
        return json.dumps({"model": self.embedder.fingerprint, **self.extra}, sort_keys=True)

    def _write_moments(self, generation: int) -> None:
        if self._moments is None:
            return
        meta = {"key": self._stats_key(), "generation": generation, "removed": self._removed}
        arrays = {"meta": np.asarray(json.dumps(meta)), **self._moments.to_arrays()}
        try:
            write_arrays(self.folder / STATS_FILE, arrays)
        except OSError:
            pass  # a read-only or full disk: the next start computes them again

    def _read_moments(self) -> Moments | None:
        """The sums saved with the index, if made with the same model, alignment and
        settings, at the store generation the store is at; None otherwise."""
        saved = read_arrays(self.folder / STATS_FILE)
        if saved is None or "meta" not in saved or "langs" not in saved:
            return None
        meta = json.loads(str(saved["meta"]))
        if meta.get("key") != self._stats_key():
            return None
        if meta.get("generation") != self.store.generation():
            return None  # written before (or after) changes this index holds
        try:
            moments = Moments.from_arrays(saved)
        except (KeyError, ValueError):
            return None
        self._removed = int(meta.get("removed", 0))
        return moments if moments.dim == self.identity.dim else None

    def _forget_stats(self) -> None:
        """The vectors were replaced: the sums in memory and on disk no longer hold."""
        self._moments, self._stats, self._removed = None, None, 0
        (self.folder / STATS_FILE).unlink(missing_ok=True)

    def rebuild(self) -> None:
        """Rebuild the FAISS index from the vectors in SQLite and save it."""
        self._forget_stats()
        generation = self.store.generation()
        self._vectors = self._rebuilt()
        self.save(generation)

    def _rebuilt(self) -> VectorIndex:
        """A new index of the stored vectors, of the kind the plan wants for their number."""
        dim = self.identity.dim
        index = VectorIndex.rebuild(self.store, dim, self.to_index, self.slot, self.plan)
        index.exact = self.exact_vectors
        return index

    def reset(self) -> None:
        """Forget the store's recorded model and rebuild from the (re-embedded) vectors."""
        self._forget_stats()
        self.store.clear_state(self.state_key)
        check_identity(self.store, self.identity, self.state_key)
        generation = self.store.generation()
        self._vectors = self._rebuilt()
        self.save(generation)


def aligned_means(means: LanguageMeans, alignment: Alignment) -> LanguageMeans:
    """``means`` whose centred reference sample and typical queries went through
    ``alignment``, as indexed vectors and queries do: the statistics' shrinkage target and
    score floor then live in the same space as the library's vectors."""
    sample = {lang: alignment.apply(v, [lang] * len(v)) for lang, v in means.sample.items()}
    queries = {lang: alignment.apply(v, [lang] * len(v)) for lang, v in means.queries.items()}
    return dataclasses.replace(means, sample=sample, queries=queries)


class FairLock:
    """A lock granted in arrival order (a ticket lock): no waiter is overtaken forever."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    def __enter__(self) -> None:
        with self._changed:
            ticket = self._next_ticket
            self._next_ticket += 1
            self._changed.wait_for(lambda: self._serving == ticket)

    def __exit__(self, *exc: object) -> None:
        with self._changed:
            self._serving += 1
            self._changed.notify_all()
