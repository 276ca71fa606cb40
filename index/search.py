"""Paper search: dense (calibrated, all encoders summed), keyword (BM25) or hybrid.

Dense search finds each document language's best chunks with every encoder (one pass over an
exact index per encoder; an IVF index probes each language's own lists); every
candidate chunk gets each encoder's exact score, z-scored within its document language
(``index.calibration``), and the encoders' z-scores are summed. Chunks are grouped by paper,
and a paper scores as its best chunk corrected for the paper's length (``index.scoring``), so
a long report does not win by drawing more chunks. Hybrid search lets keyword evidence
reorder only the papers in the query's own language, inside the ranks the dense ranking gave
that language: BM25 hits exist only in the query's language, and letting them move papers
across languages measurably buries the other-language paper (see docs/EVALUATION.md).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any, NamedTuple

import numpy as np

from index.calibration import LanguageStats
from index.chunkmap import ChunkMap
from index.keywords import analyze, highlight_spans
from index.scoring import PaperScorer
from index.vectors import VectorIndex
from kb.errors import StoreError
from kb.types import Chunk, Paper, SearchHit, SearchResponse, Snippet

SNIPPET_CHARS = 400
RRF_K = 60
# A query-language paper whose title is this close to the query (token Jaccard) goes first in
# hybrid search: the user typed or pasted its title. Cross-language queries cannot trigger it.
TITLE_MATCH = 0.8


@cache
def _blas() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()  # finds the BLAS libraries once (a few ms)


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run a search's small numpy products on one BLAS thread.

    OpenBLAS keeps its threads spinning a while after each product, and the query's
    embedding that follows (torch, on the same two cores) waited for them: with exact
    vectors centred and aligned for every IVF candidate, dense search at 100k chunks took
    179 ms instead of 86 (docs/PERFORMANCE.md).
    """
    with _blas().limit(limits=1, user_api="blas"):
        yield


@dataclass(frozen=True)
class EncoderQuery:
    """One encoder's view of a query: its index, its statistics and the query vector.

    It also keeps, for the one search it serves, what its index found per document language
    and depth (hybrid search ranks with the main encoder alone after ranking with every
    encoder, which was the same FAISS search again) and each chunk's score (``raw``): a
    search scores a chunk up to three times (as a candidate, as its paper's best chunk with
    the floor, in hybrid's fusion), and an IVF index scores its best candidates exactly and
    the rest from 8 bits (``VectorIndex.scores_of``), so a score taken once is the same in
    every step, and its 8-bit vectors are not decoded again.
    """

    vectors: VectorIndex
    stats: LanguageStats
    qvec: np.ndarray
    found: dict[tuple[str, int], list[tuple[int, float]]] = field(
        default_factory=dict, compare=False, repr=False
    )
    raw: dict[int, float] = field(default_factory=dict, compare=False, repr=False)

    def scores(self, ids: np.ndarray, lang: str | None = None) -> np.ndarray:
        """The query's inner products with these chunks' indexed vectors (``lang``: the
        language of every one, when the caller knows it), each taken once per search."""
        raw = self.raw
        todo = np.asarray([cid for cid in ids.tolist() if cid not in raw], dtype=np.int64)
        if len(todo):
            found = self.vectors.scores_of(todo, self.qvec, lang)
            raw.update(zip(todo.tolist(), found.tolist(), strict=True))
        return np.fromiter((raw[cid] for cid in ids.tolist()), dtype=np.float32, count=len(ids))

    def search(
        self, only: dict[str, np.ndarray], candidates: int
    ) -> dict[str, list[tuple[int, float]]]:
        """The index's ``candidates`` best chunks of each language among its allowed ones
        (``only``: the search's allowed chunks, the same arrays for every call of one search),
        those searched before taken from what was found then."""
        todo = {lang: ids for lang, ids in only.items() if (lang, candidates) not in self.found}
        if todo:
            hits = self.vectors.search_langs(self.qvec, candidates, todo)
            self.found.update({(lang, candidates): found for lang, found in hits.items()})
        return {lang: self.found[(lang, candidates)] for lang in only}


class PaperHits(NamedTuple):
    """One ranked paper: its score and its scored chunks ``(score, chunk id)``, best first."""

    pid: int
    score: float
    hits: list[tuple[float, int]]


Ranked = list[PaperHits]


@dataclass(frozen=True)
class SearchContext:
    """What a search ranks over: the allowed chunk ids of each document language, and the
    library's chunk map (each chunk's paper and language, each paper's language and chunk
    count; the caller reads it from its storage: ``index`` reads no store itself)."""

    ids_by_lang: dict[str, np.ndarray]
    chunk_map: ChunkMap


def dense_scores(
    queries: list[EncoderQuery],
    ctx: SearchContext,
    langs: list[str],
    candidates: int,
    *,
    floor: float = 1.0,
) -> dict[int, float]:
    """chunk id -> summed per-language z-scores over all encoders, for the candidate chunks
    (``floor``: as ``LanguageStats.zscore``)."""
    allowed = {lang: ctx.ids_by_lang[lang] for lang in langs if len(ctx.ids_by_lang.get(lang, []))}
    found: dict[str, set[int]] = {lang: set() for lang in allowed}
    for q in queries:
        for lang, hits in q.search(allowed, candidates).items():
            found[lang].update(cid for cid, _ in hits)
    out: dict[int, float] = {}
    for lang, ids in found.items():
        out.update(score_chunks(queries, lang, sorted(ids), floor=floor, all_in=True))
    return out


def score_chunks(
    queries: list[EncoderQuery],
    doc_lang: str,
    ids: list[int],
    *,
    floor: float = 1.0,
    all_in: bool = False,
) -> dict[int, float]:
    """chunk id -> summed per-language z-scores over all encoders, the chunks standardised as
    ``doc_lang``'s; ``all_in``: every chunk is in ``doc_lang`` (their vectors are then read
    without looking their languages up)."""
    chunk_ids = np.asarray(ids, dtype=np.int64)
    total = np.zeros(len(chunk_ids))
    for q in queries:
        raw = q.scores(chunk_ids, doc_lang if all_in else None)
        total += q.stats.zscore(q.qvec, raw, doc_lang, floor=floor)
    return dict(zip(chunk_ids.tolist(), total.tolist(), strict=True))


def floored_scores(
    ranked: Ranked,
    queries: list[EncoderQuery],
    ctx: SearchContext,
    scorer: PaperScorer,
) -> Ranked:
    """The same ranking, each paper's score taken again with the standard-deviation floor.

    Dense search orders papers by z-scores over the query's own spread in each language, and
    shows (and judges against the relevance floor) the score with the floor: a query that
    spreads little in a language (an off-topic one, or one in the other language) must not
    turn its luckiest chunk there into a strong score, but a floor that binds in one language
    only must not reorder the languages either (docs/EVALUATION.md, the standard run). Each
    paper keeps its best chunk; the floor applies in that chunk's language.
    """
    best = {p.pid: p.hits[0][1] for p in ranked if p.hits}
    by_lang: dict[str, list[int]] = defaultdict(list)
    for cid, lang in ctx.chunk_map.langs_of(list(best.values())).items():
        by_lang[lang].append(cid)
    z: dict[int, float] = {}
    for lang, ids in by_lang.items():
        z.update(score_chunks(queries, lang, ids, all_in=True))
    counts = ctx.chunk_map.counts(list(best))
    return [
        p._replace(score=scorer.paper(z[best[p.pid]], counts.get(p.pid, len(p.hits))))
        if p.pid in best
        else p
        for p in ranked
    ]


def rank_papers(
    scores: dict[int, float], ctx: SearchContext, scorer: PaperScorer | None = None
) -> Ranked:
    """Group chunk scores by paper (the chunk map's), best paper first.

    Args:
        scorer: how dense chunk scores make a paper's score (standardised, corrected for the
            paper's length); None: the paper's score is its best chunk's (BM25).
    """
    paper_of = ctx.chunk_map.papers_of(list(scores))
    if scores and not paper_of:  # one gone is tolerated below; every one is damage
        raise _out_of_step(len(scores))
    by_paper: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for cid, score in scores.items():
        pid = paper_of.get(cid)
        if pid is not None:  # a vector or keyword row whose chunk is gone is never shown
            by_paper[pid].append((score, cid))
    return paper_hits(by_paper, ctx, scorer)


def _out_of_step(n: int) -> StoreError:
    return StoreError(
        f"The store cannot read any of the {n} chunks the search found: it is damaged or out "
        "of step with the index. Run `kb doctor`: it names what is wrong and how to repair it."
    )


def paper_hits(
    by_paper: dict[int, list[tuple[float, int]]],
    ctx: SearchContext,
    scorer: PaperScorer | None,
) -> Ranked:
    """Each paper's hits (best first) with its score, best paper first."""
    counts: dict[int, int] = {}
    if scorer is not None:
        counts = ctx.chunk_map.counts(list(by_paper))
    out = []
    for pid, hits in by_paper.items():
        hits.sort(reverse=True)
        if scorer is None:
            score = hits[0][0]
        else:
            score = scorer.paper(hits[0][0], counts.get(pid, len(hits)))
            hits = [(scorer.chunk(s), cid) for s, cid in hits]
        out.append(PaperHits(pid, score, hits))
    out.sort(key=lambda p: (-p.score, p.pid))
    return out


def fuse_in_language(
    dense: Ranked,
    keyword: Ranked,
    paper_lang: dict[int, str],
    query_lang: str,
    method: str = "rrf",
    *,
    main: Ranked | None = None,
    scored: dict[int, PaperHits] | None = None,
) -> Ranked:
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
    slots = [i for i, p in enumerate(dense) if paper_lang.get(p.pid) == query_lang]
    own = [dense[i] for i in slots]
    if method == "zsum":
        order = _zsum_order(own, {p.pid: p.score for p in keyword})
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


def promote_title_match(ranked: Ranked, pid: int) -> Ranked:
    """Move paper ``pid`` (a near-exact title match of the query) to the first place."""
    moved = [item for item in ranked if item.pid == pid]
    return moved + [item for item in ranked if item.pid != pid] if moved else ranked


def _rrf_pool(
    own: Ranked,
    evidence: list[Ranked],
    paper_lang: dict[int, str],
    query_lang: str,
    scored: dict[int, PaperHits],
) -> Ranked:
    """Query-language papers of every ranking, by reciprocal-rank fusion (best first)."""
    rankings = [own] + [[e for e in r if paper_lang.get(e.pid) == query_lang] for r in evidence]
    pool = {p.pid: p for p in own}
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking):
            if item.pid in pool or item.pid in scored:
                if item.pid not in pool:
                    pool[item.pid] = scored[item.pid]
                fused[item.pid] = fused.get(item.pid, 0.0) + 1 / (RRF_K + rank)
    best = sorted(fused, key=lambda pid: -fused[pid])
    return [pool[pid] for pid in best if pool[pid].hits]


def _zsum_order(own: Ranked, bm25: dict[int, float]) -> list[int]:
    """Indexes of ``own`` by dense score + z-scored BM25 (0 for papers no keyword found)."""
    if not own:
        return []
    kw = np.asarray([bm25.get(p.pid, 0.0) for p in own])
    sd = float(kw.std())
    kw_z = (kw - kw.mean()) / sd if sd > 0 else np.zeros(len(own))
    fused = np.asarray([p.score for p in own]) + kw_z
    return sorted(range(len(own)), key=lambda i: -fused[i])


def build_response(
    text: str,
    ranked: Ranked,
    chunks: dict[int, Chunk],
    papers: dict[int, Paper],
    *,
    k: int,
    snippets: int,
    started: float,
    via: dict[int, list[str]],
    highlight: str = "",
    translations: dict[int, list[int]] | None = None,
    floor: float | None = None,
    min_score: float | None = None,
) -> SearchResponse:
    """The response for the best ``k`` papers; ``highlight``: the query whose terms to mark.

    Scores go down the list (``position_scores``); a hit under ``floor`` is marked weak, and
    one under ``min_score`` is left out.

    Args:
        chunks: the chunks shown as snippets (each of the ``k`` papers' first ``snippets``
            hits); one missing is left out, all missing is damage (``StoreError``).
        translations: paper id -> ids of its translations to show with it (in ``papers``).
    """
    shown = [cid for item in ranked[:k] for _, cid in item.hits[:snippets]]
    if shown and not any(cid in chunks for cid in shown):  # as in rank_papers
        raise _out_of_step(len(shown))
    results = []
    for item, score in zip(ranked[:k], position_scores(ranked[:k]), strict=True):
        if min_score is not None and score < min_score:
            break
        snips = [
            _snippet(chunks[cid], s, highlight) for s, cid in item.hits[:snippets] if cid in chunks
        ]
        twins = [papers[t] for t in (translations or {}).get(item.pid, []) if t in papers]
        weak = floor is not None and score < floor
        hit = SearchHit(
            round(score, 4), papers[item.pid], snips, via.get(item.pid, []), twins, weak=weak
        )
        results.append(hit)
    took = (time.perf_counter() - started) * 1000
    return SearchResponse(query=text, took_ms=round(took, 2), results=results)


def position_scores(ranked: Ranked) -> list[float]:
    """The scores shown for a ranking: its papers' scores, highest first.

    Hybrid search may reorder a language's papers on keyword evidence (or put a typed title
    first); the shown scores still go down the list, each place taking the score of its rank,
    so a weaker paper moved up shows the score of the place it took, never a score above the
    one before it. A ranking sorted by score shows each paper's own score.
    """
    return sorted((p.score for p in ranked), reverse=True)


def group_translations(
    ranked: Ranked, links: dict[int, list[int]]
) -> tuple[Ranked, dict[int, list[int]]]:
    """Fold each paper's translations into its best-ranked version.

    Returns the ranking without the folded papers, and, for each paper kept, the ids of its
    translations that the ranking held (best first), to be shown with it.
    """
    position = {p.pid: i for i, p in enumerate(ranked)}
    folded: dict[int, list[int]] = {}
    hidden: set[int] = set()
    for pid, _, _ in ranked:
        if pid in hidden:
            continue
        twins = sorted((t for t in links.get(pid, []) if t in position), key=position.__getitem__)
        twins = [t for t in twins if t not in hidden and position[t] > position[pid]]
        if twins:
            folded[pid] = twins
            hidden.update(twins)
    return [item for item in ranked if item.pid not in hidden], folded


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
