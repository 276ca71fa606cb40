"""Translation links between papers: which Chinese paper is a translation of which English one.

Application layer: reads each paper's vectors from the store (the normalised mean of its chunk
vectors, per encoder) and its identifiers, and hands them to ``index.linker``.

An identifier shared across languages is a sure link only when the two texts agree: slides
that cite a paper once carried its arXiv id, and were linked to it as its "translation".
``trusted_ids`` drops a shared identifier from a pair whose texts disagree; the pair can
still be linked by its embeddings, as any other pair.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from index.dense import DenseIndex
from index.linker import UNKNOWN_LANGS, find_translations
from kb.library.core import Core
from kb.store import Store

# Texts agree when the language-centred cosine of the two papers' vectors (each language's
# reference mean removed, as ``index.calibration`` centres search vectors) clears each
# encoder's floor on average. Measured on ../shared/data/xling/safety_pairs_dev.jsonl, 493
# English/Chinese translations (title + abstract, chunked and embedded as ingest does;
# 2026-12): multilingual-e5-small gives the translations 0.355 at least (1st percentile
# 0.378), two different safety papers 0.232 (median; 99th percentile 0.415); mUSE 0.546
# (0.643) against 0.417 (0.642). The floors lie under every translation: with both
# encoders they keep all 493 and reject 88 % of the pairs of different papers. An encoder
# without a measured floor does not vote; with none, shared identifiers are trusted.
AGREE_FLOORS = {"multilingual-e5-small": 0.30, "muse-v3": 0.50}


class Centring(Protocol):
    """What centres an encoder's vectors on their language (``index.calibration.LanguageMeans``)."""

    def center(self, vectors: np.ndarray, langs: list[str], kind: str) -> np.ndarray: ...


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


def trusted_ids(
    ids: Sequence[set[str]],
    langs: Sequence[str],
    vectors: Sequence[np.ndarray],
    means: Sequence[Centring],
    floors: Sequence[float],
) -> list[set[str]]:
    """Each paper's identifiers, without those it shares with a paper in another language
    whose text disagrees with its own (see ``AGREE_FLOORS``).

    Args:
        ids: each paper's identifiers (``ingest.dedup.work_ids``).
        langs: each paper's language.
        vectors: per encoder, one row per paper (its normalised mean chunk vector).
        means: per encoder, the language reference means that centre its vectors.
        floors: per encoder, the centred cosine a translation reaches.
    """
    holders: dict[str, list[int]] = defaultdict(list)
    for paper, found in enumerate(ids):
        for work_id in found:
            holders[work_id].append(paper)
    kept = [set(found) for found in ids]
    centred = [m.center(v, list(langs), "passage") for v, m in zip(vectors, means, strict=True)]

    def agree(a: int, b: int) -> bool:
        margin = [float(c[a] @ c[b]) - floor for c, floor in zip(centred, floors, strict=True)]
        return not margin or sum(margin) >= 0

    for work_id, papers in holders.items():
        for a in papers:
            others = [b for b in papers if _across(langs[a], langs[b])]
            # A paper keeps the identifier if some paper in another language that shares it
            # agrees with it: the slides lose it, the paper and its translation keep it.
            if others and not any(agree(a, b) for b in others):
                kept[a].discard(work_id)
    return kept


def _across(a: str, b: str) -> bool:
    """Two known, different languages (same-language duplicates are ingest.dedup's)."""
    return a != b and not {a, b} & UNKNOWN_LANGS


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
    paper_langs = [langs[i] for i in ids]
    voters = [k for k, side in enumerate(dense) if side.embedder.name in AGREE_FLOORS]
    trusted = trusted_ids(
        [wids.get(i, set()) for i in ids],
        paper_langs,
        [vectors[k] for k in voters],
        [dense[k].means() for k in voters],
        [AGREE_FLOORS[dense[k].embedder.name] for k in voters],
    )
    links = find_translations(vectors, paper_langs, trusted)
    return [(ids[a], ids[b], score, reason) for a, b, score, reason in links]


def link_translations(core: Core) -> int:
    """Find which papers are translations of each other and record the links."""
    with core.lock:
        links = find_links(core.store, core.encoders())
        core.store.works.set_links(links)
        return len(links)
