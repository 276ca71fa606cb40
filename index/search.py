"""Dense search: search each document language over the whole FAISS index, make the scores
comparable (``index.calibration``), merge, and group chunk hits by paper."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from index.calibration import LanguageStats
from index.vectors import VectorIndex
from kb.errors import InvalidInput
from kb.storage import Store
from kb.types import Chunk, SearchHit, SearchResponse, Snippet

SNIPPET_CHARS = 400
MAX_QUERY_CHARS = 2000


@dataclass(frozen=True)
class SearchContext:
    """What a search reads: the store, the index, and per-language ids and statistics."""

    store: Store
    vectors: VectorIndex
    stats: LanguageStats
    ids_by_lang: dict[str, np.ndarray]


def check_query(query: str, k: int) -> str:
    """The stripped query, or InvalidInput saying what is wrong with it."""
    text = query.strip()
    if not text:
        raise InvalidInput("The query is empty. Type a question or keywords in English or Chinese.")
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidInput(f"The query has {len(text)} characters; the limit is {MAX_QUERY_CHARS}.")
    if k < 1:
        raise InvalidInput(f"k must be at least 1, not {k}.")
    return text


def search(
    text: str,
    qvec: np.ndarray,
    ctx: SearchContext,
    *,
    k: int,
    lang: str | None = None,
    candidates: int = 200,
    snippets: int = 3,
) -> SearchResponse:
    """Papers ranked by their best chunk's calibrated score, each with its best snippets.

    Args:
        qvec: the query's language-centred, normalised embedding.
        lang: keep only chunks in this language (``en``, ``zh``, ...); None searches all.
        candidates: chunk hits fetched per document language before grouping.
    """
    started = time.perf_counter()
    langs = [lang] if lang else sorted(ctx.ids_by_lang)
    hits: list[tuple[float, int]] = []
    for doc_lang in langs:
        only = ctx.ids_by_lang.get(doc_lang, np.zeros(0, np.int64))
        found = ctx.vectors.search(qvec, max(candidates, k * 5), only=only)
        if found:
            raw = np.asarray([s for _, s in found])
            z = ctx.stats.zscore(qvec, raw, doc_lang)
            hits += [(float(s), cid) for (cid, _), s in zip(found, z, strict=True)]
    chunks = ctx.store.chunks_by_ids([cid for _, cid in hits])
    by_paper: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for score, cid in hits:
        chunk = chunks.get(cid)
        if chunk is not None:  # a vector whose chunk is gone is ignored, never shown
            by_paper[chunk.paper_id].append((score, cid))
    ranked = sorted(by_paper.items(), key=lambda item: -max(s for s, _ in item[1]))[:k]
    papers = ctx.store.papers_by_ids([pid for pid, _ in ranked])
    results = []
    for pid, scored in ranked:
        scored.sort(reverse=True)
        snips = [_snippet(chunks[cid], score) for score, cid in scored[:snippets]]
        results.append(SearchHit(score=round(scored[0][0], 4), paper=papers[pid], snippets=snips))
    took = (time.perf_counter() - started) * 1000
    return SearchResponse(query=text, took_ms=round(took, 2), results=results)


def _snippet(chunk: Chunk, score: float) -> Snippet:
    text = chunk.text if len(chunk.text) <= SNIPPET_CHARS else chunk.text[:SNIPPET_CHARS] + "…"
    return Snippet(text=text, page=chunk.page_start, lang=chunk.lang, score=round(score, 4))
