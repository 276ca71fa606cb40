"""The search service: a ``SearchQuery`` in, papers from both languages out; related papers.

It turns a query into per-encoder query vectors and BM25 hits, applies filters inside the
search (as restrictions on candidate chunk ids, so a filtered query still returns k papers
when k exist), and hands scores to ``index.search``. The query's language is detected once
here; the query itself was checked at the edge (``kb.library.query.SearchQuery.build``).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from index.dense import DenseIndex
from index.keywords import fts_query
from index.search import (
    TITLE_MATCH,
    EncoderQuery,
    SearchContext,
    build_response,
    dense_scores,
    fuse_in_language,
    group_translations,
    interleave_languages,
    promote_title_match,
    rank_papers,
    score_chunks,
    title_match,
)
from ingest.lang import detect_lang
from kb.errors import InvalidInput
from kb.library.core import Core
from kb.library.query import SearchQuery
from kb.store import Store
from kb.store.filters import PaperFilters
from kb.types import Chunk, Paper, SearchHit, SearchResponse


class Searcher:
    """Searches and related papers over the core's store and encoders."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def search(self, query: SearchQuery) -> SearchResponse:
        """Papers for a query in any language, from both languages, best first."""
        s = self.core.settings
        started = time.perf_counter()
        k, mode = query.k or s.search_k, query.mode or s.search_mode
        qlang = detect_lang(query.text)  # once per search
        sides = self.core.load()  # models loaded; indexes reloaded if another process wrote
        # embedded outside the lock: a search waiting for the model (busy with an ingest
        # job's passages) holds up no other
        qvecs = (
            [side.embed_query(query.text, qlang) for side in sides]
            if mode in ("dense", "hybrid")
            else None
        )
        filters = query.filters
        with self.core.lock:
            return run_search(
                query.text,
                qlang,
                store=self.core.store,
                dense=self.core.encoders(),
                ids_by_lang=self.core.ids_by_lang(filters),
                mode=mode,
                k=k,
                candidates=s.candidates,
                snippets=s.snippets,
                filtered=filters.narrows_papers or filters.lang is not None,
                fusion=s.fusion,
                qvecs=qvecs,
                started=started,
            )

    def related(self, ref: str | int, k: int | None = None) -> SearchResponse:
        """The papers nearest to one paper (its chunks' mean per encoder), languages alternating."""
        k = self.core.settings.search_k if k is None else k
        if k < 1:
            raise InvalidInput(f"k must be at least 1, not {k}.")
        self.core.load()
        with self.core.lock:
            paper = self.core.paper(ref)
            ids = np.asarray(self.core.store.chunks.ids_of(paper.id), dtype=np.int64)
            like = []
            sides = self.core.encoders()
            for side in sides:
                mean = side.vectors.vectors_of(ids).mean(axis=0)
                like.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
            found = run_search(
                paper.title,
                "und",  # searching with the paper's vectors: no query language
                store=self.core.store,
                dense=sides,
                ids_by_lang=self.core.ids_by_lang(PaperFilters()),
                mode="dense",
                k=k * 2,  # enough of each language to alternate
                candidates=self.core.settings.candidates,
                snippets=self.core.settings.snippets,
                exclude_paper=paper.id,
                like=like,
                group=False,  # its translations are put first below, marked as such
            )
            return translations_first(interleave_languages(found, k), paper, self.core.store)


def run_search(
    text: str,
    qlang: str,
    *,
    store: Store,
    dense: list[DenseIndex],
    ids_by_lang: dict[str, np.ndarray],
    mode: str,
    k: int,
    candidates: int,
    snippets: int,
    exclude_paper: int | None = None,
    like: list[np.ndarray] | None = None,
    filtered: bool = False,
    fusion: str = "rrf",
    group: bool = True,
    qvecs: list[np.ndarray] | None = None,
    started: float | None = None,
) -> SearchResponse:
    """Search in ``mode``; ``like`` (one vector per encoder) replaces the query embedding.

    Args:
        filtered: ``ids_by_lang`` was narrowed by filters (not every chunk is allowed).
        fusion: how hybrid mode merges keyword evidence (``index.search.fuse_in_language``).
        group: show a paper's translations with it rather than as separate hits.
        qvecs: the query already embedded by every encoder (``embed_query``).
        started: ``time.perf_counter()`` when the search began (for ``took_ms``).
    """
    started = time.perf_counter() if started is None else started
    ctx = SearchContext(chunks_by_ids=store.chunks.by_ids, ids_by_lang=ids_by_lang)
    langs = sorted(ids_by_lang)
    if like is not None:
        mode = "dense"  # searching with a paper's vectors: there are no query terms
    scores: dict[int, float] = {}
    queries: list[EncoderQuery] = []
    if mode in ("dense", "hybrid"):
        qvecs = like or qvecs or [d.embed_query(text, qlang) for d in dense]
        queries = [EncoderQuery(d.vectors, d.stats(), q) for d, q in zip(dense, qvecs, strict=True)]
        scores = dense_scores(queries, ctx, langs, candidates)
    if mode == "keyword":
        scores = _keyword_scores(store, text, ids_by_lang, candidates, filtered)
    ranked, chunks = rank_papers(scores, ctx)
    via = {pid: ["keyword" if mode == "keyword" else "dense"] for pid, _ in ranked}
    if mode == "hybrid":
        ranked = _hybrid(
            text, qlang, queries, ranked, chunks, via, store, ctx, candidates, filtered, fusion
        )
    if exclude_paper is not None:
        ranked = [(pid, s) for pid, s in ranked if pid != exclude_paper]
    folded: dict[int, list[int]] = {}
    if group:
        head = [pid for pid, _ in ranked[: k * 3]]
        ranked, folded = group_translations(ranked, store.works.translations_of(head))
    shown = [pid for pid, _ in ranked[:k]]
    papers = store.papers.by_ids(shown + [t for pid in shown for t in folded.get(pid, [])])
    return build_response(
        text, ranked, chunks, papers, k=k, snippets=snippets, started=started, via=via,
        highlight="" if like is not None else text, translations=folded,
    )  # fmt: skip


def _hybrid(
    text: str,
    qlang: str,
    queries: list[EncoderQuery],
    ranked: list[tuple[int, list[tuple[float, int]]]],
    chunks: dict[int, Chunk],
    via: dict[int, list[str]],
    store: Store,
    ctx: SearchContext,
    candidates: int,
    filtered: bool,
    fusion: str,
) -> list[tuple[int, list[tuple[float, int]]]]:
    """Let keyword evidence (and the main encoder alone) reorder the query language's papers."""
    kw_ranked, kw_chunks = rank_papers(
        _keyword_scores(store, text, ctx.ids_by_lang, candidates, filtered), ctx
    )
    chunks.update(kw_chunks)
    main: list[tuple[int, list[tuple[float, int]]]] = []
    if len(queries) > 1 and qlang in ctx.ids_by_lang:
        main, main_chunks = rank_papers(dense_scores(queries[:1], ctx, [qlang], candidates), ctx)
        chunks.update(main_chunks)
    in_dense = {pid for pid, _ in ranked}
    paper_lang = _paper_langs(store, list(in_dense | {pid for pid, _ in kw_ranked + main}))
    extra = [
        cid
        for pid, hits in kw_ranked + main
        if pid not in in_dense and paper_lang.get(pid) == qlang
        for _, cid in hits
    ]
    scored: dict[int, list[tuple[float, int]]] = {}
    for cid, score in score_chunks(queries, qlang, sorted(set(extra))).items():
        scored.setdefault(chunks[cid].paper_id, []).append((score, cid))
    for hits in scored.values():
        hits.sort(reverse=True)
    for pid, _ in main:
        via.setdefault(pid, ["dense"])  # found by the main encoder alone
    for pid, _ in kw_ranked:
        via.setdefault(pid, []).append("keyword")
    fused = fuse_in_language(ranked, kw_ranked, paper_lang, qlang, fusion, main=main, scored=scored)
    return _title_first(text, fused, kw_ranked[:3], store, scored)


def _title_first(
    text: str,
    ranked: list[tuple[int, list[tuple[float, int]]]],
    kw_top: list[tuple[int, list[tuple[float, int]]]],
    store: Store,
    scored: dict[int, list[tuple[float, int]]],
) -> list[tuple[int, list[tuple[float, int]]]]:
    """Put first a top keyword hit whose title is (nearly) the query: a title lookup."""
    titles = store.papers.titles([pid for pid, _ in kw_top])
    for pid, _ in kw_top:
        if pid in titles and title_match(text, titles[pid]) >= TITLE_MATCH:
            if pid not in {p for p, _ in ranked} and pid in scored:
                ranked = [(pid, scored[pid]), *ranked]
            return promote_title_match(ranked, pid)
    return ranked


def _keyword_scores(
    store: Store, text: str, ids_by_lang: dict[str, np.ndarray], candidates: int, filtered: bool
) -> dict[int, float]:
    """BM25 scores of the best chunks among the allowed ones (filters narrow ``ids_by_lang``)."""
    match = fts_query(text)
    if match is None or not ids_by_lang:
        return {}
    if not filtered:
        return dict(store.keywords.search(match, limit=candidates))
    # Filtered: look deeper, then keep the allowed chunks, so k papers come back if k exist.
    hits = store.keywords.search(match, limit=candidates * 20)
    allowed = np.concatenate(list(ids_by_lang.values()))
    keep = np.isin(np.asarray([cid for cid, _ in hits], dtype=np.int64), allowed)
    return {cid: score for (cid, score), ok in zip(hits, keep, strict=True) if ok}


def _paper_langs(store: Store, paper_ids: list[int]) -> dict[int, str]:
    return store.papers.langs(paper_ids)


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
