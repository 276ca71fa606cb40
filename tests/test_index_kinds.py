"""The FAISS index kind follows the library's size; an IVF index finds what exact search finds,
scores it the same, and survives reopening, deletion and filters; the memory budget."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from index.calibration import LanguageStats
from index.search import EncoderQuery, score_chunks
from index.vectors import (
    FLAT,
    IVF,
    IVF_MIN_TRAIN,
    RESCORE_TOP,
    IndexPlan,
    VectorIndex,
    bytes_per_vector,
)
from kb.errors import ConfigError, MemoryBudgetExceeded
from kb.library.facade import Library
from kb.library.memory import MemoryBudget
from kb.library.query import SearchQuery
from kb.settings import Settings
from tests.fakes import HashEmbedder

WORDS = (
    "alignment reward hacking deception power seeking evaluation misuse governance "
    "interpretability oversight agent policy shutdown corrigibility sandbagging "
    "对齐 欺骗 奖励 评估 治理 滥用 权力 监督 可解释性 关机"
).split()
QUERIES = [
    "reward hacking deception",
    "对齐 评估 治理",
    "power seeking shutdown",
    "misuse oversight policy",
    "可解释性 监督",
    "sandbagging evaluation",
]


def _feed(path, n: int, start: int = 0):
    rng = random.Random(start)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(start, start + n):
            title = " ".join(rng.choice(WORDS) for _ in range(5))
            abstract = " ".join(rng.choice(WORDS) for _ in range(30))
            row = {"key": f"k{i}", "title": f"{title} {i}", "abstract": abstract}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


@pytest.fixture(scope="module")
def feed(tmp_path_factory):
    return _feed(tmp_path_factory.mktemp("feed") / "papers.jsonl", IVF_MIN_TRAIN + 200)


def _library(tmp_path, name: str, **overrides) -> Library:
    settings = Settings(
        data_dir=tmp_path / name, model_dir=tmp_path / "models", second_encoder="none"
    ).replace(**overrides)
    return Library(settings, embedder=HashEmbedder())


def _ranked(lib: Library, query: str, **filters) -> list[tuple[str, float]]:
    found = lib.search(SearchQuery.build(query, mode="dense", k=10, **filters))
    return [(hit.paper.key, hit.score) for hit in found.results]


def test_plan_follows_the_size():
    auto = IndexPlan(ivf_min=10_000)
    assert auto.kind_for(9_999) == FLAT and auto.kind_for(10_000) == IVF
    assert auto.kind_for(6_000, current=IVF) == IVF  # stays until under half the threshold
    assert auto.kind_for(4_999, current=IVF) == FLAT
    assert IndexPlan(kind="flat").kind_for(10**7) == FLAT
    assert IndexPlan(kind="ivf").kind_for(IVF_MIN_TRAIN) == IVF
    assert IndexPlan(kind="ivf").kind_for(IVF_MIN_TRAIN - 1) == FLAT  # too few to train
    assert IndexPlan(nprobe=5).probes(100) == 5 and IndexPlan().probes(64) == 64
    assert IndexPlan().probes(5000) == 300
    # a deep search of few allowed vectors searches more lists
    assert IndexPlan().probes(1000, k=800, among=10_000) == 640


def test_ivf_index_is_retrained_when_the_library_outgrows_it():
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((1500, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    plan = IndexPlan(kind="ivf")
    index = VectorIndex.trained(16, plan, {"en": vecs[:1200]}, {"en": 1200})
    index.add(np.arange(1, 1501), vecs, ["en"] * 1500)
    assert plan.unfit(index) is None
    index.trained_on = 300
    assert "grew from 300 to 1500" in str(plan.unfit(index))
    assert "exact index" in str(IndexPlan(kind="flat").unfit(index))


def test_ivf_search_keeps_to_the_allowed_ids_and_forgets_removed_ones():
    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((3000, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    vecs[1::2] = -vecs[1::2]  # two languages in opposite regions: each has its own lists
    langs = ["en", "zh"] * 1500
    ids = np.arange(10, 3010, dtype=np.int64)
    samples = {"en": vecs[0::2], "zh": vecs[1::2]}
    index = VectorIndex.trained(16, IndexPlan(kind="ivf"), samples, {"en": 1500, "zh": 1500})
    index.add(ids, vecs, langs)
    assert set(index.lists_of) == {"en", "zh"}
    odd = ids[ids % 2 == 1]  # the "zh" chunks (ids 11, 13, ...)
    found = [cid for cid, _ in index.search(vecs[1], 50, only=odd, lang="zh")]
    assert len(found) == 50 and all(cid % 2 == 1 for cid in found) and found[0] == 11
    # an English query still reaches the Chinese chunks: their own lists are probed
    across = [cid for cid, _ in index.search(-vecs[1], 50, only=odd, lang="zh")]
    assert len(across) == 50 and all(cid % 2 == 1 for cid in across)
    index.remove(np.asarray([11]))
    assert 11 not in [cid for cid, _ in index.search(vecs[1], 50, only=odd, lang="zh")]
    assert sorted(index.ids().tolist()) == [i for i in ids.tolist() if i != 11]


def test_ivf_scores_its_best_candidates_exactly_and_the_rest_from_8_bits():
    """``scores_of`` on an IVF index: the RESCORE_TOP best candidates by their 8-bit scores are
    read exactly (and only they), the rest keep the 8-bit score, close to the exact one; an
    exact index scores every candidate exactly."""
    rng = np.random.default_rng(3)
    vecs = rng.standard_normal((2000, 32)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = np.arange(5000, 7000, dtype=np.int64)
    exact_of = dict(zip(ids.tolist(), vecs, strict=True))
    asked: list[int] = []

    def exact(wanted: np.ndarray, lang: str | None) -> np.ndarray:
        asked.extend(wanted.tolist())
        return np.stack([exact_of[int(i)] for i in wanted])

    index = VectorIndex.trained(32, IndexPlan(kind="ivf"), {"en": vecs}, {"en": 2000})
    index.add(ids, vecs, ["en"] * 2000)
    index.exact = exact
    query = vecs[0]
    candidates = np.asarray([c for c, _ in index.search(query, 400, lang="en")], np.int64)
    truth = np.stack([exact_of[int(i)] for i in candidates]) @ query
    scores = index.scores_of(candidates, query, "en")
    assert len(asked) == RESCORE_TOP and set(asked) <= set(candidates.tolist())
    rescored = np.isin(candidates, asked)
    assert np.allclose(scores[rescored], truth[rescored], atol=1e-6)
    assert np.allclose(scores[~rescored], truth[~rescored], atol=0.02)
    assert not np.allclose(scores[~rescored], truth[~rescored], atol=1e-6)  # 8-bit, not read
    best = np.argsort(-truth)[:10]
    assert np.array_equal(np.argsort(-scores)[:10], best)  # the ten best, in order
    few = candidates[:5]
    asked.clear()
    assert np.allclose(index.scores_of(few, query, "en"), truth[:5], atol=1e-6)
    assert sorted(asked) == sorted(few.tolist())
    flat = VectorIndex(32)
    flat.add(ids, vecs, ["en"] * 2000)
    assert np.allclose(flat.scores_of(candidates, query), truth, atol=1e-6)
    assert len(flat.scores_of(np.zeros(0, np.int64), query)) == 0


def test_a_search_scores_each_chunk_once():
    """``score_chunks`` through one ``EncoderQuery`` reads a chunk's score once: asked again
    (its paper's best chunk, hybrid's fusion), among other chunks, it is the same number,
    though the other chunks change which are read exactly."""
    rng = np.random.default_rng(4)
    vecs = rng.standard_normal((1500, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = np.arange(1, 1501, dtype=np.int64)
    asked: list[int] = []

    def exact(wanted: np.ndarray, lang: str | None) -> np.ndarray:
        asked.extend(wanted.tolist())
        return vecs[wanted - 1]

    index = VectorIndex.trained(16, IndexPlan(kind="ivf"), {"en": vecs}, {"en": 1500})
    index.add(ids, vecs, ["en"] * 1500)
    index.exact = exact
    stats = LanguageStats({"en": np.zeros(16)}, {"en": np.eye(16) / 16}, {"en": 1500})
    query = EncoderQuery(index, stats, vecs[0])
    first = score_chunks([query], "en", ids[:300].tolist(), all_in=True)
    read = len(asked)
    assert read == RESCORE_TOP
    again = score_chunks([query], "en", ids[250:400].tolist(), all_in=True)
    assert all(again[cid] == first[cid] for cid in range(251, 301))
    assert len(asked) - read == RESCORE_TOP  # only the 100 new chunks were scored
    assert set(asked[read:]) <= set(range(301, 401))


def test_an_exact_index_searches_every_language_in_one_pass_as_one_search_each():
    """``search_langs`` on an exact index scores every vector once and keeps each language's
    best: the same chunks and scores as a FAISS search per language, after adds and removes,
    with allowed ids that hold no vector left out."""
    rng = np.random.default_rng(2)
    vecs = rng.standard_normal((500, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = rng.permutation(np.arange(1000, 1500, dtype=np.int64))  # rows not in id order
    index = VectorIndex(16)
    index.add(ids, vecs, ["en"] * 500)
    only = {"en": np.sort(ids[ids % 3 == 0]), "zh": np.sort(np.append(ids[ids % 3 == 1], 9999))}
    for k in (1, 20, 400):
        both = index.search_langs(vecs[7], k, only)
        for lang, allowed in only.items():
            alone = index.search(vecs[7], k, only=allowed)
            assert [c for c, _ in both[lang]] == [c for c, _ in alone], (lang, k)
            assert np.allclose([s for _, s in both[lang]], [s for _, s in alone], atol=1e-5)
    assert len(index.search_langs(vecs[7], 400, only)["zh"]) == int((ids % 3 == 1).sum())
    gone = int(index.search_langs(vecs[7], 1, only)["en"][0][0])
    index.remove(np.asarray([gone]))
    index.add(np.asarray([3000]), vecs[7:8], ["en"])
    after = index.search_langs(vecs[7], 5, {**only, "en": np.append(only["en"], 3000)})
    assert after["en"][0][0] == 3000 and gone not in [c for c, _ in after["en"]]
    assert index.search_langs(vecs[7], 5, {"en": np.zeros(0, np.int64)}) == {"en": []}


def test_ivf_library_finds_and_scores_what_exact_search_does(tmp_path, feed):
    flat = _library(tmp_path, "flat", index="flat")
    ivf = _library(tmp_path, "ivf", index="ivf")
    for lib in (flat, ivf):
        lib.ingest([feed])
    assert ivf.encoders()[0].vectors.kind == IVF and flat.encoders()[0].vectors.kind == FLAT
    same = 0
    for query in QUERIES:
        exact, approx = _ranked(flat, query), _ranked(ivf, query)
        same += [key for key, _ in exact] == [key for key, _ in approx]
        scores = dict(exact)
        for key, score in approx:  # a paper both found scores the same: exact rescoring
            if key in scores:
                assert score == pytest.approx(scores[key], abs=1e-3)
    assert same >= len(QUERIES) - 1
    # filters are applied inside the approximate search too
    zh = _ranked(ivf, "对齐 评估", lang="zh")
    assert zh and all(ivf.paper(key).lang == "zh" for key, _ in zh)
    # a deleted paper is gone from the index
    top = _ranked(ivf, QUERIES[0])[0][0]
    ivf.remove(top)
    assert top not in [key for key, _ in _ranked(ivf, QUERIES[0])]
    flat.close()
    ivf.close()
    reopened = _library(tmp_path, "ivf", index="ivf")
    side = reopened.encoders()[0]
    assert side.vectors.kind == IVF and side.vectors.rebuilt_because is None  # loaded as saved
    assert top not in [key for key, _ in _ranked(reopened, QUERIES[0])]
    reopened.close()


def test_auto_switches_to_ivf_once_the_library_passes_the_threshold(tmp_path):
    lib = _library(tmp_path, "auto", ivf_min_chunks=IVF_MIN_TRAIN)
    lib.ingest([_feed(tmp_path / "a.jsonl", IVF_MIN_TRAIN // 2)])
    assert lib.encoders()[0].vectors.kind == FLAT
    lib.ingest([_feed(tmp_path / "b.jsonl", IVF_MIN_TRAIN // 2 + 50, start=10_000)])
    side = lib.encoders()[0]
    assert side.vectors.kind == IVF and "IVF index suits it" in str(side.vectors.rebuilt_because)
    config = json.loads((lib.settings.index_dir / "config.json").read_text())
    assert config["kind"] == IVF and config["index_type"].startswith("IVF")
    assert _ranked(lib, QUERIES[0])
    lib.close()


def test_memory_budget_refuses_to_open_a_library_past_it(tmp_path, feed):
    lib = _library(tmp_path, "small", memory_mb=1)
    with pytest.raises(MemoryBudgetExceeded, match=r"over KB_MEMORY_MB=1\b.*Raise KB_MEMORY_MB"):
        lib.ingest([feed])
    lib.close()


def test_memory_budget_counts_the_index_kind(tmp_path):
    flat = _library(tmp_path, "flat", index="flat")
    budget = MemoryBudget(limit_mib=100, models_mib=50)
    fits = int(50 * 2**20 / bytes_per_vector(64, FLAT))
    budget.check(flat.encoders(), fits - 10)  # 50 MiB of models + just under 50 of vectors
    with pytest.raises(MemoryBudgetExceeded, match="KB_INDEX=ivf"):
        budget.check(flat.encoders(), fits + 1000)
    MemoryBudget(limit_mib=0).check(flat.encoders(), 10**9)  # no budget
    flat.close()
    # past KB_IVF_MIN_CHUNKS the automatic plan counts 1 byte a dimension: the same fits
    auto = _library(tmp_path, "auto", ivf_min_chunks=fits // 2)
    budget.check(auto.encoders(), fits + 1000)
    auto.close()


@pytest.mark.parametrize("env", [{"KB_INDEX": "hnsw"}, {"KB_NPROBE": "-1"}, {"KB_MEMORY_MB": "-5"}])
def test_bad_index_settings_are_refused(env):
    with pytest.raises(ConfigError, match=next(iter(env))):
        Settings.from_env(env)
