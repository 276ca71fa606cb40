"""The search service: a ``SearchQuery`` in, papers from both languages out; related papers.

It turns a query into per-encoder query vectors and BM25 hits, applies filters inside the
search (as restrictions on candidate chunk ids, so a filtered query still returns k papers
when k exist), and hands scores to ``index.search``. The query's language is detected once
here; the query itself was checked at the edge (``kb.library.query.SearchQuery.build``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from index.calibration import RANK_FLOOR
from index.chunkmap import ChunkMap
from index.dense import DenseIndex
from index.keywords import analyze, fts_query
from index.scoring import PaperScorer
from index.search import (
    TITLE_MATCH,
    EncoderQuery,
    PaperHits,
    Ranked,
    SearchContext,
    build_response,
    dense_scores,
    floored_scores,
    fuse_in_language,
    group_translations,
    interleave_languages,
    one_blas_thread,
    paper_hits,
    promote_title_match,
    rank_papers,
    score_chunks,
    title_match,
)
from index.terms import TermIndex
from ingest.lang import LATIN_SCRIPT_LANGS, detect_lang
from kb.errors import InvalidInput
from kb.library.core import Core
from kb.library.query import SearchQuery
from kb.settings import Settings
from kb.store import Store
from kb.types import Paper, SearchHit, SearchResponse

# A Latin-script query is in the library's main Latin-script language when that language
# holds this share of the Latin-script chunks (a few chunks langdetect called Spanish or
# German do not make a library multilingual).
QUERY_LANG_SHARE = 0.9


class Searcher:
    """Searches and related papers over the core's store and encoders."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def search(self, query: SearchQuery) -> SearchResponse:
        """Papers for a query in any language, from both languages, best first."""
        s = self.core.settings
        mode = query.mode or s.search_mode
        sides = self.core.load()  # models loaded; indexes reloaded if another process wrote
        started = time.perf_counter()  # took_ms is the search's, not the first model load's
        with self.core.lock:
            langs = {lang: len(ids) for lang, ids in self.core.chunk_map().by_lang.items()}
        qlang = query_lang(query.text, langs)  # once per search
        # embedded outside the lock: a search waiting for the model (busy with an ingest
        # job's passages) holds up no other
        qvecs = (
            [side.embed_query(query.text, qlang) for side in sides]
            if mode in ("dense", "hybrid")
            else None
        )
        filters = query.filters
        plan = Plan.of(
            s,
            mode=mode,
            k=query.k or s.search_k,
            filtered=filters.narrows_papers or filters.lang is not None,
            min_score=query.min_score,
        )
        with self.core.lock, one_blas_thread():
            return run_search(
                query.text,
                qlang,
                store=self.core.store,
                dense=self.core.encoders(),
                ids_by_lang=self.core.ids_by_lang(filters),
                chunk_map=self.core.chunk_map(),
                plan=plan,
                qvecs=qvecs,
                started=started,
                keywords=keyword_search(
                    self.core.store, self.core.terms() if mode != "dense" else None
                ),
            )

    def related(self, ref: str | int, k: int | None = None) -> SearchResponse:
        """The papers nearest to one paper (its chunks' mean per encoder), languages alternating."""
        k = self.core.settings.search_k if k is None else k
        if k < 1:
            raise InvalidInput(f"k must be at least 1, not {k}.")
        self.core.load()
        with self.core.lock, one_blas_thread():
            paper = self.core.paper(ref)
            ids = np.asarray(self.core.store.chunks.ids_of(paper.id), dtype=np.int64)
            like = []
            sides = self.core.encoders()
            for side in sides:
                mean = side.vectors.vectors_of(ids).mean(axis=0)
                like.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
            # enough of each language to alternate; its translations are put first below
            plan = Plan.of(self.core.settings, mode="dense", k=k * 2, group=False)
            chunk_map = self.core.chunk_map()
            found = run_search(
                paper.title,
                "und",  # searching with the paper's vectors: no query language
                store=self.core.store,
                dense=sides,
                ids_by_lang=chunk_map.by_lang,
                chunk_map=chunk_map,
                plan=plan,
                exclude_paper=paper.id,
                like=like,
            )
            return translations_first(interleave_languages(found, k), paper, self.core.store)


def query_lang(text: str, chunks_by_lang: dict[str, int]) -> str:
    """The language of a query, given the library's chunk count per language.

    Han text is Chinese. A Latin-script query, in a library where one language holds
    ``QUERY_LANG_SHARE`` of the Latin-script chunks (English, in kb's libraries), is in that
    language, as a chunk is in its paper's: langdetect, slow (10 ms) and unsure on a few
    words, is not asked. Otherwise langdetect decides.
    """
    latin = {lang: n for lang, n in chunks_by_lang.items() if lang in LATIN_SCRIPT_LANGS}
    main = max(latin, key=latin.__getitem__, default=None)
    share = latin[main] / sum(latin.values()) if main else 0.0
    return detect_lang(text, prior=main if share >= QUERY_LANG_SHARE else None)


@dataclass(frozen=True)
class Plan:
    """How one search runs: the mode, how many papers, and the settings it ranks with.

    Attributes:
        filtered: the allowed chunks were narrowed by filters (not every chunk is allowed).
        fusion: how hybrid mode merges keyword evidence (``index.search.fuse_in_language``).
        group: show a paper's translations with it rather than as separate hits.
        paper_score: ``chance`` (best chunk corrected for length) or ``best``.
        papers: papers in the library (what a chance match is the best of; ``run_search``
            takes it from the chunk map).
        floor: hits scoring under it are marked weak; min_score: hits under it are left out.
    """

    mode: str
    k: int
    candidates: int
    snippets: int
    filtered: bool = False
    fusion: str = "rrf"
    group: bool = True
    paper_score: str = "chance"
    papers: int = 1
    floor: float | None = None
    min_score: float | None = None

    @classmethod
    def of(cls, settings: Settings, **fields: Any) -> Plan:
        """A plan with the settings' candidates, snippets, fusion, paper score and floor."""
        base = {
            "candidates": settings.candidates,
            "snippets": settings.snippets,
            "fusion": settings.fusion,
            "paper_score": settings.paper_score,
            "floor": settings.min_score,
        }
        return cls(**{**base, **fields})

    def scorer(self, encoders: int) -> PaperScorer:
        chance = self.paper_score == "chance"
        return PaperScorer(encoders=encoders, correct_length=chance, papers=self.papers)


# Free text and a number of chunks -> (chunk id, BM25 score) of the best chunks, best first.
KeywordSearch = Callable[[str, int], list[tuple[int, float]]]


def keyword_search(store: Store, terms: TermIndex | None = None) -> KeywordSearch:
    """Keyword search over the tantivy index when there is one in step (``Core.terms``),
    else over the store's FTS5 table."""
    if terms is not None:
        return lambda text, limit: terms.search(analyze(text), limit)

    def fts(text: str, limit: int) -> list[tuple[int, float]]:
        match = fts_query(text)
        return [] if match is None else store.keywords.search(match, limit=limit)

    return fts


def run_search(
    text: str,
    qlang: str,
    *,
    store: Store,
    dense: list[DenseIndex],
    ids_by_lang: dict[str, np.ndarray],
    chunk_map: ChunkMap,
    plan: Plan,
    exclude_paper: int | None = None,
    like: list[np.ndarray] | None = None,
    qvecs: list[np.ndarray] | None = None,
    started: float | None = None,
    keywords: KeywordSearch | None = None,
) -> SearchResponse:
    """Search as ``plan`` says; ``like`` (one vector per encoder) replaces the query embedding.

    Args:
        qvecs: the query already embedded by every encoder (``embed_query``).
        started: ``time.perf_counter()`` when the search began (for ``took_ms``).
        keywords: how keyword (and hybrid) search finds chunks (default: the FTS5 table).
    """
    started = time.perf_counter() if started is None else started
    plan = dataclasses.replace(plan, papers=chunk_map.paper_total)
    keywords = keywords or keyword_search(store)
    ctx = SearchContext(ids_by_lang, chunk_map)
    if like is not None:
        plan = dataclasses.replace(plan, mode="dense")  # a paper's vectors: no query terms
    queries: list[EncoderQuery] = []
    if plan.mode in ("dense", "hybrid"):
        qvecs = like or qvecs or [d.embed_query(text, qlang) for d in dense]
        queries = [EncoderQuery(d.vectors, d.stats(), q) for d, q in zip(dense, qvecs, strict=True)]
    want = plan.k + (exclude_paper is not None)
    ranked, depth = _ranked(keywords, text, queries, ctx, plan, want)
    via = {p.pid: ["keyword" if plan.mode == "keyword" else "dense"] for p in ranked}
    if plan.mode == "hybrid":
        ranked = _hybrid(text, qlang, queries, ranked, via, store, ctx, plan, depth, keywords)
    if exclude_paper is not None:
        ranked = [p for p in ranked if p.pid != exclude_paper]
    folded: dict[int, list[int]] = {}
    if plan.group:
        head = [p.pid for p in ranked[: plan.k * 3]]
        ranked, folded = group_translations(ranked, store.works.translations_of(head))
    shown = [p.pid for p in ranked[: plan.k]]
    papers = store.papers.by_ids(shown + [t for pid in shown for t in folded.get(pid, [])])
    # the texts of the chunks shown as snippets: the only chunk rows a search reads
    chunks = store.chunks.by_ids(
        [cid for p in ranked[: plan.k] for _, cid in p.hits[: plan.snippets]]
    )
    calibrated = plan.mode != "keyword"
    return build_response(
        text, ranked, chunks, papers, k=plan.k, snippets=plan.snippets, started=started,
        via=via, highlight="" if like is not None else text, translations=folded,
        floor=plan.floor if calibrated else None,
        min_score=plan.min_score if calibrated else None,
    )  # fmt: skip


def _ranked(
    keywords: KeywordSearch,
    text: str,
    queries: list[EncoderQuery],
    ctx: SearchContext,
    plan: Plan,
    want: int,
) -> tuple[Ranked, int]:
    """Papers ranked by dense (or keyword) scores, and the chunk depth that found them.

    The index is searched ``plan.candidates`` chunks deep, and deeper (four times each time)
    while that finds fewer than ``want`` papers and more chunks are allowed: a few long
    papers can fill the candidates, and a filtered search must still return ``k`` papers when
    ``k`` exist.
    """
    allowed = sum(len(ids) for ids in ctx.ids_by_lang.values())
    depth = plan.candidates
    while True:
        if plan.mode == "keyword":
            scores, done = _keyword_scores(keywords, text, ctx.ids_by_lang, depth, plan.filtered)
            ranked = rank_papers(scores, ctx)
        else:
            scorer = plan.scorer(len(queries))
            langs = sorted(ctx.ids_by_lang)
            scores = dense_scores(queries, ctx, langs, depth, floor=RANK_FLOOR)
            ranked = floored_scores(rank_papers(scores, ctx, scorer), queries, ctx, scorer)
            done = depth >= allowed
        if len(ranked) >= want or done:
            return ranked, depth
        depth *= 4


def _hybrid(
    text: str,
    qlang: str,
    queries: list[EncoderQuery],
    ranked: Ranked,
    via: dict[int, list[str]],
    store: Store,
    ctx: SearchContext,
    plan: Plan,
    depth: int,
    keywords: KeywordSearch,
) -> Ranked:
    """Let keyword evidence (and the main encoder alone) reorder the query language's papers."""
    kw_scores, _ = _keyword_scores(keywords, text, ctx.ids_by_lang, depth, plan.filtered)
    kw_ranked = rank_papers(kw_scores, ctx)
    main: Ranked = []
    if len(queries) > 1 and qlang in ctx.ids_by_lang:
        main_scores = dense_scores(queries[:1], ctx, [qlang], depth)
        main = rank_papers(main_scores, ctx, plan.scorer(1))
    in_dense = {p.pid for p in ranked}
    paper_lang = ctx.chunk_map.paper_langs_of(list(in_dense | {p.pid for p in kw_ranked + main}))
    extra = [
        cid
        for p in kw_ranked + main
        if p.pid not in in_dense and paper_lang.get(p.pid) == qlang
        for _, cid in p.hits
    ]
    paper_of = ctx.chunk_map.papers_of(extra)
    by_paper: dict[int, list[tuple[float, int]]] = {}
    for cid, score in score_chunks(queries, qlang, sorted(set(extra))).items():
        by_paper.setdefault(paper_of[cid], []).append((score, cid))
    scored = {p.pid: p for p in paper_hits(by_paper, ctx, plan.scorer(len(queries)))}
    for p in main:
        via.setdefault(p.pid, ["dense"])  # found by the main encoder alone
    for p in kw_ranked:
        via.setdefault(p.pid, []).append("keyword")
    fused = fuse_in_language(
        ranked, kw_ranked, paper_lang, qlang, plan.fusion, main=main, scored=scored
    )
    return _title_first(text, fused, kw_ranked[:3], store, scored)


def _title_first(
    text: str, ranked: Ranked, kw_top: Ranked, store: Store, scored: dict[int, PaperHits]
) -> Ranked:
    """Put first a top keyword hit whose title is (nearly) the query: a title lookup."""
    titles = store.papers.titles([p.pid for p in kw_top])
    for pid, _, _ in kw_top:
        if pid in titles and title_match(text, titles[pid]) >= TITLE_MATCH:
            if pid not in {p.pid for p in ranked} and pid in scored:
                ranked = [scored[pid], *ranked]
            return promote_title_match(ranked, pid)
    return ranked


def _keyword_scores(
    keywords: KeywordSearch,
    text: str,
    ids_by_lang: dict[str, np.ndarray],
    candidates: int,
    filtered: bool,
) -> tuple[dict[int, float], bool]:
    """BM25 scores of the best chunks among the allowed ones (filters narrow ``ids_by_lang``),
    and whether every matching chunk was read."""
    if not ids_by_lang:
        return {}, True
    if not filtered:
        hits = keywords(text, candidates)
        return dict(hits), len(hits) < candidates
    # Filtered: look deeper, then keep the allowed chunks, so k papers come back if k exist.
    limit = candidates * 20
    hits = keywords(text, limit)
    allowed = np.concatenate(list(ids_by_lang.values()))
    keep = np.isin(np.asarray([cid for cid, _ in hits], dtype=np.int64), allowed)
    found = {cid: score for (cid, score), ok in zip(hits, keep, strict=True) if ok}
    return found, len(hits) < limit


def translations_first(response: SearchResponse, paper: Paper, store: Store) -> SearchResponse:
    """Put the paper's translations first, marked as such (fetched if the search missed them)."""
    if not paper.translations:
        return response
    found = {hit.paper.id: hit for hit in response.results}
    twins = store.papers.by_ids(paper.translations)
    first = [
        dataclasses.replace(found.get(t) or SearchHit(0.0, twins[t], []), relation="translation")
        for t in paper.translations
        if t in twins
    ]
    rest = [hit for hit in response.results if hit.paper.id not in twins]
    results = (first + rest)[: max(len(response.results), len(first))]
    return dataclasses.replace(response, results=results)
