"""Search orchestration for the Library: modes, filters, related papers.

Application layer (like ``kb.library.facade``): it turns a query into per-encoder query vectors and
BM25 hits, applies filters inside the search (as restrictions on candidate chunk ids, so a
filtered query still returns k papers when k exist), and hands scores to ``index.search``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

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
    promote_title_match,
    rank_papers,
    score_chunks,
    title_match,
)
from ingest.lang import detect_lang
from kb.errors import InvalidInput
from kb.store import Store
from kb.types import Chunk, SearchResponse

SEARCH_MODES = ("dense", "keyword", "hybrid")


@dataclass(frozen=True)
class Filters:
    """Restrictions applied inside the search."""

    lang: str | None = None
    year_from: int | None = None
    year_to: int | None = None
    author: str | None = None
    tag: str | None = None

    @property
    def narrows_papers(self) -> bool:
        return any(v is not None for v in (self.year_from, self.year_to, self.author, self.tag))

    def check(self) -> Filters:
        if self.lang is not None and not (self.lang.isalpha() and 2 <= len(self.lang) <= 3):
            raise InvalidInput(
                f"lang must be a language code such as 'en' or 'zh', not {self.lang!r}."
            )
        if self.year_from and self.year_to and self.year_from > self.year_to:
            raise InvalidInput(f"year_from ({self.year_from}) is after year_to ({self.year_to}).")
        return self


def run_search(
    text: str,
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
    if mode not in SEARCH_MODES:
        raise InvalidInput(f"mode must be one of {', '.join(SEARCH_MODES)}, not {mode!r}.")
    ctx = SearchContext(store=store, ids_by_lang=ids_by_lang)
    langs = sorted(ids_by_lang)
    qlang = detect_lang(text) if text else "und"
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
            text, qlang, queries, ranked, chunks, via, ctx, candidates, filtered, fusion
        )
    if exclude_paper is not None:
        ranked = [(pid, s) for pid, s in ranked if pid != exclude_paper]
    folded: dict[int, list[int]] = {}
    if group:
        head = [pid for pid, _ in ranked[: k * 3]]
        ranked, folded = group_translations(ranked, store.translations_of(head))
    shown = [pid for pid, _ in ranked[:k]]
    papers = store.papers_by_ids(shown + [t for pid in shown for t in folded.get(pid, [])])
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
    ctx: SearchContext,
    candidates: int,
    filtered: bool,
    fusion: str,
) -> list[tuple[int, list[tuple[float, int]]]]:
    """Let keyword evidence (and the main encoder alone) reorder the query language's papers."""
    store = ctx.store
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
    titles = store.paper_titles([pid for pid, _ in kw_top])
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
        return dict(store.keyword_search(match, limit=candidates))
    # Filtered: look deeper, then keep the allowed chunks, so k papers come back if k exist.
    hits = store.keyword_search(match, limit=candidates * 20)
    allowed = np.concatenate(list(ids_by_lang.values()))
    keep = np.isin(np.asarray([cid for cid, _ in hits], dtype=np.int64), allowed)
    return {cid: score for (cid, score), ok in zip(hits, keep, strict=True) if ok}


def _paper_langs(store: Store, paper_ids: list[int]) -> dict[int, str]:
    return store.paper_langs(paper_ids)
