"""The FAISS vector index over inner product, ids = SQLite chunk ids.

Two kinds (``IndexPlan``): exact (``IndexIDMap2`` over ``IndexFlatIP``) while the library is
small, and, past ``IVF_MIN_CHUNKS`` chunks, an inverted-file index of 8-bit scalar-quantised
vectors (``IVF{lists},SQ8``, 1 byte a dimension instead of 4) trained from the stored vectors.
The approximate index proposes candidates and scores them from its 8-bit vectors; the best of
them (``RESCORE_TOP`` per encoder and language) are scored again from the exact stored vectors
(``VectorIndex.exact``), so the chunks a search ranks first score as an exact index scores them,
and the rest are off by a few thousandths (``scores_of``, docs/PERFORMANCE.md).

Each document language has inverted lists of its own, trained on its own vectors, and a
search for one language probes that language's lists only. With lists shared by all languages
the lists nearest a query are those of its own language (the known trap), and the best chunks
of the other language lie in lists never probed: measured on 100k chunks, recall@10 within a
language fell to 0.61 at 32 probes.

The index folder describes itself (``config.json``: model, dim, fingerprint, normalisation,
library versions, times, and the store ``generation`` it mirrors). SQLite keeps every vector,
so a missing or stale index file is rebuilt from it instead of being trusted. ``index`` does
not import the store: what it reads and records there is the ``VectorSource`` protocol below,
which ``kb.store.Store`` satisfies.
"""

from __future__ import annotations

import json
import logging
import math
import platform
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from index.chunkmap import held
from kb.errors import IndexMismatch, StoreError
from kb.store.files import read_faiss, read_json, sha256_file, write_faiss, write_json

INDEX_FILE = "vectors.faiss"
FLAT, IVF = "flat", "ivf"
# Past this many chunks the automatic plan builds an IVF index (docs/PERFORMANCE.md: where an
# exact search of both encoders starts to cost more than the rest of a search).
IVF_MIN_CHUNKS = 100_000
IVF_MIN_TRAIN = 1_000  # fewer vectors than this are always searched exactly
TRAIN_PER_LIST = 40  # training vectors per inverted list (FAISS warns under 39)
RETRAIN_GROWTH = 4.0  # an IVF index is trained again once the library is 4x its training size
# Inverted lists of the language searched per query (all when it has fewer): measured for
# recall@200 >= 0.99 against exact search, 300 of 880 lists per language at 100k chunks gave
# 0.990, 256 of 2,811 at 1M 0.990 (docs/PERFORMANCE.md). The lists grow as sqrt(chunks), so a
# fixed number searches a shrinking share of a growing library.
NPROBE_DEFAULT = 300
PROBE_DEPTH = 8  # allowed vectors in the searched lists per result wanted, at least
# An IVF index's candidates of one search, per encoder and language, scored again from the
# exact vectors: the best by their 8-bit scores (docs/PERFORMANCE.md: recall@10 after it).
RESCORE_TOP = 50
# Memory a vector takes beyond its values: the id and the id map (measured on 500k vectors:
# 1,587 bytes a 384-dim vector exact, 510 in IVF, whose lists also grow by doubling).
ID_BYTES = {FLAT: 56, IVF: 128}
Transform = Callable[[np.ndarray, list[str]], np.ndarray]
CONFIG_FILE = "config.json"
T = TypeVar("T")

log = logging.getLogger(__name__)


class StoredVectors(Protocol):
    """The stored vectors of the chunks (``store.chunks``)."""

    def any(self) -> bool:
        """Whether the store holds a chunk at all."""
        ...

    def lang_counts(self, *, slot: str | None = None) -> dict[str, int]:
        """Embedded chunks per chunk language; ``slot`` as below."""
        ...

    def iter_vectors(
        self, dim: int, *, slot: str | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, list[str]]]:
        """(chunk ids, float32 vectors, chunk languages) of every embedded chunk, in id order;
        ``slot``: which encoder's vectors (None: the main encoder's)."""
        ...

    def as_stored(self, vectors: np.ndarray) -> np.ndarray:
        """``vectors`` (float32) with the values the store gives back for them."""
        ...

    def vector_ids(self, *, slot: str | None = None) -> np.ndarray:
        """The ids of every embedded chunk, in id order (int64); ``slot`` as above."""
        ...

    def vectors_with_langs(
        self, chunk_ids: list[int], dim: int, *, slot: str | None = None, lang: str | None = None
    ) -> tuple[list[int], np.ndarray, list[str]]:
        """(ids found, their stored float32 vectors, their languages), in the given order;
        ids without a stored vector are left out; ``lang``: every id's, known already."""
        ...


class VectorSource(Protocol):
    """What the vector indexes read and record in the store, and no more (``kb.store.Store``).

    The stored vectors an index is built from, the ``generation`` they are at (an index file
    records the one it mirrors), and named state: which model made the vectors.
    """

    @property
    def path(self) -> Path: ...
    @property
    def chunks(self) -> StoredVectors: ...
    def generation(self) -> int: ...
    def mirrored_generation(self) -> int: ...
    def get_state(self, name: str) -> str | None: ...
    def set_state(self, name: str, value: str) -> None: ...
    def clear_state(self, name: str) -> None: ...


@dataclass(frozen=True)
class ModelIdentity:
    """Which model made the vectors; two identities must match to share an index."""

    name: str
    dim: int
    fingerprint: str
    numerics: str = "float"  # see Embedder.numerics; stores from before it are "float"

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "dim": self.dim,
            "fingerprint": self.fingerprint,
            "numerics": self.numerics,
        }


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as e:  # pragma: no cover - a broken install
        raise ImportError("faiss is not available - pip install faiss-cpu") from e
    return faiss


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run an IVF search on one OpenMP thread, then give the calling thread its count back.

    One query needs no team; with two, a search at 10k chunks took 149 ms instead of 79 (the
    query's embedding was slowed down around it). FAISS and torch share one OpenMP runtime
    here, so the count is restored at once: setting it to 1 for good halved torch's threads
    (query embedding 1.7 times slower).
    """
    faiss = _faiss()
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


@dataclass(frozen=True)
class IndexPlan:
    """Which kind of FAISS index a library of a given size gets (``KB_INDEX``).

    Attributes:
        kind: ``auto`` (exact below ``ivf_min`` chunks, IVF from there), ``flat`` or ``ivf``
            (IVF from ``IVF_MIN_TRAIN`` chunks: fewer cannot train it).
        ivf_min: where ``auto`` switches to IVF (``KB_IVF_MIN_CHUNKS``).
        nprobe: inverted lists of the language searched per query; 0: ``NPROBE_DEFAULT``.
    """

    kind: str = "auto"
    ivf_min: int = IVF_MIN_CHUNKS
    nprobe: int = 0

    def kind_for(self, size: int, current: str | None = None) -> str:
        """The kind an index of ``size`` vectors should be. An automatic IVF index stays one
        until the library shrinks under half the threshold, so a library near it does not
        flip between kinds on every save."""
        if size < IVF_MIN_TRAIN or self.kind == FLAT:
            return FLAT
        if self.kind == IVF:
            return IVF
        threshold = self.ivf_min // 2 if current == IVF else self.ivf_min
        return IVF if size >= threshold else FLAT

    def unfit(self, index: VectorIndex) -> str | None:
        """Why ``index`` no longer suits its size (another kind, or an IVF index trained on
        a library a quarter of today's), or None when it does."""
        want = self.kind_for(index.size, index.kind)
        if want != index.kind:
            name = "an IVF index" if want == IVF else "an exact index"
            return f"the library has {index.size} chunks: {name} suits it"
        if index.kind == IVF and index.size > RETRAIN_GROWTH * max(index.trained_on, 1):
            return f"the library grew from {index.trained_on} to {index.size} chunks since training"
        return None

    def lists_for(self, size: int) -> int:
        """Inverted lists for ``size`` vectors: about 4 * sqrt(size), each trainable."""
        return int(max(1, min(4 * np.sqrt(size), size // TRAIN_PER_LIST, 65_536)))

    def probes(self, lists: int, k: int = 0, among: int = 0) -> int:
        """Lists to search, of a language's ``lists``, for ``k`` results among ``among``
        allowed vectors: ``nprobe`` (or NPROBE_DEFAULT), and enough lists that they hold
        about PROBE_DEPTH * k allowed vectors, so a deep search is as thorough as a shallow
        one."""
        base = self.nprobe if self.nprobe > 0 else NPROBE_DEFAULT
        if k and among:
            base = max(base, math.ceil(PROBE_DEPTH * k * lists / among))
        return min(lists, base)


class VectorIndex:
    """Inner-product search over L2-normalised chunk vectors: exact, or IVF (see module).

    Attributes:
        exact: reads the exact indexed vectors of chunk ids (``DenseIndex`` sets it from the
            store): an IVF index keeps only quantised ones, and scores candidates with these.
        trained_on: how many vectors an IVF index was trained from (0 for an exact index).
    """

    def __init__(self, dim: int, plan: IndexPlan | None = None) -> None:
        faiss = _faiss()
        self.dim = dim
        self.plan = plan or IndexPlan()
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.kind = FLAT
        self.trained_on = 0
        self.lists_of: dict[str, tuple[int, int]] = {}  # IVF: each language's lists
        self.centroids = np.zeros((0, dim), dtype=np.float32)  # IVF: every list's centroid
        self.exact: Callable[[np.ndarray, str | None], np.ndarray] | None = None
        self.rebuilt_because: str | None = None  # why a saved file was not used, on load
        self._selectors: _Recent[tuple[np.ndarray, Any]] = _Recent()  # (bits, selector)
        self._rows: _FlatRows | None = None  # an exact index's row ids, until it changes

    @classmethod
    def trained(
        cls, dim: int, plan: IndexPlan, samples: dict[str, np.ndarray], sizes: dict[str, int]
    ) -> VectorIndex:
        """An empty IVF index whose lists are trained per language: ``samples`` holds indexed
        vectors spread over each language's ``sizes[lang]`` vectors."""
        faiss = _faiss()
        out = cls(dim, plan)
        centroids, start = [], 0
        for lang in sorted(samples):
            sample = np.ascontiguousarray(samples[lang], dtype=np.float32)
            lists = min(plan.lists_for(sizes[lang]), len(sample))  # samples are never empty
            if lists == 1:
                part = sample.mean(axis=0, keepdims=True)
            else:  # k-means as FAISS trains an IVF index's lists for inner product
                probe = faiss.index_factory(dim, f"IVF{lists},Flat", faiss.METRIC_INNER_PRODUCT)
                probe.train(sample)
                part = probe.quantizer.reconstruct_n(0, lists)
            centroids.append(part)
            out.lists_of[lang] = (start, start + lists)
            start += lists
        quantizer = faiss.IndexFlatIP(dim)
        quantizer.add(np.concatenate(centroids).astype(np.float32))
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, dim, start, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        index.own_fields = True  # the index frees its quantizer
        quantizer.this.disown()
        index.train(np.concatenate(list(samples.values())))  # the 8-bit ranges only
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # remove and reconstruct by id
        out.index, out.kind, out.trained_on = index, IVF, sum(sizes.values())
        out.centroids = np.concatenate(centroids).astype(np.float32)
        return out

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def add(self, ids: list[int] | np.ndarray, vectors: np.ndarray, langs: list[str]) -> None:
        """Add vectors (of chunks in ``langs``): in IVF, each to the nearest list of its own
        language (of any language when its language has none)."""
        if not len(ids):
            return
        vecs = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if self.kind == FLAT:
            self.index.add_with_ids(vecs, ids)
            self._rows = None
            return
        assign = np.empty(len(ids), dtype=np.int64)
        lang_of = np.asarray(langs)
        for lang in set(langs):
            rows = np.flatnonzero(lang_of == lang)
            start, end = self.lists_of.get(lang, (0, len(self.centroids)))
            assign[rows] = start + np.argmax(vecs[rows] @ self.centroids[start:end].T, axis=1)
        faiss = _faiss()
        self.index.add_core(
            len(ids), faiss.swig_ptr(vecs), faiss.swig_ptr(ids), faiss.swig_ptr(assign)
        )

    def remove(self, ids: list[int] | np.ndarray) -> None:
        if len(ids):
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))
            self._rows = None

    def vectors_of(self, ids: np.ndarray, lang: str | None = None) -> np.ndarray:
        """The exact indexed vectors of the given chunk ids (all must be present); ``lang``:
        the language of every one of them, when the caller knows it."""
        if len(ids) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids = np.asarray(ids, dtype=np.int64)
        if self.kind != FLAT and self.exact is not None:
            return self.exact(ids, lang)
        return self.index.reconstruct_batch(ids)

    def scores_of(self, ids: np.ndarray, query: np.ndarray, lang: str | None = None) -> np.ndarray:
        """Inner products of ``query`` with the indexed vectors of ``ids`` (all present;
        ``lang``: the language of every one, when the caller knows it).

        Exact for an exact index. An IVF index scores them from its 8-bit vectors first, and
        the ``RESCORE_TOP`` best again from the exact ones (``exact``: at a million chunks
        each read from SQLite costs about 10 us, and a search scores some 800 candidates per
        encoder); the others keep the quantised score, off by a few thousandths
        (docs/PERFORMANCE.md), which no longer decides their place.
        """
        ids = np.asarray(ids, dtype=np.int64)
        q = np.asarray(query, dtype=np.float32).reshape(self.dim)
        if len(ids) == 0:
            return np.zeros(0, dtype=np.float32)
        scores = self.index.reconstruct_batch(ids) @ q
        if self.kind == FLAT or self.exact is None:
            return scores
        top = np.arange(len(ids))
        if len(ids) > RESCORE_TOP:
            top = np.argpartition(-scores, RESCORE_TOP - 1)[:RESCORE_TOP]
        scores[top] = self.exact(ids[top], lang) @ q
        return scores

    def ids(self) -> np.ndarray:
        """The chunk ids in the index (unordered)."""
        return index_ids(self.index)

    def search(
        self, query: np.ndarray, k: int, only: np.ndarray | None = None, lang: str | None = None
    ) -> list[tuple[int, float]]:
        """Top ``k`` (chunk id, score) for one query vector, optionally among ``only`` ids
        (sorted, as ``store.chunks.ids_by_lang`` gives them), all of language ``lang`` when
        given (an IVF index then probes that language's lists only). An IVF index's scores
        are approximate: take them again with ``vectors_of``."""
        if self.size == 0 or k <= 0 or (only is not None and len(only) == 0):
            return []
        faiss = _faiss()
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.dim)
        sel = None if only is None else self._selector(only)
        k = min(k, self.size)
        if self.kind == FLAT:
            params = None if sel is None else faiss.SearchParameters(sel=sel)
            scores, ids = self.index.search(q, k, params=params)
        else:
            start, end = self.lists_of.get(lang or "", (0, len(self.centroids)))
            among = self.size if only is None else len(only)
            probes = self.plan.probes(end - start, k, among)
            near = self.centroids[start:end] @ q[0]
            top = np.argsort(-near)[:probes]
            params = faiss.SearchParametersIVF(sel=sel, nprobe=len(top))
            assign = np.ascontiguousarray((top + start)[None], dtype=np.int64)
            near_top = np.ascontiguousarray(near[top][None], dtype=np.float32)
            scores = np.empty((1, k), dtype=np.float32)
            ids = np.empty((1, k), dtype=np.int64)
            # the C++ call: the Python wrapper of search_preassigned takes no parameters
            with _one_thread():
                self.index.search_preassigned_c(
                    1, faiss.swig_ptr(q), k, faiss.swig_ptr(assign), faiss.swig_ptr(near_top),
                    faiss.swig_ptr(scores), faiss.swig_ptr(ids), False, params,
                )  # fmt: skip
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i != -1]

    def search_langs(
        self, query: np.ndarray, k: int, only: dict[str, np.ndarray]
    ) -> dict[str, list[tuple[int, float]]]:
        """``search`` among each language's allowed ids (``only``: language -> sorted ids), for
        one query. An exact index scores every vector once and keeps each language's best: a
        FAISS search per language with an id selector read the index once per language and
        tested every id (3.2 against 4.4 ms for two languages at 21k chunks). An IVF index
        searches each language's own lists, one search each."""
        if self.kind != FLAT or self.size == 0:
            return {lang: self.search(query, k, ids, lang) for lang, ids in only.items()}
        rows = self._flat_rows()
        faiss = _faiss()
        flat = faiss.downcast_index(self.index.index)
        vecs = faiss.rev_swig_ptr(flat.get_xb(), self.size * self.dim).reshape(-1, self.dim)
        scores = vecs @ np.asarray(query, dtype=np.float32).reshape(self.dim)
        out: dict[str, list[tuple[int, float]]] = {}
        for lang, ids in only.items():
            held = rows.rows_of(ids)
            s = scores[held]
            best = np.argpartition(-s, k - 1)[:k] if 0 < k < len(s) else np.arange(len(s))
            best = best[np.argsort(-s[best], kind="stable")][: max(k, 0)]
            out[lang] = list(zip(rows.ids[held[best]].tolist(), s[best].tolist(), strict=True))
        return out

    def _flat_rows(self) -> _FlatRows:
        if self._rows is None or len(self._rows.ids) != self.size:
            self._rows = _FlatRows(_faiss().vector_to_array(self.index.id_map))
        return self._rows

    def _selector(self, only: np.ndarray) -> Any:
        """A FAISS selector of the ids ``only``: a bitmap over the id range, kept for the
        last few arrays searched with (the unfiltered ones are the same arrays search after
        search, so each is packed once, not once per search and encoder)."""
        return self._selectors.get(only, _selector_of)[1]

    # -- persistence

    def save(
        self, folder: Path, identity: ModelIdentity, generation: int, extra: dict[str, Any]
    ) -> None:
        """Write the index then its config, each atomically; config last marks it complete.

        Args:
            extra: more settings to record, such as the chunking parameters.
        """
        write_faiss(self.index, folder / INDEX_FILE)
        config = _config(identity, generation, self.size, folder / CONFIG_FILE)
        config["checksum"] = sha256_file(folder / INDEX_FILE)  # checked on every load
        if self.kind == IVF:
            config["index_type"] = f"IVF{self.index.nlist},SQ8"
            config["lists"] = {lang: list(span) for lang, span in self.lists_of.items()}
        config["kind"], config["trained_on"] = self.kind, self.trained_on
        write_json(folder / CONFIG_FILE, {**config, **extra})

    @classmethod
    def load_or_rebuild(
        cls,
        folder: Path,
        store: VectorSource,
        identity: ModelIdentity,
        extra: dict[str, Any],
        transform: Transform,
        slot: str | None = None,
        plan: IndexPlan | None = None,
    ) -> VectorIndex:
        """Open the saved index if it mirrors the store (and is of the kind ``plan`` wants
        for its size), else rebuild it from SQLite.

        Args:
            extra: settings recorded in config.json; if any differs, the index is rebuilt.
            transform: maps stored (raw) vectors and their languages to indexed vectors.
            slot: which stored vectors (None: the main encoder's).
        """
        plan = plan or IndexPlan()
        check_identity(store, identity, "model" if slot is None else f"model:{slot}")
        damage: str | None = None
        config_path = folder / CONFIG_FILE
        config: dict[str, Any] = {}
        if config_path.is_file() and (folder / INDEX_FILE).is_file():
            try:
                config = read_json(config_path)
            except StoreError as e:  # damaged: rebuilt below
                damage = str(e)
            fresh = config.get("generation") == store.generation() and all(
                config.get(key) == value for key, value in extra.items()
            )
            if fresh and config.get("dim") == identity.dim:
                loaded = cls(identity.dim, plan)
                damage = cls.damage(folder, config)
                try:
                    loaded.index = None if damage else read_faiss(folder / INDEX_FILE)
                except StoreError as e:
                    damage = str(e)
                if damage is None:
                    damage = loaded.adopt(config)
                damage = damage or _mismatch(loaded, config, store.chunks.vector_ids(slot=slot))
                if damage is None and (unfit := plan.unfit(loaded)) is not None:
                    log.info("%s: %s; building it again", folder / INDEX_FILE, unfit)
                    damage = unfit
                elif damage is None:
                    return loaded
                else:
                    log.warning("%s: %s; rebuilding it from the store", folder / INDEX_FILE, damage)
        index = cls.rebuild(store, identity.dim, transform, slot, plan)
        index.save(folder, identity, store.generation(), extra)
        index.rebuilt_because = damage
        return index

    def adopt(self, config: dict[str, Any]) -> str | None:
        """Take the kind, training and language lists a loaded index was saved with (its
        ``config.json``); why they do not fit the index, or None."""
        self.kind = IVF if config.get("kind") == IVF else FLAT
        self.trained_on = int(config.get("trained_on") or 0)
        if self.kind == FLAT:
            return None if hasattr(self.index, "id_map") else "its config says exact, it is not"
        try:
            ivf = _faiss().extract_index_ivf(self.index)
            self.lists_of = {lang: (int(a), int(b)) for lang, (a, b) in config["lists"].items()}
        except (RuntimeError, KeyError, TypeError, ValueError) as e:
            return f"its IVF lists cannot be read ({e})"
        self.centroids = ivf.quantizer.reconstruct_n(0, ivf.nlist)
        return None

    @staticmethod
    def damage(folder: Path, config: dict[str, Any] | None = None) -> str | None:
        """Why the saved index file in ``folder`` cannot be trusted (its SHA-256 is not the one
        recorded when it was saved, or none was recorded), or None when it matches."""
        if config is None:
            config = read_json(folder / CONFIG_FILE)
        recorded = config.get("checksum")
        if not isinstance(recorded, str):
            return "no checksum was recorded when it was saved"
        if sha256_file(folder / INDEX_FILE) != recorded:
            return "its bytes do not match the checksum recorded when it was saved"
        return None

    @classmethod
    def peek(cls, folder: Path) -> tuple[int, np.ndarray] | None:
        """(store generation, chunk ids) of the saved index in ``folder``; None if unreadable."""
        config_path, index_path = folder / CONFIG_FILE, folder / INDEX_FILE
        if not (config_path.is_file() and index_path.is_file()):
            return None
        try:
            generation = int(read_json(config_path).get("generation", -1))
            index = read_faiss(index_path)
        except (StoreError, TypeError, ValueError):
            return None
        return generation, index_ids(index)

    @classmethod
    def rebuild(
        cls,
        store: VectorSource,
        dim: int,
        transform: Transform,
        slot: str | None = None,
        plan: IndexPlan | None = None,
    ) -> VectorIndex:
        """A new index of the stored vectors, of the kind ``plan`` wants for their number
        (an IVF index is trained first, on a sample spread over the whole library)."""
        plan = plan or IndexPlan()
        sizes = store.chunks.lang_counts(slot=slot)
        if plan.kind_for(sum(sizes.values())) == IVF:
            samples = _samples(store, dim, transform, slot, plan, sizes)
            index = cls.trained(dim, plan, samples, sizes)
        else:
            index = cls(dim, plan)
        for ids, vecs, langs in store.chunks.iter_vectors(dim, slot=slot):
            index.add(ids, transform(vecs, langs), langs)
        return index


class _Recent(Generic[T]):
    """Values made from the last few id arrays, found by identity: a search passes the same
    arrays (the library's unfiltered ids per language) search after search."""

    def __init__(self, size: int = 4) -> None:
        self._items: list[tuple[np.ndarray, T]] = []
        self._size = size

    def get(self, ids: np.ndarray, make: Callable[[np.ndarray], T]) -> T:
        for seen, value in self._items:
            if seen is ids:
                return value
        value = make(ids)
        self._items = [(ids, value), *self._items[: self._size - 1]]
        return value


def _selector_of(only: np.ndarray) -> tuple[np.ndarray, Any]:
    """(its bits, a FAISS selector of the ids ``only``): the bits live as long as the selector."""
    faiss = _faiss()
    top = int(only[-1]) if len(only) else 0
    if top < 0 or top > 64 * len(only) + 1_000_000:  # sparse or odd ids: a hash set
        return np.zeros(0, np.uint8), faiss.IDSelectorBatch(only.astype(np.int64))
    mask = np.zeros(top + 1, dtype=bool)
    mask[only] = True
    bits = np.packbits(mask, bitorder="little")
    return bits, faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits))  # n in bytes


class _FlatRows:
    """Where each chunk id sits in an exact index (its row), and the rows of the id arrays
    searched lately."""

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = ids
        self._order = np.argsort(ids, kind="stable")
        self._sorted = ids[self._order]
        self._recent: _Recent[np.ndarray] = _Recent()

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """The rows of ``ids`` that the index holds (ids without a vector are left out)."""
        return self._recent.get(ids, lambda wanted: self._order[held(self._sorted, wanted)[1]])


def _samples(
    store: VectorSource,
    dim: int,
    transform: Transform,
    slot: str | None,
    plan: IndexPlan,
    sizes: dict[str, int],
) -> dict[str, np.ndarray]:
    """Per language (of ``sizes[lang]`` vectors), about TRAIN_PER_LIST indexed vectors per
    list it will have, taken at an even stride through the library (one read of every
    stored vector)."""
    every = {
        lang: max(1, n // max(plan.lists_for(n) * TRAIN_PER_LIST, 1)) for lang, n in sizes.items()
    }
    seen = dict.fromkeys(sizes, 0)
    out: dict[str, list[np.ndarray]] = {lang: [] for lang in sizes}
    for _, vecs, langs in store.chunks.iter_vectors(dim, slot=slot):
        lang_of = np.asarray(langs)
        for lang in set(langs):
            rows = np.flatnonzero(lang_of == lang)
            at = seen.get(lang, 0) + np.arange(len(rows))
            seen[lang] = int(at[-1]) + 1
            keep = rows[at % every.get(lang, 1) == 0]
            if len(keep):
                out.setdefault(lang, []).append(transform(vecs[keep], [lang] * len(keep)))
    return {lang: np.concatenate(parts) for lang, parts in out.items() if parts}


def bytes_per_vector(dim: int, kind: str) -> int:
    """Memory one vector takes in an index of ``kind`` (see ``ID_BYTES``)."""
    return dim * (4 if kind == FLAT else 1) + ID_BYTES[kind]


def index_ids(index: Any) -> np.ndarray:
    """The ids held by a FAISS index: an ``IndexIDMap2``'s map, or an IVF index's lists."""
    faiss = _faiss()
    if hasattr(index, "id_map"):
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    ivf = faiss.extract_index_ivf(index)
    lists = ivf.invlists
    parts = [
        faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
        for i in range(ivf.nlist)
        if lists.list_size(i)
    ]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def _mismatch(loaded: VectorIndex, config: dict[str, Any], stored: np.ndarray) -> str | None:
    """Why a loaded index does not mirror the store (count, ids), or None when it does."""
    if loaded.size != config.get("vectors") or loaded.size != len(stored):
        return f"it holds {loaded.size} vectors, the store {len(stored)}"
    if not np.array_equal(np.sort(loaded.ids()), stored):
        return "its chunk ids are not the store's"
    return None


def check_identity(store: VectorSource, identity: ModelIdentity, key: str = "model") -> None:
    """Refuse a store whose vectors were made by other weights; adopt it when it is empty.

    Models are compared by dimension and weight fingerprint, so the same model reached by
    another name (a hub name, a local path) is accepted.
    """
    recorded = store.get_state(key)
    if recorded is None or not store.chunks.any():
        store.set_state(key, _identity_json(identity))
        return
    saved = json.loads(recorded)
    same_weights = saved.get("dim") == identity.dim and saved.get("fingerprint") == (
        identity.fingerprint
    )
    numerics = saved.get("numerics", "float")
    if same_weights and numerics == identity.numerics:
        if saved.get("model") != identity.name:  # the same model under another name or path
            store.set_state(key, _identity_json(identity))
        return
    if same_weights:
        raise IndexMismatch(
            f"The vectors in {store.path.parent} were made with {_numerics(numerics)}, and "
            f"this KB_EMBED_BACKEND gives {_numerics(identity.numerics)}: they rank differently "
            "(docs/PERFORMANCE.md, embedding backends). Run `kb reindex` to re-embed every "
            "paper, or set KB_EMBED_BACKEND back."
        )
    raise IndexMismatch(
        f"The index in {store.path.parent} was built with model {saved.get('model')!r} "
        f"(dim {saved.get('dim')}, fingerprint {saved.get('fingerprint')}), but the current "
        f"model is {identity.name!r} (dim {identity.dim}, fingerprint {identity.fingerprint}). "
        f"Run `kb reindex` to re-embed every paper with {identity.name!r}, "
        f"or set KB_MODEL={saved.get('model')} to keep using the old one."
    )


def _numerics(numerics: str) -> str:
    if numerics == "float":
        return "float weights (KB_EMBED_BACKEND torch, onnx or openvino)"
    return f"int8 weights (KB_EMBED_BACKEND={numerics})"


def _identity_json(identity: ModelIdentity) -> str:
    return json.dumps(identity.as_dict(), sort_keys=True)


def _config(identity: ModelIdentity, generation: int, size: int, path: Path) -> dict[str, Any]:
    import faiss

    now = datetime.now(UTC).isoformat(timespec="seconds")
    created = now
    if path.is_file():
        try:
            created = read_json(path).get("created", now)
        except StoreError:  # a damaged config is replaced
            pass
    return {
        **identity.as_dict(),
        "normalized": True,
        "metric": "inner_product",
        "index_type": "IDMap2,Flat",
        "vectors": size,
        "generation": generation,
        "versions": {"faiss": faiss.__version__, "python": platform.python_version()},
        "created": created,
        "updated": now,
    }
