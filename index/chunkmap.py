"""Every chunk's paper and language, and every paper's language, held in memory.

Ranking needs three facts of each candidate chunk: its paper, its language and how many
chunks that paper has; hybrid search also needs each paper's language. Reading them from
SQLite for every search cost more than the FAISS searches themselves (11 ms of a hybrid
search at 10,000 papers, 18 ms of a dense one at a million chunks), so the library reads
them once per store generation into a ``ChunkMap`` (26 bytes a chunk, 18 a paper) and
reads chunk texts only for the snippets it shows. ``index`` reads no store: the caller builds
the map from the store's rows (``kb.library.core.Core.chunk_map``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ChunkMap:
    """Chunk ids (sorted) with their papers and languages; paper ids (sorted) with their
    languages and chunk counts. Languages are indexes into ``names``."""

    ids: np.ndarray
    papers_of_ids: np.ndarray
    langs_of_ids: np.ndarray
    paper_ids: np.ndarray
    paper_langs: np.ndarray
    chunk_counts: np.ndarray
    names: tuple[str, ...]
    by_lang: dict[str, np.ndarray]

    @classmethod
    def build(cls, chunks: dict[str, np.ndarray], papers: dict[str, np.ndarray]) -> ChunkMap:
        """The map of ``chunks`` (language -> rows of chunk id and paper id, an n x 2 array)
        and ``papers`` (language -> paper ids), in any order. A chunk whose paper is not
        among ``papers`` (written between the two reads) counts for no paper."""
        names = tuple(sorted(set(chunks) | set(papers)))
        rows, langs = _stack({n: np.asarray(a).reshape(-1, 2) for n, a in chunks.items()}, names, 2)
        order = np.argsort(rows[:, 0], kind="stable")
        ids, paper_of, langs = rows[order, 0], rows[order, 1], langs[order]
        pids, plangs = _stack(
            {n: np.asarray(a).reshape(-1, 1) for n, a in papers.items()}, names, 1
        )
        porder = np.argsort(pids[:, 0], kind="stable")
        pids, plangs = pids[porder, 0], plangs[porder]
        _, at = held(pids, paper_of)
        counts = np.bincount(at, minlength=len(pids)).astype(np.int64)
        by_lang = {name: ids[langs == i] for i, name in enumerate(names) if np.any(langs == i)}
        return cls(ids, paper_of, langs, pids, plangs, counts, names, by_lang)

    @property
    def chunk_total(self) -> int:
        return len(self.ids)

    @property
    def paper_total(self) -> int:
        return len(self.paper_ids)

    def papers_of(self, chunk_ids: list[int]) -> dict[int, int]:
        """chunk id -> paper id, for the chunks the library holds (others left out)."""
        want, rows = held(self.ids, chunk_ids)
        return dict(zip(want.tolist(), self.papers_of_ids[rows].tolist(), strict=True))

    def langs_of(self, chunk_ids: list[int]) -> dict[int, str]:
        """chunk id -> the chunk's language, for the chunks the library holds."""
        want, rows = held(self.ids, chunk_ids)
        return {
            c: self.names[x]
            for c, x in zip(want.tolist(), self.langs_of_ids[rows].tolist(), strict=True)
        }

    def paper_langs_of(self, paper_ids: list[int]) -> dict[int, str]:
        """paper id -> the paper's language, for the papers the library holds."""
        want, rows = held(self.paper_ids, paper_ids)
        return {
            p: self.names[x]
            for p, x in zip(want.tolist(), self.paper_langs[rows].tolist(), strict=True)
        }

    def counts(self, paper_ids: list[int]) -> dict[int, int]:
        """paper id -> its number of chunks (papers without chunks are left out)."""
        want, rows = held(self.paper_ids, paper_ids)
        n = self.chunk_counts[rows]
        return {p: c for p, c in zip(want.tolist(), n.tolist(), strict=True) if c}


def _stack(
    by_lang: dict[str, np.ndarray], names: tuple[str, ...], width: int
) -> tuple[np.ndarray, np.ndarray]:
    """The rows of every language (each an n x ``width`` int array) as one array, and each
    row's language (its index in ``names``)."""
    rows = np.concatenate([np.zeros((0, width), np.int64), *by_lang.values()]).astype(np.int64)
    codes = [np.full(len(a), names.index(n), np.int16) for n, a in by_lang.items()]
    return rows, np.concatenate([np.zeros(0, np.int16), *codes])


def held(sorted_ids: np.ndarray, ids: list[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``ids`` found in ``sorted_ids`` (a sorted array), and where they are in it."""
    want = np.asarray(ids, dtype=np.int64)
    if not len(sorted_ids):
        return want[:0], want[:0]
    at = np.searchsorted(sorted_ids, want)
    at[at == len(sorted_ids)] = 0
    found = sorted_ids[at] == want
    return want[found], at[found]
