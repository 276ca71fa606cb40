"""Search orchestration for the Library: modes, filters, related papers.

Application layer (like ``kb.service``): it turns a query into per-encoder query vectors and
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
    EncoderQuery,
    SearchContext,
    build_response,
    dense_scores,
    fuse_in_language,
    group_translations,
    rank_papers,
)
from ingest.lang import detect_lang
from kb.errors import InvalidInput
from kb.storage import Store
from kb.types import SearchResponse

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
) -> SearchResponse:
    """Search in ``mode``; ``like`` (one vector per encoder) replaces the query embedding.

    Args:
        filtered: ``ids_by_lang`` was narrowed by filters (not every chunk is allowed).
        fusion: how hybrid mode merges keyword evidence (``index.search.fuse_in_language``).
        group: show a paper's translations with it rather than as separate hits.
    """
    started = time.perf_counter()
    if mode not in SEARCH_MODES:
        raise InvalidInput(f"mode must be one of {', '.join(SEARCH_MODES)}, not {mode!r}.")
    ctx = SearchContext(store=store, ids_by_lang=ids_by_lang)
    langs = sorted(ids_by_lang)
    qlang = detect_lang(text) if text else "und"
    if like is not None:
        mode = "dense"  # searching with a paper's vectors: there are no query terms
    scores: dict[int, float] = {}
    if mode in ("dense", "hybrid"):
        qvecs = like or [d.embed_query(text, qlang) for d in dense]
        queries = [EncoderQuery(d.vectors, d.stats(), q) for d, q in zip(dense, qvecs, strict=True)]
        scores = dense_scores(queries, ctx, langs, candidates)
    if mode == "keyword":
        scores = _keyword_scores(store, text, ids_by_lang, candidates, filtered)
    ranked, chunks = rank_papers(scores, ctx)
    via = {pid: ["keyword" if mode == "keyword" else "dense"] for pid, _ in ranked}
    if mode == "hybrid":
        kw_ranked, kw_chunks = rank_papers(
            _keyword_scores(store, text, ids_by_lang, candidates, filtered), ctx
        )
        paper_lang = _paper_langs(store, [pid for pid, _ in ranked])
        ranked = fuse_in_language(ranked, kw_ranked, paper_lang, qlang, fusion)
        chunks.update(kw_chunks)
        for pid, _ in kw_ranked:
            via.setdefault(pid, []).append("keyword")
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
    return {pid: p.lang for pid, p in store.papers_by_ids(paper_ids).items()}
