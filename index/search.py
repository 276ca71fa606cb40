"""Paper search: dense (calibrated, all encoders summed), keyword (BM25) or hybrid.

Dense search runs over the whole FAISS index once per document language and per encoder; every
candidate chunk gets each encoder's exact score, z-scored within its document language
(``index.calibration``), and the encoders' z-scores are summed. Chunks are grouped by paper
(a paper scores as its best chunk). Hybrid search lets keyword evidence reorder only the papers
in the query's own language, inside the ranks the dense ranking gave that language: BM25 hits
exist only in the query's language, and letting them move papers across languages measurably
buries the other-language paper (see docs/EVALUATION.md).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from index.calibration import LanguageStats
from index.keywords import analyze, highlight_spans
from index.vectors import VectorIndex
from kb.types import Chunk, Paper, SearchHit, SearchResponse, Snippet

SNIPPET_CHARS = 400
RRF_K = 60
# A query-language paper whose title is this close to the query (token Jaccard) goes first in
# hybrid search: the user typed or pasted its title. Cross-language queries cannot trigger it.
TITLE_MATCH = 0.8


@dataclass(frozen=True)
class EncoderQuery:
    """One encoder's view of a query: its index, its statistics and the query vector."""

    vectors: VectorIndex
    stats: LanguageStats
    qvec: np.ndarray


# Reads the chunks of the given ids (missing ids are left out): ``store.chunks.by_ids``.
ChunksById = Callable[[list[int]], dict[int, Chunk]]


@dataclass(frozen=True)
class SearchContext:
    """What a search ranks over: the allowed chunk ids of each document language, and how
    to read chunks by id (the caller's storage; ``index`` reads no store itself)."""

    chunks_by_ids: ChunksById
    ids_by_lang: dict[str, np.ndarray]


def dense_scores(
    queries: list[EncoderQuery], ctx: SearchContext, langs: list[str], candidates: int
) -> dict[int, float]:
    """chunk id -> summed per-language z-scores over all encoders, for the candidate chunks."""
    out: dict[int, float] = {}
    for doc_lang in langs:
        only = ctx.ids_by_lang.get(doc_lang)
        if only is None or len(only) == 0:
            continue
        found: set[int] = set()
        for q in queries:
            found.update(cid for cid, _ in q.vectors.search(q.qvec, candidates, only=only))
        out.update(score_chunks(queries, doc_lang, sorted(found)))
    return out


def score_chunks(queries: list[EncoderQuery], doc_lang: str, ids: list[int]) -> dict[int, float]:
    """chunk id -> summed per-language z-scores over all encoders, for chunks in ``doc_lang``."""
    chunk_ids = np.asarray(ids, dtype=np.int64)
    total = np.zeros(len(chunk_ids))
    for q in queries:
        raw = q.vectors.vectors_of(chunk_ids) @ q.qvec
        total += q.stats.zscore(q.qvec, raw, doc_lang)
    return dict(zip(chunk_ids.tolist(), total.tolist(), strict=True))


def rank_papers(
    scores: dict[int, float], ctx: SearchContext
) -> tuple[list[tuple[int, list[tuple[float, int]]]], dict[int, Chunk]]:
    """Group chunk scores by paper, best paper first; also return the chunks read."""
    chunks = ctx.chunks_by_ids(list(scores))
    by_paper: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for cid, score in scores.items():
        chunk = chunks.get(cid)
        if chunk is not None:  # a vector whose chunk is gone is ignored, never shown
            by_paper[chunk.paper_id].append((score, cid))
    for scored in by_paper.values():
        scored.sort(reverse=True)
    ranked = sorted(by_paper.items(), key=lambda item: -item[1][0][0])
    return ranked, chunks


def fuse_in_language(
    dense: list[tuple[int, list[tuple[float, int]]]],
    keyword: list[tuple[int, list[tuple[float, int]]]],
    paper_lang: dict[int, str],
    query_lang: str,
    method: str = "rrf",
    *,
    main: list[tuple[int, list[tuple[float, int]]]] | None = None,
    scored: dict[int, list[tuple[float, int]]] | None = None,
) -> list[tuple[int, list[tuple[float, int]]]]:
    """Reorder the query-language papers of ``dense`` with more evidence, in their slots.

    The slots (positions) the dense ranking gave the query language stay theirs, so papers in
    other languages never move. With ``rrf``, the papers that fill those slots are the best of
    the query-language papers found by any side, by reciprocal-rank fusion of the dense
    ranking, the keyword ranking and (if given) the main encoder's own ranking; a paper only
    keyword search found can take a slot from a weaker one. ``zsum`` reorders the dense papers
    by dense score plus z-scored BM25.

    Args:
        main: the main encoder's ranking alone (when several encoders are summed): it is the
            better judge of same-language similarity.
        scored: dense chunk scores of papers that are not in ``dense`` (found by keyword or
            by the main encoder), shown as their scores when they take a slot.
    """
    slots = [i for i, (pid, _) in enumerate(dense) if paper_lang.get(pid) == query_lang]
    own = [dense[i] for i in slots]
    if method == "zsum":
        order = _zsum_order(own, {pid: s[0][0] for pid, s in keyword})
        chosen = [own[i] for i in order]
    else:
        chosen = _rrf_pool(own, [keyword, main or []], paper_lang, query_lang, scored or {})
    out = list(dense)
    for slot, item in zip(slots, chosen[: len(slots)], strict=True):
        out[slot] = item
    return out


def title_match(query: str, title: str) -> float:
    """How exactly ``query`` is ``title``: Jaccard similarity of their analyzed token sets."""
    q, t = set(analyze(query)), set(analyze(title))
    return len(q & t) / len(q | t) if q and t else 0.0


def promote_title_match(
    ranked: list[tuple[int, list[tuple[float, int]]]], pid: int
) -> list[tuple[int, list[tuple[float, int]]]]:
    """Move paper ``pid`` (a near-exact title match of the query) to the first place."""
    moved = [item for item in ranked if item[0] == pid]
    return moved + [item for item in ranked if item[0] != pid] if moved else ranked


def _rrf_pool(
    own: list[tuple[int, list[tuple[float, int]]]],
    evidence: list[list[tuple[int, list[tuple[float, int]]]]],
    paper_lang: dict[int, str],
    query_lang: str,
    scored: dict[int, list[tuple[float, int]]],
) -> list[tuple[int, list[tuple[float, int]]]]:
    """Query-language papers of every ranking, by reciprocal-rank fusion (best first)."""
    rankings = [own] + [[e for e in r if paper_lang.get(e[0]) == query_lang] for r in evidence]
    pool = dict(own)
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (pid, _) in enumerate(ranking):
            if pid in pool or pid in scored:
                pool.setdefault(pid, scored.get(pid, []))
                fused[pid] = fused.get(pid, 0.0) + 1 / (RRF_K + rank)
    best = sorted(fused, key=lambda pid: -fused[pid])
    return [(pid, pool[pid]) for pid in best if pool[pid]]


def _zsum_order(
    own: list[tuple[int, list[tuple[float, int]]]], bm25: dict[int, float]
) -> list[int]:
    """Indexes of ``own`` by dense score + z-scored BM25 (0 for papers no keyword found)."""
    if not own:
        return []
    kw = np.asarray([bm25.get(pid, 0.0) for pid, _ in own])
    sd = float(kw.std())
    kw_z = (kw - kw.mean()) / sd if sd > 0 else np.zeros(len(own))
    fused = np.asarray([scored[0][0] for _, scored in own]) + kw_z
    return sorted(range(len(own)), key=lambda i: -fused[i])


def build_response(
    text: str,
    ranked: list[tuple[int, list[tuple[float, int]]]],
    chunks: dict[int, Chunk],
    papers: dict[int, Paper],
    *,
    k: int,
    snippets: int,
    started: float,
    via: dict[int, list[str]],
    highlight: str = "",
    translations: dict[int, list[int]] | None = None,
) -> SearchResponse:
    """The response for the best ``k`` papers; ``highlight``: the query whose terms to mark.

    Args:
        translations: paper id -> ids of its translations to show with it (in ``papers``).
    """
    results = []
    for pid, scored in ranked[:k]:
        snips = [_snippet(chunks[cid], score, highlight) for score, cid in scored[:snippets]]
        twins = [papers[t] for t in (translations or {}).get(pid, []) if t in papers]
        hit = SearchHit(round(scored[0][0], 4), papers[pid], snips, via.get(pid, []), twins)
        results.append(hit)
    took = (time.perf_counter() - started) * 1000
    return SearchResponse(query=text, took_ms=round(took, 2), results=results)


def group_translations(
    ranked: list[tuple[int, list[tuple[float, int]]]], links: dict[int, list[int]]
) -> tuple[list[tuple[int, list[tuple[float, int]]]], dict[int, list[int]]]:
    """Fold each paper's translations into its best-ranked version.

    Returns the ranking without the folded papers, and, for each paper kept, the ids of its
    translations that the ranking held (best first), to be shown with it.
    """
    position = {pid: i for i, (pid, _) in enumerate(ranked)}
    folded: dict[int, list[int]] = {}
    hidden: set[int] = set()
    for pid, _ in ranked:
        if pid in hidden:
            continue
        twins = sorted((t for t in links.get(pid, []) if t in position), key=position.__getitem__)
        twins = [t for t in twins if t not in hidden and position[t] > position[pid]]
        if twins:
            folded[pid] = twins
            hidden.update(twins)
    return [item for item in ranked if item[0] not in hidden], folded


def interleave_languages(response: SearchResponse, k: int) -> SearchResponse:
    """The best ``k`` hits, alternating between languages (each language keeps its order).

    The language of the best hit goes first; a language that runs out leaves the rest to the
    others.
    """
    queues: dict[str, list[SearchHit]] = {}
    for hit in response.results:
        queues.setdefault(hit.paper.lang, []).append(hit)
    order = list(queues)
    merged: list[SearchHit] = []
    while len(merged) < k and any(queues.values()):
        for lang in order:
            if queues[lang] and len(merged) < k:
                merged.append(queues[lang].pop(0))
    return SearchResponse(query=response.query, took_ms=response.took_ms, results=merged)


def _snippet(chunk: Chunk, score: float, highlight: str) -> Snippet:
    text = chunk.text if len(chunk.text) <= SNIPPET_CHARS else chunk.text[:SNIPPET_CHARS] + "…"
    marks = highlight_spans(text, highlight) if highlight else []
    return Snippet(text, chunk.page_start, chunk.lang, round(score, 4), highlights=marks)
