"""Retrieval evaluation: metric functions, the QRELS parser, evaluate() and `kb eval`."""

from __future__ import annotations

import json
from math import log2
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb.cli.evaluate import eval_command
from kb.errors import IngestError, InvalidInput
from kb.evaluate import evaluate, mrr_at, ndcg_at, read_qrels, recall_at
from kb.settings import Settings
from tests.fakes import HashEmbedder

# -- metrics, on hand-computed cases


def test_recall_at():
    assert recall_at(["a", "b", "c"], {"c"}, 1) == 0.0
    assert recall_at(["a", "b", "c"], {"c"}, 3) == 1.0
    assert recall_at(["a", "x", "b"], {"a", "b", "c", "d"}, 10) == 0.5
    assert recall_at([], {"a"}, 10) == 0.0


def test_mrr_at():
    assert mrr_at(["c", "a"], {"c"}, 10) == 1.0
    assert mrr_at(["a", "b", "c"], {"c"}, 10) == pytest.approx(1 / 3)
    assert mrr_at(["a", "b", "c"], {"c"}, 2) == 0.0
    assert mrr_at(["a", "b", "c", "d"], {"b", "d"}, 10) == 0.5  # the first relevant counts


def test_ndcg_at():
    assert ndcg_at(["a", "b", "c"], {"c"}, 10) == 0.5  # 1 / log2(4)
    assert ndcg_at(["a", "b", "c"], {"c"}, 2) == 0.0
    # relevant at ranks 1 and 3 of 2 relevant: (1 + 1/2) / (1 + 1/log2(3))
    assert ndcg_at(["a", "x", "b"], {"a", "b"}, 10) == pytest.approx(1.5 / (1 + 1 / log2(3)))
    # the ideal DCG counts min(|relevant|, k) documents: 2 of 5 relevant at k=2 is perfect
    assert ndcg_at(["a", "b", "x"], {"a", "b", "c", "d", "e"}, 2) == 1.0


def test_metrics_refuse_empty_relevant():
    for fn in (recall_at, mrr_at, ndcg_at):
        with pytest.raises(ValueError):
            fn(["a"], set(), 10)


# -- the QRELS file

DOCS = [
    {"key": "e1", "title": "Reward hacking in reinforcement learning agents",
     "abstract": "Agents exploit misspecified reward functions to get high reward.", "lang": "en"},
    {"key": "e2", "title": "Scalable oversight of superhuman models with debate",
     "abstract": "Two models debate so that a weaker judge can supervise them.", "lang": "en"},
    {"key": "z1", "title": "大型语言模型的欺骗行为评估",
     "abstract": "我们研究模型在评估时隐藏真实目标的欺骗行为。", "lang": "zh"},
    {"key": "z2", "title": "提示注入攻击与防御",
     "abstract": "攻击者在输入中嵌入恶意指令，劫持模型的行为。", "lang": "zh"},
]  # fmt: skip
QUERIES = [
    {"query": DOCS[0]["title"], "lang": "en", "relevant": ["e1"], "kind": "same-title"},
    {"query": DOCS[1]["title"], "lang": "en", "relevant": ["e2"], "kind": "same-title"},
    {"query": DOCS[3]["title"], "lang": "zh", "relevant": ["z2"], "kind": "same-title"},
    {"query": "Evaluating deception in large language models", "lang": "en",
     "relevant": ["z1"], "kind": "cross-title"},
    {"query": "利用辩论监督超人模型", "lang": "zh", "relevant": ["e2"], "kind": "cross-title"},
]  # fmt: skip


def _write(path: Path, lines: list[dict | str]) -> Path:
    text = "".join(
        (x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)) + "\n" for x in lines
    )
    path.write_text(text, encoding="utf-8")
    return path


def _qrels(path: Path) -> Path:
    return _write(path, [{"doc": d} for d in DOCS] + [""] + QUERIES)


def test_read_qrels(tmp_path):
    qrels = read_qrels(_qrels(tmp_path / "q.jsonl"))
    assert [d["key"] for d in qrels.docs] == ["e1", "e2", "z1", "z2"]
    assert qrels.doc_lines == [1, 2, 3, 4]
    first = qrels.queries[0]
    assert (first.lang, first.relevant, first.kind, first.line) == ("en", ("e1",), "same-title", 6)


DOC = {"doc": DOCS[0]}
QUERY = QUERIES[0]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "not a valid UTF-8 JSON line"),
        ('["a list"]', 'either "doc" or "query"'),
        ({**QUERY, "doc": DOCS[1]}, 'either "doc" or "query"'),
        ({"doc": {"title": "no key"}}, '"key"'),
        ({"doc": DOCS[0]}, "duplicate doc key 'e1'"),
        ({**QUERY, "lang": "fr"}, '"lang" must be "en" or "zh"'),
        ({**QUERY, "relevant": []}, '"relevant" must be a non-empty list'),
        ({**QUERY, "relevant": ["nope"]}, "relevant key 'nope' is not the key of any doc"),
        ({**QUERY, "relevent": ["e1"]}, "unknown query field(s) relevent"),
        ({**QUERY, "query": "   "}, "The query is empty"),
        ({**QUERY, "kind": "all"}, "reserved"),
    ],
)
def test_bad_qrels_line_is_named(tmp_path, bad, message):
    path = _write(tmp_path / "q.jsonl", [DOC, QUERY, "", bad])
    with pytest.raises(InvalidInput) as e:
        read_qrels(path)
    assert str(e.value).startswith("q.jsonl line 4: ") and message in str(e.value)


def test_qrels_needs_docs_and_queries(tmp_path):
    with pytest.raises(InvalidInput, match="1 docs and 0 queries"):
        read_qrels(_write(tmp_path / "q.jsonl", [DOC]))


# -- evaluate() end to end with the fake embedder


def test_evaluate_with_fake_embedder(tmp_path, settings):
    qrels = _qrels(tmp_path / "q.jsonl")
    report = evaluate(
        qrels, settings, modes=["dense", "no-such-mode"], k=10, embedder=HashEmbedder()
    )
    assert not settings.data_dir.exists()  # a temporary library, not the caller's store
    assert (report.n_docs, report.n_queries, report.model, report.k) == (4, 5, "hash-test", 10)
    dense, missing = report.modes
    assert dense.available and dense.latency_mean_ms > 0
    assert dense.latency_p95_ms >= dense.latency_mean_ms * 0.5
    rows = {(r.direction, r.kind): r for r in dense.rows}
    assert {d for d, _ in rows} == {"EN->EN", "ZH->ZH", "EN->ZH", "ZH->EN", "macro"}
    en_en = rows["EN->EN", "all"]
    assert en_en.n == 2 and en_en.recall_1 == 1.0 and en_en.mrr == 1.0 and en_en.ndcg == 1.0
    assert rows["ZH->ZH", "same-title"].recall_1 == 1.0
    assert rows["macro", "all"].n == 5 and rows["macro", "cross-title"].n == 2
    directions = [r.recall_k for r in dense.rows if r.kind == "all" and r.direction != "macro"]
    assert rows["macro", "all"].recall_k == pytest.approx(sum(directions) / 4)
    assert not missing.available and "no-such-mode" in missing.reason and not missing.rows
    assert json.loads(json.dumps(report.to_dict()))["modes"][1]["available"] is False
    table = report.to_markdown()
    assert "| mode | direction | kind | queries | R@1 | R@10 | MRR@10 | nDCG@10 |" in table
    assert "| dense | EN->EN | same-title | 2 | 1.000 | 1.000 | 1.000 | 1.000 |" in table
    assert "| dense | EN->EN | all |" not in table  # same as its only kind row
    assert "- no-such-mode: unavailable (" in table and "- dense: latency per query mean" in table


def test_doc_that_cannot_be_ingested_names_its_line(tmp_path, settings):
    bad = {"doc": {"key": "b1", "title": "", "abstract": "no title"}}
    qrels = _write(tmp_path / "q.jsonl", [DOC, bad, QUERY])
    with pytest.raises(IngestError, match=r"1 of the 2 docs .* q\.jsonl line 2: 'title'"):
        evaluate(qrels, settings, modes=["dense"], embedder=HashEmbedder())


def test_evaluate_refuses_bad_arguments(tmp_path, settings):
    qrels = _qrels(tmp_path / "q.jsonl")
    with pytest.raises(InvalidInput, match="k must be at least 1"):
        evaluate(qrels, settings, modes=["dense"], k=0, embedder=HashEmbedder())
    with pytest.raises(InvalidInput, match="at least one search mode"):
        evaluate(qrels, settings, modes=[], embedder=HashEmbedder())


# -- `kb eval` with the real bundled model


def _invoke(settings: Settings, *args: str):
    return CliRunner().invoke(eval_command, list(args), obj={"settings": settings})


def test_cli_eval_json_with_real_model(tmp_path, e5_dir):
    settings = Settings(data_dir=tmp_path / "kb-data", model_dir=e5_dir.parent)
    result = _invoke(settings, str(_qrels(tmp_path / "q.jsonl")), "--json", "-k", "3")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["model"] == "multilingual-e5-small + muse-v3" and body["k"] == 3
    assert [m["mode"] for m in body["modes"]] == ["dense", "keyword", "hybrid"]
    for mode in body["modes"]:  # keyword and hybrid: unavailable until they are built
        assert mode["rows"] if mode["available"] else mode["reason"]
    rows = {(r["direction"], r["kind"]): r for r in body["modes"][0]["rows"]}
    assert rows["EN->EN", "all"]["recall_1"] == 1.0
    assert rows["ZH->EN", "cross-title"]["recall_k"] == 1.0  # debate, across languages


def test_cli_eval_errors_are_one_line(tmp_path):
    settings = Settings(data_dir=tmp_path / "kb-data", model_dir=tmp_path / "models")
    bad = _write(tmp_path / "q.jsonl", [DOC, {**QUERY, "lang": "de"}])
    result = _invoke(settings, str(bad), "--mode", "dense")
    assert result.exit_code == 1
    assert result.output.strip() == (
        'Error: q.jsonl line 2: "lang" must be "en" or "zh", not \'de\'.'
    )
    assert _invoke(settings, str(bad), "--mode", "sparse").exit_code == 2
    assert "Example:" in (eval_command.help or "")


def test_crowded_counts_only_same_language_defeats():
    from kb.evaluate import Query, _crowded
    from kb.types import Paper, SearchHit, SearchResponse

    def hit(key: str, lang: str) -> SearchHit:
        paper = Paper(0, key, "record", "s", "h", key, [], None, lang, None, None, "", None,
                      None, 1, "")  # fmt: skip
        return SearchHit(1.0, paper, [])

    q = Query(line=1, text="t", lang="en", relevant=("zh1",), kind="cross-title")
    same_only = SearchResponse("t", 1.0, [hit("en1", "en"), hit("zh1", "zh")])
    mixed = SearchResponse("t", 1.0, [hit("zh2", "zh"), hit("zh1", "zh")])
    first = SearchResponse("t", 1.0, [hit("zh1", "zh"), hit("en1", "en")])
    missing = SearchResponse("t", 1.0, [hit("en1", "en"), hit("en2", "en")])
    assert _crowded(same_only, q, 10) == 1.0
    assert _crowded(mixed, q, 10) == 0.0
    assert _crowded(first, q, 10) == 0.0
    assert _crowded(missing, q, 10) == 1.0
