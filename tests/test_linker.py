"""index.linker: translation links from debiased, margin-scored, mutual-best embeddings."""

from __future__ import annotations

import numpy as np
import pytest

import index.linker as linker
from index.linker import LINK_THRESHOLD, Link, find_translations, paper_vector

DIM = 64


def _library(
    seed: int = 0, pairs: int = 30, alone: int = 10, topics: int = 5, noise: float = 0.2
) -> tuple[list[np.ndarray], list[str], set[tuple[int, int]]]:
    """Two fake encoders' paper vectors: ``pairs`` EN/ZH translations, then ``alone`` papers
    per language without one. Papers share topic directions (near neighbours that are not
    translations), and each language adds its own offset, larger than a paper's own content,
    as real multilingual models do."""
    rng = np.random.default_rng(seed)
    topic = rng.normal(size=(topics, DIM))
    offset = {lang: 3.0 * rng.normal(size=DIM) for lang in ("en", "zh")}
    works = [0.4 * topic[w % topics] + rng.normal(size=DIM) for w in range(pairs + 2 * alone)]
    rows: list[tuple[int, str]] = [(w, "en") for w in range(pairs)]
    rows += [(w, "zh") for w in range(pairs)]
    rows += [(pairs + i, "en") for i in range(alone)] + [
        (pairs + alone + i, "zh") for i in range(alone)
    ]
    encoders = []
    for _ in range(2):
        mix = rng.normal(size=(DIM, DIM)) / np.sqrt(DIM)  # each encoder its own view
        vecs = np.stack(
            [(works[w] + offset[lang] + noise * rng.normal(size=DIM)) @ mix for w, lang in rows]
        )
        encoders.append((vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32))
    truth = {(w, pairs + w) for w in range(pairs)}
    return encoders, [lang for _, lang in rows], truth


def _pairs(links: list[Link]) -> set[tuple[int, int]]:
    return {(link.a, link.b) for link in links}


def _one_per_language(links: list[Link], langs: list[str]) -> None:
    seen: set[tuple[int, str]] = set()
    for link in links:
        for paper, other in ((link.a, link.b), (link.b, link.a)):
            key = (paper, langs[other])
            assert key not in seen, f"paper {paper} has two translations in {langs[other]}"
            seen.add(key)


def test_true_pairs_are_linked_and_papers_without_translation_are_not():
    vectors, langs, truth = _library()
    links = find_translations(vectors, langs)
    assert _pairs(links) == truth
    assert {link.reason for link in links} == {"embedding"}
    assert min(link.score for link in links) >= LINK_THRESHOLD
    _one_per_language(links, langs)


def test_one_encoder_is_enough():
    vectors, langs, truth = _library(seed=1)
    for one in vectors:
        found = _pairs(find_translations([one], langs))
        assert found <= truth and len(found) >= 0.9 * len(truth)


def test_a_paper_near_everything_is_not_a_translation():
    vectors, langs, truth = _library(seed=2)
    zh = [i for i, lang in enumerate(langs) if lang == "zh"]
    hub = [np.mean(v[zh], axis=0, keepdims=True) + 0.0 for v in vectors]  # a survey of them all
    vectors = [
        np.concatenate([v, h / np.linalg.norm(h)]) for v, h in zip(vectors, hub, strict=True)
    ]
    links = find_translations(vectors, [*langs, "en"])
    assert all(len(vectors[0]) - 1 not in (link.a, link.b) for link in links)
    assert _pairs(links) == truth


def test_raw_language_offset_is_removed():
    """A direction shared by all Chinese papers (what a model's language region is) biases
    every Chinese paper towards the English papers that lean that way; centring removes it."""
    vectors, langs, truth = _library(seed=3)
    rng = np.random.default_rng(3)
    shifted = []
    for v in vectors:
        push = rng.normal(size=v.shape[1]).astype(np.float32)
        w = v.copy()
        w[[i for i, lang in enumerate(langs) if lang == "zh"]] += 2 * push / np.linalg.norm(push)
        shifted.append(w / np.linalg.norm(w, axis=1, keepdims=True))
    assert _pairs(find_translations(shifted, langs)) == truth


def test_identifier_links_win_over_embeddings():
    vectors, langs, truth = _library(seed=4)
    pairs = len(truth)
    ids: list[set[str]] = [set() for _ in langs]
    ids[0] = ids[pairs + 1] = {"doi:10.1000/shared"}  # EN paper 0 and the ZH twin of EN paper 1
    links = find_translations(vectors, langs, ids)
    by_pair = {(link.a, link.b): link for link in links}
    assert by_pair[(0, pairs + 1)].reason == "identifier"
    assert (0, pairs) not in by_pair and (1, pairs + 1) not in by_pair
    assert _pairs(links) - {(0, pairs + 1)} == truth - {(0, pairs), (1, pairs + 1)}
    _one_per_language(links, langs)


def test_identifiers_alone_link_small_libraries_and_never_the_same_language():
    langs = ["en", "zh", "zh", "en", "und"]
    ids = [{"arxiv:2401.00001"}, {"arxiv:2401.00001"}, {"arxiv:2401.00001"}, {"doi:10.1/a"},
           {"doi:10.1/a"}]  # fmt: skip
    links = find_translations([], langs, ids)
    assert links == [Link(0, 1, 0.0, "identifier")]  # one ZH twin; same language and und: none
    vectors, small_langs, _ = _library(pairs=3, alone=1)  # 4 papers a language
    assert linker.MIN_PAPERS > 4 and find_translations(vectors, small_langs) == []


def test_a_paper_never_gets_two_translations_in_one_language():
    vectors, langs, truth = _library(seed=5)
    pairs = len(truth)
    twin = [np.concatenate([v, v[pairs : pairs + 1]]) for v in vectors]  # ZH paper 0, twice
    links = find_translations(twin, [*langs, "zh"])
    _one_per_language(links, [*langs, "zh"])
    assert sum(0 in (link.a, link.b) for link in links) == 1


def test_blocks_give_the_same_links_as_one_pass(monkeypatch: pytest.MonkeyPatch):
    vectors, langs, _ = _library(seed=6, pairs=40, alone=15)
    whole = find_translations(vectors, langs, threshold=-10)
    monkeypatch.setattr(linker, "_BLOCK", 7)
    blocked = find_translations(vectors, langs, threshold=-10)
    assert _pairs(blocked) == _pairs(whole)
    assert np.allclose([x.score for x in blocked], [x.score for x in whole], atol=1e-4)


def test_paper_vector_and_bad_input():
    chunks = np.asarray([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    assert np.allclose(paper_vector(chunks), [np.sqrt(0.5), np.sqrt(0.5)])
    with pytest.raises(ValueError, match="one row per paper"):
        find_translations([np.zeros((3, 4), dtype=np.float32)], ["en", "zh"])


def test_real_model_links_translations_among_same_topic_papers(real_embedder, xling_records):
    """20 safety papers in both languages among 20 others in one language each (same topic)."""
    pairs, others = xling_records[:20], xling_records[20:40]
    rows = [(r, "en") for r in pairs] + [(r, "zh") for r in pairs]
    rows += [(r, "en" if i % 2 == 0 else "zh") for i, r in enumerate(others)]
    texts = [f"{r[f'{lang}_title']}\n{r[lang]}" for r, lang in rows]
    vectors = real_embedder.encode(texts, kind="passage")
    links = find_translations([vectors], [lang for _, lang in rows])
    truth = {(i, i + len(pairs)) for i in range(len(pairs))}
    found = _pairs(links)
    assert len(found & truth) / len(found) >= 0.95  # precision
    assert len(found & truth) / len(truth) >= 0.85  # recall
