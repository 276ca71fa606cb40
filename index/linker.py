"""Find which paper is a translation of which: an English paper and its Chinese version.

Raw cosine cannot tell a translation from a neighbour: a multilingual model puts each language
in its own region, so unrelated Chinese title pairs average 0.870 and true English/Chinese
pairs 0.877. The linker scores every cross-language pair in three steps, per pair of languages:

1. Language debiasing (as ``index.calibration`` does for search): each encoder's paper
   vectors are centred on their language's mean over the given papers and re-normalised, and
   the cross-language cosines are z-scored with their mean and standard deviation over all
   pairs of the two languages (exact, from each side's second-moment matrix: no extra pass).
   Encoders are summed (z-sum), so mUSE and multilingual-e5 both vote; one alone works too.
2. Margin (Artetxe & Schwenk 2019, "Margin-based parallel corpus mining"): a pair's score is
   its similarity minus the mean similarity of each side's ``NEIGHBOURS`` nearest papers in the
   other language, divided by the spread of all pair scores (each paper's best left out). A
   paper close to everything (a hub, a survey) has no margin over its neighbours; a
   translation stands out from them.
3. Mutual best: a pair is linked when each is the other's best partner by margin and the margin
   reaches ``LINK_THRESHOLD``. So a paper gets at most one translation per language, and a
   paper whose translation is not in the library (most papers) gets none.

Papers that share an identifier (DOI or arXiv id, ``ingest.dedup.work_ids``) across languages
are sure links and take precedence over embedding links of the same papers. Same-language
papers sharing an identifier are duplicates, not translations (``ingest.dedup``), and are not
linked here.

Cost: one matrix product per encoder per pair of languages, in blocks of ``_BLOCK`` rows, with
running top-k per row and per column; no n x n matrix is kept.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal, NamedTuple

import numpy as np

Reason = Literal["identifier", "embedding"]

# The lowest margin of an embedding link. bench/translation_links.py, 493 EN/ZH pairs among
# 3,000 papers without a translation (docs/TRANSLATIONS.md): 2.0 gives precision 1.000 and
# recall 0.813 (both encoders); 1.75 gives 0.995 / 0.888 and 1.5 gives 0.985 / 0.935. A wrong
# link claims that two different papers are one work, so precision comes first.
LINK_THRESHOLD = 2.0
NEIGHBOURS = 4  # k of the margin, as in Artetxe & Schwenk
MIN_PAPERS = 8  # a language with fewer papers gets identifier links only (too few for statistics)
UNKNOWN_LANGS = frozenset({"", "und"})
_BLOCK = 1024  # rows of one score block: 1024 x 10,000 float32 = 40 MB


class Link(NamedTuple):
    """Papers ``a`` < ``b`` (indexes into the input) are translations of each other."""

    a: int
    b: int
    score: float  # the margin score; for an identifier link 0.0 if too few papers to score
    reason: Reason


def paper_vector(chunk_vectors: np.ndarray) -> np.ndarray:
    """A paper's vector for the linker: the L2-normalised mean of its chunks' vectors."""
    mean = np.asarray(chunk_vectors, dtype=np.float64).mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def find_translations(
    vectors: Sequence[np.ndarray],
    langs: Sequence[str],
    ids: Sequence[Collection[str]] | None = None,
    *,
    threshold: float = LINK_THRESHOLD,
) -> list[Link]:
    """Pairs of papers in different languages that are translations of each other.

    Args:
        vectors: per encoder, one row per paper ([n, dim_e]), e.g. ``paper_vector`` of its
            stored (raw, not centred) chunk vectors. An empty sequence: identifiers only.
        langs: each paper's language; papers in ``UNKNOWN_LANGS`` are never linked.
        ids: each paper's identifiers (``ingest.dedup.work_ids``); shared ones are sure links.
        threshold: the lowest margin score of an embedding link.

    Returns:
        Links sorted by (a, b); each paper has at most one link per other language.
    """
    n = len(langs)
    arrays = [np.asarray(v, dtype=np.float32) for v in vectors]
    for v in arrays:
        if v.ndim != 2 or v.shape[0] != n:
            raise ValueError(f"Each encoder needs one row per paper ({n}), not {v.shape}.")
    groups = _groups(langs)
    centred = [_center(v, groups) for v in arrays]
    links: list[Link] = []
    for la, lb in combinations(sorted(groups), 2):
        a_idx, b_idx = groups[la], groups[lb]
        pair = None
        if centred and min(len(a_idx), len(b_idx)) >= MIN_PAPERS:
            pair = PairScores.compute([v[a_idx] for v in centred], [v[b_idx] for v in centred])
        sure = _identifier_links(a_idx, b_idx, ids, pair)
        found = [
            _link(int(a_idx[i]), int(b_idx[j]), score, "embedding")
            for i, j, score in (pair.mutual_best(threshold) if pair else [])
        ]
        links += _merge(sure, found)
    return sorted(links)


def _groups(langs: Sequence[str]) -> dict[str, np.ndarray]:
    """Language -> indexes of its papers, unknown languages left out."""
    out: dict[str, list[int]] = {}
    for i, lang in enumerate(langs):
        if lang not in UNKNOWN_LANGS:
            out.setdefault(lang, []).append(i)
    return {lang: np.asarray(rows, dtype=np.int64) for lang, rows in out.items()}


def _center(vectors: np.ndarray, groups: dict[str, np.ndarray]) -> np.ndarray:
    """Each language's vectors minus that language's mean, re-normalised."""
    out = vectors.copy()
    for rows in groups.values():
        out[rows] -= vectors[rows].mean(axis=0)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


@dataclass(frozen=True)
class PairScores:
    """Margin statistics of every pair between the papers of two languages, a and b.

    A pair's similarity is the sum over encoders of its z-scored cosine; ``row_top`` and
    ``col_top`` hold each paper's ``NEIGHBOURS`` most similar papers on the other side
    (positions, similarities).
    """

    a_vecs: list[np.ndarray]  # per encoder, the centred vectors of side a
    b_vecs: list[np.ndarray]
    moments: list[tuple[float, float]]  # per encoder, mean and std of the cosines of all pairs
    scale: float  # std of the summed similarity over all pairs but each row's best
    row_top: tuple[np.ndarray, np.ndarray]  # [len(a), k]: positions in b, similarities
    col_top: tuple[np.ndarray, np.ndarray]  # [len(b), k]: positions in a, similarities

    @classmethod
    def compute(cls, a_vecs: list[np.ndarray], b_vecs: list[np.ndarray]) -> PairScores:
        """One pass over all pairs in blocks of rows, keeping top-k per row and per column."""
        moments = [_cosine_moments(a, b) for a, b in zip(a_vecs, b_vecs, strict=True)]
        n_a, n_b = len(a_vecs[0]), len(b_vecs[0])
        k_row, k_col = min(NEIGHBOURS, n_b), min(NEIGHBOURS, n_a)
        col_pos = np.zeros((0, n_b), dtype=np.int64)
        col_val = np.zeros((0, n_b), dtype=np.float32)
        row_pos, row_val, total, total_sq = [], [], 0.0, 0.0
        for start in range(0, n_a, _BLOCK):
            s = _similarity(a_vecs, b_vecs, moments, slice(start, start + _BLOCK))
            total += float(s.sum(dtype=np.float64))
            total_sq += float(np.square(s, dtype=np.float64).sum())
            pos = _top_k(s, k_row)
            row_pos.append(pos)
            row_val.append(np.take_along_axis(s, pos, axis=1))
            col_pos, col_val = _merge_columns(col_pos, col_val, s, start, k_col)
        rows = (np.concatenate(row_pos), np.concatenate(row_val))
        # The spread leaves out each row's best pair: in a small library where most papers are
        # translated, those pairs would inflate it and shrink every margin.
        best = rows[1].max(axis=1).astype(np.float64)
        count = max(n_a * n_b - n_a, 1)
        mean = (total - best.sum()) / count
        var = (total_sq - np.square(best).sum()) / count - mean * mean
        scale = float(np.sqrt(max(var, 1e-12)))
        return cls(a_vecs, b_vecs, moments, scale, rows, (col_pos.T, col_val.T))

    def margin(self, i: np.ndarray, j: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Margin scores of pairs (positions ``i`` in a, ``j`` in b) of similarity ``s``."""
        row_mean, col_mean = self.row_top[1].mean(axis=1), self.col_top[1].mean(axis=1)
        return (s - (row_mean[i] + col_mean[j]) / 2) / self.scale

    def pair_score(self, i: int, j: int) -> float:
        """The margin score of one pair, by positions in a and b."""
        s = _similarity(
            [a[i : i + 1] for a in self.a_vecs], [b[j : j + 1] for b in self.b_vecs], self.moments
        )
        return float(self.margin(np.asarray([i]), np.asarray([j]), s[0])[0])

    def mutual_best(self, threshold: float) -> list[tuple[int, int, float]]:
        """(i, j, margin) of the pairs that are each other's best by margin, >= ``threshold``."""
        (r_pos, r_val), (c_pos, c_val) = self.row_top, self.col_top
        rows, cols = np.arange(len(r_pos)), np.arange(len(c_pos))
        r_margin = self.margin(rows[:, None], r_pos, r_val)
        best_j = r_pos[rows, np.argmax(r_margin, axis=1)]
        best_score = r_margin.max(axis=1)
        c_margin = self.margin(c_pos, cols[:, None], c_val)
        best_i = c_pos[cols, np.argmax(c_margin, axis=1)]
        mutual = (best_i[best_j] == rows) & (best_score >= threshold)
        return [(int(i), int(best_j[i]), float(best_score[i])) for i in np.flatnonzero(mutual)]


def _similarity(
    a_vecs: list[np.ndarray],
    b_vecs: list[np.ndarray],
    moments: list[tuple[float, float]],
    rows: slice = slice(None),
) -> np.ndarray:
    """Summed z-scored cosines of ``rows`` of side a against all of side b."""
    s = np.zeros((len(a_vecs[0][rows]), len(b_vecs[0])), dtype=np.float32)
    for a, b, (mean, sd) in zip(a_vecs, b_vecs, moments, strict=True):
        s += (a[rows] @ b.T - mean) / sd
    return s


def _cosine_moments(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of ``a_i . b_j`` over all pairs, without the n x m matrix."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    mean = float(a64.mean(axis=0) @ b64.mean(axis=0))
    second = float(np.sum((a64.T @ a64) * (b64.T @ b64))) / (len(a) * len(b))
    return mean, float(np.sqrt(max(second - mean * mean, 1e-12)))


def _top_k(s: np.ndarray, k: int) -> np.ndarray:
    """Column positions of the ``k`` largest values of each row of ``s`` (any order)."""
    if k >= s.shape[1]:
        return np.broadcast_to(np.arange(s.shape[1]), s.shape).copy()
    return np.argpartition(-s, k - 1, axis=1)[:, :k]


def _merge_columns(
    pos: np.ndarray, val: np.ndarray, block: np.ndarray, start: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The running top-``k`` rows of each column, updated with ``block`` (rows from ``start``)."""
    block_pos = _top_k(block.T, min(k, block.shape[0])).T
    cand_pos = np.concatenate([pos, block_pos + start])
    cand_val = np.concatenate([val, np.take_along_axis(block, block_pos, axis=0)])
    keep = _top_k(cand_val.T, k).T
    return np.take_along_axis(cand_pos, keep, axis=0), np.take_along_axis(cand_val, keep, axis=0)


def _identifier_links(
    a_idx: np.ndarray,
    b_idx: np.ndarray,
    ids: Sequence[Collection[str]] | None,
    pair: PairScores | None,
) -> list[Link]:
    """Pairs sharing an identifier, at most one partner per paper (best margin first)."""
    if ids is None:
        return []
    owners: dict[str, list[int]] = {}
    for j, b in enumerate(b_idx.tolist()):
        for wid in ids[b]:
            owners.setdefault(wid, []).append(j)
    candidates = sorted(
        {
            (i, j)
            for i, a in enumerate(a_idx.tolist())
            for wid in ids[a]
            for j in owners.get(wid, [])
        }
    )
    scored = [(pair.pair_score(i, j) if pair else 0.0, i, j) for i, j in candidates]
    scored.sort(key=lambda t: -t[0])  # stable: ties keep the input order
    links, used_a, used_b = [], set(), set()
    for score, i, j in scored:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            links.append(_link(int(a_idx[i]), int(b_idx[j]), score, "identifier"))
    return links


def _merge(sure: list[Link], found: list[Link]) -> list[Link]:
    """Identifier links, plus the embedding links that touch none of their papers."""
    taken = {p for link in sure for p in (link.a, link.b)}
    return sure + [link for link in found if link.a not in taken and link.b not in taken]


def _link(x: int, y: int, score: float, reason: Reason) -> Link:
    return Link(min(x, y), max(x, y), score, reason)
