"""Retrieval evaluation: metric functions, the QRELS parser, evaluate() and `kb eval`."""

from __future__ import annotations

import json
from math import log2
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb.cli.evaluate import eval_command
from kb.errors import IngestError, InvalidInput
from kb.evaluate import (
    Query,
    crowding,
    evaluate,
    mrr_at,
    ndcg_at,
    precision_at,
    read_qrels,
    recall_at,
)
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


def test_graded_ndcg_and_precision():
    graded = {"a": 2, "b": 1}
    assert ndcg_at(["a", "b"], graded, 10) == 1.0
    # b (gain 1) first, a (gain 2) second: (1 + 2/log2(3)) / (2 + 1/log2(3))
    assert ndcg_at(["b", "a"], graded, 10) == pytest.approx((1 + 2 / log2(3)) / (2 + 1 / log2(3)))
    assert ndcg_at(["x", "a"], {"a": 2, "z": 0}, 10) == pytest.approx(1 / log2(3))  # 0: not
    assert ndcg_at(["a"], ["a"], 10) == ndcg_at(["a"], {"a": 1}, 10) == 1.0
    assert precision_at(["a", "x", "b", "y", "z", "c"], graded, 5) == 0.4
    assert precision_at(["a"], graded, 5) == 0.2  # empty places count as misses
    assert recall_at(["b"], graded, 10) == 0.5 and mrr_at(["x", "b"], graded, 10) == 0.5


def test_metrics_refuse_empty_relevant():
    for fn in (recall_at, mrr_at, ndcg_at, precision_at):
        with pytest.raises(ValueError):
            fn(["a"], set(), 10)
        with pytest.raises(ValueError):
            fn(["a"], {"a": 0}, 10)


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
    assert (first.lang, first.relevant, first.kind, first.line) == (
        "en",
        {"e1": 1},
        "same-title",
        6,
    )


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
        ({**QUERY, "relevant": {"e1": 0}}, "at least one above 0"),
        ({**QUERY, "relevant": {"e1": "2"}}, "grades (integers >= 0)"),
        ({**QUERY, "relevant": {"e1": 2, "nope": 1}}, "relevant key 'nope' is not the key"),
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
    assert dense.floor is not None and dense.floor.off_topic == 0  # none given
    assert f"| dense | {settings.min_score:.2f} | 0 | - | - |" in table


def test_the_floor_check_counts_off_topic_results(tmp_path, settings):
    qrels = _qrels(tmp_path / "q.jsonl")
    floor = settings.min_score
    for min_score, above in ((-100.0, 2), (100.0, 0)):  # every result above, none above
        report = evaluate(
            qrels, settings.replace(min_score=min_score), modes=["dense"], k=10,
            embedder=HashEmbedder(), off_topic=["zzz qqq", "无关的查询"],
        )  # fmt: skip
        check = report.modes[0].floor
        assert check is not None and check.floor == min_score and check.off_topic == 2
        assert check.off_topic_above == above
        assert check.top_above == (1.0 if above else 0.0)
        assert "| dense | " in report.to_markdown().split("Relevance floor")[1]
    assert settings.min_score == floor


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
    off = tmp_path / "off.txt"
    off.write_text("sourdough bread recipe\n\n红烧肉的家常做法\n", encoding="utf-8")
    qrels = str(_qrels(tmp_path / "q.jsonl"))
    result = _invoke(settings, qrels, "--json", "-k", "3", "--off-topic", str(off))
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    floor = body["modes"][0]["floor"]  # dense: both off-topic queries under the floor
    assert floor["floor"] == settings.min_score and floor["off_topic"] == 2
    assert floor["off_topic_above"] == 0 and floor["off_topic_max"] < settings.min_score
    assert body["modes"][1]["floor"] is None  # keyword: BM25 has no floor
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
    from kb.evaluate.run import _crowded

    q = Query(line=1, text="t", lang="en", relevant={"zh1": 1, "en9": 1}, kind="cross-title")

    def crowded(*ranked: tuple[str, str]) -> float:
        return _crowded(q, "zh", [key for key, _ in ranked], [lang for _, lang in ranked], 10)

    assert crowded(("en1", "en"), ("zh1", "zh")) == 1.0
    assert crowded(("en9", "en"), ("zh1", "zh")) == 1.0  # even a relevant English paper
    assert crowded(("zh2", "zh"), ("zh1", "zh")) == 0.0
    assert crowded(("zh1", "zh"), ("en1", "en")) == 0.0
    assert crowded(("en1", "en"), ("en2", "en")) == 1.0  # missing, only English above


# -- full text: PDFs as documents, graded relevance, crowding


def test_crowding_compares_top5_share_with_judged_share():
    queries = [
        Query(line=i, text=f"q{i}", lang="en", relevant={rel: 2}, kind=None)
        for i, rel in enumerate(["a", "b", "c", "d"])
    ]
    rankings = [["long", "a"], ["long", "b"], ["long", "c"], ["d", "x"]]
    rows = {c.key: c for c in crowding(queries, rankings, ["a", "b", "c", "d", "long", "quiet"])}
    assert (rows["long"].top5, rows["long"].judged, rows["long"].top5_not_relevant) == (0.75, 0, 3)
    assert rows["long"].flagged and not rows["a"].flagged
    assert rows["x"].excess == pytest.approx(0.25) and rows["x"].flagged
    assert rows["a"].excess == 0.0 and "quiet" not in rows
    assert next(iter(rows)) == "long"  # most in excess first


def _pdf_qrels(tmp_path: Path, make_pdf) -> tuple[Path, Path]:
    """Three PDFs named by language (one in a second folder) and graded queries over them,
    one of them about a PDF that is not given."""
    folder, other = tmp_path / "pdfs", tmp_path / "more"
    folder.mkdir()
    other.mkdir()
    make_pdf("en_reward.pdf", [["Reward hacking in reinforcement learning agents"] * 3])
    make_pdf("en_debate.pdf", [["Scalable oversight of superhuman models with debate"] * 3])
    make_pdf("zh_inject.pdf", [["提示注入攻击与防御：攻击者在输入中嵌入恶意指令"] * 3])
    for name, where in (("en_reward.pdf", folder), ("en_debate.pdf", folder)):
        (tmp_path / name).rename(where / name)
    (tmp_path / "zh_inject.pdf").rename(other / "zh_inject.pdf")
    queries = [
        {"id": "q1", "query": "Reward hacking in reinforcement learning agents", "lang": "en",
         "kind": "title", "relevant": {"en_reward.pdf": 2, "zh_inject.pdf": 1},
         "note": "graded; both languages"},
        {"query": "提示注入攻击与防御", "lang": "zh", "relevant": {"zh_inject.pdf": 2}},
        {"query": "debate", "lang": "en", "relevant": {"en_missing.pdf": 2}},
    ]  # fmt: skip
    return _write(tmp_path / "full.jsonl", queries), other


def test_read_qrels_with_pdf_folders_drops_what_is_not_there(tmp_path, make_pdf):
    qrels_path, other = _pdf_qrels(tmp_path, make_pdf)
    qrels = read_qrels(qrels_path, [tmp_path / "pdfs", other])
    assert sorted(qrels.pdfs) == ["en_debate.pdf", "en_reward.pdf", "zh_inject.pdf"]
    assert (qrels.n_docs, len(qrels.queries), qrels.dropped) == (3, 2, 1)
    assert qrels.queries[0].relevant == {"en_reward.pdf": 2, "zh_inject.pdf": 1}
    only_main = read_qrels(qrels_path, [tmp_path / "pdfs"])
    assert [q.relevant for q in only_main.queries] == [{"en_reward.pdf": 2}]
    assert only_main.dropped == 2
    with pytest.raises(InvalidInput, match="No PDF file in"):
        read_qrels(qrels_path, [tmp_path])  # no PDF at the top of tmp_path
    with pytest.raises(InvalidInput, match="Two documents are named 'zh_inject.pdf'"):
        read_qrels(qrels_path, [other, other / "zh_inject.pdf"])
    with pytest.raises(InvalidInput, match="0 docs and 3 queries"):
        read_qrels(qrels_path)  # no PDFs given, no doc lines


def test_evaluate_pdfs_by_file_name(tmp_path, settings, make_pdf):
    qrels_path, other = _pdf_qrels(tmp_path, make_pdf)
    keep = tmp_path / "kept"
    report = evaluate(
        qrels_path,
        settings,
        modes=["dense"],
        k=10,
        docs=[tmp_path / "pdfs", other],
        embedder=HashEmbedder(),
        keep=keep,
    )
    assert (report.n_docs, report.n_queries, report.dropped) == (3, 2, 1)
    rows = {(r.direction, r.kind): r for r in report.modes[0].rows}
    # q1 counts in EN->EN and EN->ZH (relevant documents in both) and once in EN->*
    assert {d for d, _ in rows} == {"EN->EN", "EN->ZH", "ZH->ZH", "EN->*", "macro"}
    assert rows["EN->*", "all"].n == 1 and rows["EN->EN", "title"].n == 1
    assert rows["ZH->ZH", "all"].recall_1 == 1.0 and rows["EN->EN", "all"].mrr == 1.0
    # rank 1 the grade-2 English PDF: the grade-1 Chinese one decides the rest of the nDCG
    assert 2 / 3 < rows["EN->EN", "all"].ndcg <= 1.0
    assert rows["macro", "all"].n == 3  # the EN->* row is not a direction of its own
    crowd = {c.key: c for c in report.modes[0].crowding}
    assert crowd["zh_inject.pdf"].judged == 1.0 and crowd["en_debate.pdf"].judged == 0.0
    table = report.to_markdown()
    assert "2 queries (1 dropped: no relevant document here) over 3 documents" in table
    assert "| P@5 |" in table and "| dense | en_debate.pdf" in table
    assert report.to_dict()["modes"][0]["flagged"] == [c.key for c in report.modes[0].flagged]
    again = evaluate(
        qrels_path, settings, modes=["dense"], docs=[tmp_path / "pdfs", other],
        embedder=HashEmbedder(), keep=keep,
    )  # fmt: skip
    assert again.modes[0].rows == report.modes[0].rows  # the kept library, reused


def test_an_unreadable_pdf_is_reported_and_keeps_its_direction(tmp_path, settings, make_pdf):
    folder = tmp_path / "pdfs"
    folder.mkdir()
    make_pdf("en_reward.pdf", [["Reward hacking in reinforcement learning agents"] * 3])
    make_pdf("zh_scan.pdf", [[]])  # a page without text: kb needs OCR to read it
    for name in ("en_reward.pdf", "zh_scan.pdf"):
        (tmp_path / name).rename(folder / name)
    qrels = _write(
        tmp_path / "q.jsonl",
        [
            {"query": "reward hacking", "lang": "en", "relevant": {"en_reward.pdf": 2}},
            {"query": "奖励黑客", "lang": "zh", "relevant": {"zh_scan.pdf": 2}},
        ],
    )
    report = evaluate(qrels, settings, modes=["dense"], docs=[folder], embedder=HashEmbedder())
    assert list(report.unreadable) == ["zh_scan.pdf"] and "OCR" in report.unreadable["zh_scan.pdf"]
    rows = {(r.direction, r.kind) for r in report.modes[0].rows}
    assert ("ZH->ZH", "all") in rows and not any("UND" in d for d, _ in rows)
    assert "not ingested, so never ranked: zh_scan.pdf" in report.to_markdown()
