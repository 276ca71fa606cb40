"""Translation links between papers: which Chinese paper is a translation of which English one.

Application layer: reads each paper's vectors from the store (the normalised mean of its chunk
vectors, per encoder) and its identifiers, and hands them to ``index.linker``.
"""

from __future__ import annotations

import numpy as np

from index.dense import DenseIndex
from index.linker import find_translations
from kb.library.core import Core
from kb.store import Store


def paper_vectors(
    store: Store, side: DenseIndex, paper_of: dict[int, int]
) -> dict[int, np.ndarray]:
    """paper id -> the normalised mean of its chunks' stored vectors (one encoder)."""
    dim = side.identity.dim
    pids = sorted(set(paper_of.values()))
    row = {pid: r for r, pid in enumerate(pids)}
    sums = np.zeros((len(pids), dim), dtype=np.float64)
    for ids, vecs, _ in store.chunks.iter_vectors(dim, slot=side.slot):
        rows = np.asarray([row.get(paper_of.get(c, -1), -1) for c in ids.tolist()])
        keep = rows >= 0
        np.add.at(sums, rows[keep], vecs[keep])
    norms = np.maximum(np.linalg.norm(sums, axis=1), 1e-12)
    return {pid: sums[r] / norms[r] for pid, r in row.items() if norms[r] > 1e-12}


def find_links(store: Store, dense: list[DenseIndex]) -> list[tuple[int, int, float, str]]:
    """(paper a, paper b, score, reason) for every translation pair found in the library."""
    paper_of = store.chunks.paper_ids()
    langs = store.papers.langs()
    per_side = [paper_vectors(store, side, paper_of) for side in dense]
    ids = sorted(set.intersection(*(set(v) for v in per_side))) if per_side else []
    if len(ids) < 2:
        return []
    vectors = [np.stack([side[i] for i in ids]).astype(np.float32) for side in per_side]
    wids = store.works.work_ids()
    links = find_translations(vectors, [langs[i] for i in ids], [wids.get(i, set()) for i in ids])
    return [(ids[a], ids[b], score, reason) for a, b, score, reason in links]


def link_translations(core: Core) -> int:
    """Find which papers are translations of each other and record the links."""
    with core.lock:
        links = find_links(core.store, core.encoders())
        core.store.works.set_links(links)
        return len(links)
