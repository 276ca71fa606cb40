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
from index.calibration import LanguageMeans, LanguageStats
from index.embedder import Embedder
from index.vectors import ModelIdentity, VectorIndex, VectorSource, check_identity
from kb.store.files import read_arrays, write_arrays

MEANS_FILE = "language_means.npz"
STATS_FILE = "score_stats.npz"  # the last statistics computed, so that a start reuses them
PASSAGE_SLICE = 8  # passages embedded per model call, so a query never waits long
STATS_DRIFT = 0.05  # recompute the score statistics once the index grew or shrank by 5 %


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
    """

    def __init__(
        self,
        store: VectorSource,
        embedder: Embedder,
        folder: Path,
        slot: str | None,
        extra: dict[str, Any],
        alignment: Alignment | None = None,
    ) -> None:
        self.store, self.embedder, self.folder, self.slot = store, embedder, folder, slot
        self.alignment = alignment
        self.extra = extra
        self._vectors: VectorIndex | None = None
        self._means: LanguageMeans | None = None
        self._stats: tuple[int, LanguageStats] | None = None
        self._stats_saved_tried = False  # the saved statistics are read once, at first use
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
        return ModelIdentity(name=e.name, dim=e.dim, fingerprint=e.fingerprint)

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
            )
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

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        """Passage vectors, a few texts per model call.

        A server embeds an ingest job's passages while it answers searches. The model is
        taken in turn (first come, first served) one call at a time, so a query waits at most
        for one slice of PASSAGE_SLICE texts (about a second on 2 cores), and a stream of
        queries cannot starve the ingest either.
        """
        step = max(min(int(getattr(self.embedder, "batch_size", PASSAGE_SLICE)), PASSAGE_SLICE), 1)
        parts = []
        for start in range(0, len(texts), step):
            with self._model_turn:
                parts.append(self.embedder.encode(texts[start : start + step], kind="passage"))
        if not parts:
            return self.embedder.encode([], kind="passage")
        return np.concatenate(parts)

    def embed_query(self, text: str, lang: str) -> np.ndarray:
        """The query's centred, normalised vector for this encoder."""
        with self._model_turn:  # a tokenizer must not be used by two threads at once
            vec = self.embedder.encode([text], kind="query")
        centred = self.means().center(vec, [lang], "query")
        return (centred if self.alignment is None else self.alignment.apply(centred, [lang]))[0]

    def add(self, ids: list[int], vectors: np.ndarray, langs: list[str]) -> None:
        self.open().add(ids, self.to_index(vectors, langs))
        if self._stats is not None and not set(langs) <= set(self._stats[1].counts):
            self._stats = None  # a language the statistics have not seen

    def remove(self, ids: list[int]) -> None:
        self.open().remove(ids)

    def save(self, generation: int | None = None) -> None:
        """Write the index, stamped with the store generation it mirrors (default: the one
        this process follows, ``Store.mirrored_generation``); a stale stamp makes the next
        loader rebuild from SQLite."""
        if generation is None:
            generation = self.store.mirrored_generation()
        self.open().save(self.folder, self.identity, generation, self.extra)

    def stats(self) -> LanguageStats:
        """Per-language score statistics of the indexed chunks.

        They describe a population, which a few new papers barely move, and computing them
        reads every vector (O(chunks x dim²)). So they are recomputed only when the index
        size has drifted by more than STATS_DRIFT since, or a new language came in; searches
        during a long ingest stay fast.
        """
        size = self.vectors.size
        if self._stats is None and not self._stats_saved_tried:
            self._stats_saved_tried = True
            self._stats = self._read_stats()
        if self._stats is None or abs(size - self._stats[0]) > STATS_DRIFT * self._stats[0]:
            dim = self.identity.dim
            batches = [
                (self.to_index(vecs, langs), langs)
                for _, vecs, langs in self.store.chunks.iter_vectors(dim, slot=self.slot)
            ]
            means = self.means()
            if self.alignment is not None:
                means = aligned_means(means, self.alignment)
            prior, queries = means.reference_stats(), means.typical_queries()
            stats = LanguageStats.from_batches(batches, dim, prior, queries=queries)
            self._stats = (size, stats)
            self._write_stats(size, stats)
        return self._stats[1]

    def _stats_key(self) -> str:
        """What the saved statistics were computed with: the model, the alignment, and the
        settings recorded in the index (chunking, the calibration version)."""
        return json.dumps({"model": self.embedder.fingerprint, **self.extra}, sort_keys=True)

    def _write_stats(self, size: int, stats: LanguageStats) -> None:
        meta = {
            "key": self._stats_key(),
            "size": size,
            "counts": stats.counts,
            "shrunk": sorted(stats.shrunk_langs),
            "sd_floor": stats.sd_floor,
        }
        meta["langs"] = list(stats.mean)
        arrays = {"meta": np.asarray(json.dumps(meta))}
        for i, lang in enumerate(stats.mean):
            arrays[f"mean_{i}"], arrays[f"cov_{i}"] = stats.mean[lang], stats.cov[lang]
        try:
            write_arrays(self.folder / STATS_FILE, arrays)
        except OSError:
            pass  # a read-only or full disk: the next start computes them again

    def _read_stats(self) -> tuple[int, LanguageStats] | None:
        """The statistics saved by the last computation, if made with the same model,
        alignment and settings; None otherwise (they are computed again)."""
        saved = read_arrays(self.folder / STATS_FILE)
        if saved is None or "meta" not in saved:
            return None
        meta = json.loads(str(saved["meta"]))
        if meta.get("key") != self._stats_key():
            return None
        langs = meta["langs"]
        stats = LanguageStats(
            mean={lang: saved[f"mean_{i}"] for i, lang in enumerate(langs)},
            cov={lang: saved[f"cov_{i}"] for i, lang in enumerate(langs)},
            counts={k: int(v) for k, v in meta["counts"].items()},
            shrunk_langs=frozenset(meta["shrunk"]),
            sd_floor={k: float(v) for k, v in meta["sd_floor"].items()},
        )
        return int(meta["size"]), stats

    def _forget_stats(self) -> None:
        """The vectors were replaced: statistics in memory and on disk no longer hold."""
        self._stats = None
        self._stats_saved_tried = True
        (self.folder / STATS_FILE).unlink(missing_ok=True)

    def rebuild(self) -> None:
        """Rebuild the FAISS index from the vectors in SQLite and save it."""
        self._forget_stats()
        generation = self.store.generation()
        self._vectors = VectorIndex.rebuild(self.store, self.identity.dim, self.to_index, self.slot)
        self.save(generation)

    def reset(self) -> None:
        """Forget the store's recorded model and rebuild from the (re-embedded) vectors."""
        self._forget_stats()
        self.store.clear_state(self.state_key)
        check_identity(self.store, self.identity, self.state_key)
        generation = self.store.generation()
        self._vectors = VectorIndex.rebuild(self.store, self.identity.dim, self.to_index, self.slot)
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
