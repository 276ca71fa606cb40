"""Paper scores that do not reward length, and per-language statistics in small libraries."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from index.calibration import LanguageStats
from index.scoring import PaperScorer, best_of_n
from index.search import PaperHits, position_scores


def test_best_of_one_is_the_score_itself():
    for u in (-2.0, 0.0, 1.5, 6.0):
        assert best_of_n(u, 1) == u


def test_best_of_n_matches_the_exact_tail_probability():
    # P(best of 100 standard normals >= 3) = 1 - Phi(3)^100, then back to one draw's scale
    phi3 = 0.5 * math.erfc(-3 / math.sqrt(2))
    tail = 1 - phi3**100
    assert 0.5 * math.erfc(best_of_n(3.0, 100) / math.sqrt(2)) == pytest.approx(tail, rel=1e-9)
    assert best_of_n(3.0, 100) < best_of_n(3.0, 10) < 3.0
    assert best_of_n(40.0, 1000) > 35  # far in the tail, no overflow to inf or nan
    assert math.isfinite(best_of_n(-8.0, 1000))


def test_chance_best_of_n_is_standard_normal():
    """The corrected best chunk of a paper of pure noise is N(0,1), whatever its length."""
    rng = random.Random(7)
    for n in (1, 10, 300):
        scores = [best_of_n(max(rng.gauss(0, 1) for _ in range(n)), n) for _ in range(3000)]
        assert abs(float(np.mean(scores))) < 0.08 and abs(float(np.std(scores)) - 1) < 0.08


def test_a_long_paper_needs_a_better_best_chunk():
    scorer = PaperScorer(encoders=2)
    short, long = scorer.paper(7.0, 1), scorer.paper(7.0, 388)
    assert short == pytest.approx(7.0 / scorer.scale) and long < short
    assert scorer.paper(8.5, 388) > long
    assert PaperScorer(encoders=2, correct_length=False).paper(7.0, 388) == short


def test_a_large_library_lowers_every_score_alike():
    small, large = PaperScorer(encoders=2, papers=8), PaperScorer(encoders=2, papers=5000)
    pairs = [(7.0, 1), (7.0, 388), (5.0, 20), (3.0, 2)]
    assert all(large.paper(b, n) < small.paper(b, n) for b, n in pairs)
    # the library term is the same for every paper of a search: the order is kept
    order = sorted(pairs, key=lambda p: -small.paper(*p))
    assert order == sorted(pairs, key=lambda p: -large.paper(*p))


def test_shown_scores_go_down_the_list():
    moved = [PaperHits(3, 2.0, []), PaperHits(1, 5.0, []), PaperHits(2, 4.0, [])]
    assert position_scores(moved) == [5.0, 4.0, 2.0]


def _stats(vectors: np.ndarray, lang: str, prior: LanguageStats | None = None) -> LanguageStats:
    return LanguageStats.from_batches(
        [(vectors, [lang] * len(vectors))], vectors.shape[1], prior, 200
    )


def test_small_language_statistics_shrink_toward_the_reference():
    rng = np.random.default_rng(0)
    dim = 16
    scale = np.linspace(0.5, 2.0, dim)
    population = rng.normal(size=(20000, dim)) * scale
    reference = _stats(population[:5000], "en")
    truth = _stats(population[5000:], "en")
    q = rng.normal(size=dim)
    q /= np.linalg.norm(q)

    def sd(stats: LanguageStats) -> float:
        return float(np.sqrt(q @ stats.cov["en"] @ q))

    errors_raw, errors_shrunk = [], []
    for _ in range(40):
        few = population[rng.choice(20000, size=12, replace=False)]
        errors_raw.append(abs(sd(_stats(few, "en")) - sd(truth)))
        errors_shrunk.append(abs(sd(_stats(few, "en", reference)) - sd(truth)))
    assert np.mean(errors_shrunk) < 0.5 * np.mean(errors_raw)
    big = _stats(population[:20000], "en", reference)  # a large library barely moves
    assert sd(big) == pytest.approx(sd(_stats(population[:20000], "en")), rel=0.01)
    shrunk = _stats(population[:3], "en", reference)  # 3 chunks: its own, shrunk language
    assert "en" in shrunk.shrunk_langs
    z = shrunk.zscore(q, np.asarray([1.0]), "en")
    assert np.isfinite(z).all()


def test_the_spread_floor_sets_the_score_shown_not_the_order():
    """A query that spreads normally in English and little in Chinese: with the floor, its
    Chinese z-scores are cut to what a typical query's spread allows (the score shown, judged
    against the relevance floor); without it (the order of the ranking), a Chinese chunk far
    above the query's own Chinese spread outranks an ordinary English one."""
    dim = 4
    cov = {"en": np.diag([1.0, 1.0, 0.01, 0.01]), "zh": np.diag([0.01, 0.01, 1.0, 1.0])}
    mean = {lang: np.zeros(dim) for lang in cov}
    stats = LanguageStats(mean, cov, {"en": 100, "zh": 100}, sd_floor={"en": 0.5, "zh": 0.5})
    query = np.array([1.0, 0.0, 0.0, 0.0])  # spreads 1.0 in en, 0.1 in zh
    en = stats.zscore(query, np.asarray([2.0]), "en", floor=0.0)[0]
    zh = stats.zscore(query, np.asarray([0.3]), "zh", floor=0.0)[0]
    assert en == pytest.approx(2.0) and zh == pytest.approx(3.0) and zh > en
    assert stats.zscore(query, np.asarray([0.3]), "zh")[0] == pytest.approx(0.6)  # 0.3 / 0.5
    assert stats.zscore(query, np.asarray([2.0]), "en")[0] == pytest.approx(2.0)  # no floor hit


def test_the_chunk_map_answers_what_ranking_asks_of_chunks_and_papers():
    """Each chunk's paper and language, each paper's language and chunk count, from rows in
    any order; ids the library does not hold are left out, never guessed."""
    from index.chunkmap import ChunkMap

    chunks = {"zh": np.asarray([[12, 2], [11, 1]]), "en": np.asarray([[30, 3], [10, 1], [40, 8]])}
    papers = {"en": np.asarray([3, 1]), "zh": np.asarray([4, 2])}  # paper 4 has no chunks
    m = ChunkMap.build(chunks, papers)  # chunk 40's paper 8 was written after the papers read
    assert m.chunk_total == 5 and m.paper_total == 4
    assert {k: v.tolist() for k, v in m.by_lang.items()} == {"en": [10, 30, 40], "zh": [11, 12]}
    assert m.papers_of([30, 10, 99, 11]) == {30: 3, 10: 1, 11: 1}
    assert m.langs_of([11, 99, 30]) == {11: "zh", 30: "en"}
    assert m.paper_langs_of([4, 1, 7]) == {4: "zh", 1: "en"}
    assert m.counts([1, 2, 3, 4, 7, 8]) == {1: 2, 2: 1, 3: 1}
    empty = ChunkMap.build({}, {})
    assert empty.papers_of([1]) == {} and empty.counts([1]) == {} and empty.by_lang == {}
