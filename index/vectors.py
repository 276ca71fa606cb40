"""The FAISS vector index: ``IndexIDMap2`` over inner product, ids = SQLite chunk ids.

The index folder describes itself (``config.json``: model, dim, fingerprint, normalisation,
library versions, times, and the store ``generation`` it mirrors). SQLite keeps every vector,
so a missing or stale index file is rebuilt from it instead of being trusted. ``index`` does
not import the store: what it reads and records there is the ``VectorSource`` protocol below,
which ``kb.store.Store`` satisfies.
"""

from __future__ import annotations

import json
import logging
import platform
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from kb.errors import IndexMismatch, StoreError
from kb.store.files import read_faiss, read_json, sha256_file, write_faiss, write_json

INDEX_FILE = "vectors.faiss"
Transform = Callable[[np.ndarray, list[str]], np.ndarray]
CONFIG_FILE = "config.json"

log = logging.getLogger(__name__)


class StoredVectors(Protocol):
    """The stored vectors of the chunks (``store.chunks``)."""

    def iter_vectors(
        self, dim: int, *, slot: str | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, list[str]]]:
        """(chunk ids, float32 vectors, chunk languages) of every embedded chunk, in id order;
        ``slot``: which encoder's vectors (None: the main encoder's)."""
        ...

    def vector_ids(self, *, slot: str | None = None) -> np.ndarray:
        """The ids of every embedded chunk, in id order (int64); ``slot`` as above."""
        ...


class StoreCounts(Protocol):
    """The store's counts (``store.papers``); ``stats()["chunks"]`` is its number of chunks."""

    def stats(self) -> dict[str, Any]: ...


class VectorSource(Protocol):
    """What the vector indexes read and record in the store, and no more (``kb.store.Store``).

    The stored vectors an index is built from, the ``generation`` they are at (an index file
    records the one it mirrors), and named state: which model made the vectors.
    """

    @property
    def path(self) -> Path: ...
    @property
    def chunks(self) -> StoredVectors: ...
    @property
    def papers(self) -> StoreCounts: ...
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

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.name, "dim": self.dim, "fingerprint": self.fingerprint}


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as e:  # pragma: no cover - a broken install
        raise ImportError("faiss is not available - pip install faiss-cpu") from e
    return faiss


class VectorIndex:
    """Exact inner-product search over L2-normalised chunk vectors."""

    def __init__(self, dim: int) -> None:
        faiss = _faiss()
        self.dim = dim
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.rebuilt_because: str | None = None  # why a saved file was not used, on load

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def add(self, ids: list[int] | np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            vecs = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
            self.index.add_with_ids(vecs, np.asarray(ids, dtype=np.int64))

    def remove(self, ids: list[int] | np.ndarray) -> None:
        if len(ids):
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The indexed vectors of the given chunk ids (all must be present)."""
        if len(ids) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.index.reconstruct_batch(np.asarray(ids, dtype=np.int64))

    def ids(self) -> np.ndarray:
        return _faiss().vector_to_array(self.index.id_map).astype(np.int64)

    def search(
        self, query: np.ndarray, k: int, only: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top ``k`` (chunk id, score) for one query vector, optionally among ``only`` ids."""
        if self.size == 0 or k <= 0 or (only is not None and len(only) == 0):
            return []
        faiss = _faiss()
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.dim)
        params = None
        if only is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(only.astype(np.int64)))
        scores, ids = self.index.search(q, min(k, self.size), params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i != -1]

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
    ) -> VectorIndex:
        """Open the saved index if it mirrors the store, else rebuild it from SQLite.

        Args:
            extra: settings recorded in config.json; if any differs, the index is rebuilt.
            transform: maps stored (raw) vectors and their languages to indexed vectors.
            slot: which stored vectors (None: the main encoder's).
        """
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
                loaded = cls(identity.dim)
                damage = cls.damage(folder, config)
                try:
                    loaded.index = None if damage else read_faiss(folder / INDEX_FILE)
                except StoreError as e:
                    damage = str(e)
                damage = damage or _mismatch(loaded, config, store.chunks.vector_ids(slot=slot))
                if damage is None:
                    return loaded
                log.warning("%s: %s; rebuilding it from the store", folder / INDEX_FILE, damage)
        index = cls.rebuild(store, identity.dim, transform, slot)
        index.save(folder, identity, store.generation(), extra)
        index.rebuilt_because = damage
        return index

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
        return generation, _faiss().vector_to_array(index.id_map).astype(np.int64)

    @classmethod
    def rebuild(
        cls, store: VectorSource, dim: int, transform: Transform, slot: str | None = None
    ) -> VectorIndex:
        index = cls(dim)
        for ids, vecs, langs in store.chunks.iter_vectors(dim, slot=slot):
            index.add(ids, transform(vecs, langs))
        return index


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
    if recorded is None or store.papers.stats()["chunks"] == 0:
        store.set_state(key, _identity_json(identity))
        return
    saved = json.loads(recorded)
    same_weights = saved.get("dim") == identity.dim and saved.get("fingerprint") == (
        identity.fingerprint
    )
    if same_weights:
        if saved.get("model") != identity.name:  # the same model under another name or path
            store.set_state(key, _identity_json(identity))
        return
    raise IndexMismatch(
        f"The index in {store.path.parent} was built with model {saved.get('model')!r} "
        f"(dim {saved.get('dim')}, fingerprint {saved.get('fingerprint')}), but the current "
        f"model is {identity.name!r} (dim {identity.dim}, fingerprint {identity.fingerprint}). "
        f"Run `kb reindex` to re-embed every paper with {identity.name!r}, "
        f"or set KB_MODEL={saved.get('model')} to keep using the old one."
    )


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
