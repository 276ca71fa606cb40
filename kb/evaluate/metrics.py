"""Ranking metrics over paper keys, with binary or graded relevance.

``ranked`` is best first and its keys are unique. ``relevant`` is either a collection of keys
(each worth a gain of 1) or a mapping key -> grade (the gain; 0 means not relevant), so the
same functions score the standard run (one relevant paper per query) and the full-text run
(grades 2 / 1).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from math import log2

Relevance = Mapping[str, int] | Collection[str]


def gains(relevant: Relevance) -> dict[str, int]:
    """Key -> gain of every relevant key (grade > 0); ValueError when there is none."""
    if isinstance(relevant, Mapping):
        out = {key: int(grade) for key, grade in relevant.items() if grade > 0}
    else:
        out = dict.fromkeys(relevant, 1)
    if not out:
        raise ValueError("relevant is empty: a query needs at least one relevant key")
    return out


def recall_at(ranked: Sequence[str], relevant: Relevance, k: int) -> float:
    """Share of the relevant keys (any grade) found in the first ``k`` results."""
    wanted = gains(relevant)
    return len(set(ranked[:k]) & set(wanted)) / len(wanted)


def precision_at(ranked: Sequence[str], relevant: Relevance, k: int) -> float:
    """Share of the first ``k`` places held by a relevant key (any grade); empty places count."""
    wanted = gains(relevant)
    return sum(key in wanted for key in ranked[:k]) / k


def mrr_at(ranked: Sequence[str], relevant: Relevance, k: int) -> float:
    """1 / rank of the first relevant key within the first ``k`` results, else 0."""
    wanted = gains(relevant)
    return next((1 / rank for rank, key in enumerate(ranked[:k], 1) if key in wanted), 0.0)


def ndcg_at(ranked: Sequence[str], relevant: Relevance, k: int) -> float:
    """DCG of the first ``k`` results (gain / log2(rank + 1)) over the ideal DCG.

    The gain is the grade (1 for a plain collection of keys); the ideal DCG puts the highest
    grades first and counts min(|relevant|, k) documents.
    """
    wanted = gains(relevant)
    dcg = sum(wanted.get(key, 0) / log2(rank + 1) for rank, key in enumerate(ranked[:k], 1))
    best = sorted(wanted.values(), reverse=True)[:k]
    ideal = sum(gain / log2(rank + 1) for rank, gain in enumerate(best, 1))
    return dcg / ideal
