"""The tantivy keyword index of large libraries (index.terms): built from the store's keyword
rows, kept in step through the store's keyword log, and searched instead of FTS5."""

from __future__ import annotations

import dataclasses
import json
import logging
from contextlib import closing

import pytest

from index.keywords import analyze, fts_document, fts_query
from index.terms import TermIndex
from kb.errors import ConfigError
from kb.library.facade import Library
from kb.library.query import SearchQuery
from kb.settings import Settings
from kb.store import Store
from tests.fakes import HashEmbedder
from tests.test_keywords import _add

RECORDS = [
    {"key": "en1", "title": "Reward hacking in reinforcement learning", "abstract":
     "Agents exploit misspecified rewards; reward models fail under reward pressure."},
    {"key": "en2", "title": "Jailbreak attacks on chat models", "abstract":
     "Prompts that bypass refusals."},
    {"key": "en3", "title": "Compute thresholds for AI governance", "abstract":
     "Regulating training compute."},
    {"key": "zh1", "title": "强化学习中的奖励黑客", "abstract": "智能体利用错误设定的奖励。"},
    {"key": "zh2", "title": "大模型越狱攻击", "abstract": "绕过拒绝的提示。"},
]  # fmt: skip


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "kb.sqlite3")
    yield s
    s.close()


def _terms(index: TermIndex, query: str, k: int = 10) -> list[int]:
    return [cid for cid, _ in index.search(analyze(query), k)]


def _fts(store: Store, query: str) -> list[int]:
    return [cid for cid, _ in store.keywords.search(fts_query(query) or "", limit=10)]


# ---------------------------------------------------------------- the store's keyword log


def test_every_keyword_write_is_logged(store):
    assert store.keywords.log_seq() == 0 and store.keywords.changed_since(0, 100) == (0, [])
    a = _add(store, "a", [("en", "deceptive alignment"), ("en", "mesa optimizers")])
    seq, ids = store.keywords.changed_since(0, 100) or (0, [])
    assert seq == store.keywords.log_seq() == 2 and sorted(ids) == a
    store.keywords.set_texts([(a[0], fts_document("corrigibility"))])
    assert store.keywords.changed_since(seq, 100) == (3, [a[0]])
    store.papers.remove(store.papers.by_key("a").id)
    last, gone = store.keywords.changed_since(3, 100) or (0, [])
    assert last == 5 and sorted(gone) == a
    b = _add(store, "b", [("en", "power seeking")])
    store.keywords.delete_rows(b)
    assert store.keywords.changed_since(last, 100) == (7, b)
    assert store.keywords.changed_since(0, 6) is None  # too many: build again instead
    assert store.keywords.texts_of(a + b) == {}
    store.keywords.trim_log(5)
    assert store.keywords.log_seq() == 7 and store.keywords.changed_since(5, 100) == (7, b)
    assert store.keywords.changed_since(3, 100) is None  # trimmed away: build again
    store.keywords.trim_log(7)
    assert store.keywords.log_seq() == 7 and store.keywords.changed_since(7, 100) == (7, [])


# ---------------------------------------------------------------- the index itself


def test_build_finds_what_fts5_finds_best_first(store, tmp_path):
    ids = _add(store, "a", [
        ("en", "Reward hacking: agents exploit a reward; reward models fail."),
        ("en", "A survey of reward design for agents."),
        ("en", "Sycophancy and reward: models flatter users."),
        ("zh", "我们评估大语言模型的对齐。"),
        ("en", "x" * 300 + " interpretability"),
    ])  # fmt: skip
    index = TermIndex.build(tmp_path / "terms", store.keywords)
    assert index.size == 5 and index.seq == store.keywords.log_seq()
    hits = index.search(analyze("reward"), 10)
    assert [cid for cid, _ in hits][0] == ids[0]  # the chunk saying it three times
    assert {cid for cid, _ in hits} == set(_fts(store, "reward")) == set(ids[:3])
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert _terms(index, "sycophancy rewards")[0] == ids[2] == _fts(store, "sycophancy rewards")[0]
    assert _terms(index, "語言模型對齊") == [ids[3]]  # traditional folded, segmented alike
    assert _terms(index, "interpretability") == [ids[4]]  # its over-long word is left out
    assert _terms(index, "x" * 300) == _terms(index, "absent") == _terms(index, "") == []
    assert len(index.search(analyze("reward"), 2)) == 2


def test_catch_up_follows_adds_replacements_and_removals(store, tmp_path):
    old = _add(store, "a", [("en", "deceptive alignment"), ("en", "mesa optimizers")])
    index = TermIndex.build(tmp_path / "terms", store.keywords)
    keep = _add(store, "b", [("en", "deceptive agents")])
    new = _add(store, "a", [("en", "corrigibility")])  # replaces paper a
    assert _terms(index, "deceptive") == old[:1]  # not caught up yet: what it was built from
    assert index.catch_up(store.keywords) == "done" and index.seq == store.keywords.log_seq()
    assert _terms(index, "deceptive") == keep and _terms(index, "corrigibility") == new
    assert _terms(index, "mesa") == []
    store.papers.remove(store.papers.by_key("b").id)
    assert index.catch_up(store.keywords) == "done"
    assert _terms(index, "deceptive") == [] and index.size == 1
    again = TermIndex.open(tmp_path / "terms")  # what a new process finds
    assert again is not None and again.seq == index.seq and _terms(again, "corrigibility") == new


def test_far_behind_asks_for_a_build(store, tmp_path, monkeypatch):
    _add(store, "a", [("en", "deceptive alignment")])
    index = TermIndex.build(tmp_path / "terms", store.keywords)
    monkeypatch.setattr("index.terms.CATCH_UP_SHARE", 0.0)
    monkeypatch.setattr(type(store.keywords), "changed_since", lambda self, seq, limit: None)
    assert index.catch_up(store.keywords) == "behind"


def test_an_unreadable_folder_is_none_and_builds_again(store, tmp_path, caplog):
    ids = _add(store, "a", [("en", "deceptive alignment")])
    folder = tmp_path / "terms"
    assert TermIndex.open(folder) is None  # none yet
    TermIndex.build(folder, store.keywords)
    (folder / "kb_terms.json").write_text("{not json", encoding="utf-8")
    assert TermIndex.open(folder) is None
    (folder / "kb_terms.json").write_text(json.dumps({"format": 1, "seq": 1, "build": "x"}))
    (folder / "meta.json").write_text("garbage", encoding="utf-8")  # tantivy's own file
    with caplog.at_level(logging.WARNING, logger="index.terms"):
        assert TermIndex.open(folder) is None
    assert "cannot be read" in caplog.text
    rebuilt = TermIndex.build(folder, store.keywords)
    assert _terms(rebuilt, "deceptive") == ids
    assert not folder.with_name("terms.new").exists() and not folder.with_name("terms.old").exists()


# ---------------------------------------------------------------- the library's use of it


def _library(tmp_path, **changes) -> Library:
    base = Settings(
        data_dir=tmp_path / "kb-data", model_dir=tmp_path / "models", second_encoder="none"
    )
    return Library(dataclasses.replace(base, **changes), embedder=HashEmbedder())


def _feed(tmp_path, records: list[dict[str, str]], name: str = "feed.jsonl"):
    feed = tmp_path / name
    feed.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records))
    return feed


def _keys(lib: Library, text: str, mode: str = "keyword") -> list[str]:
    return [h.paper.key for h in lib.search(SearchQuery.build(text, mode=mode)).results]


QUERIES = ["reward", "jailbreak attacks", "奖励黑客", "越獄攻擊", "compute governance", "zzzz"]


def test_search_through_the_index_matches_fts5_and_follows_changes(tmp_path):
    feed = _feed(tmp_path, RECORDS)
    with closing(_library(tmp_path / "a", keyword_index="sqlite")) as fts:
        assert not fts.ingest([feed]).failed
        expected = {q: _keys(fts, q) for q in QUERIES}
        hybrid = {q: _keys(fts, q, "hybrid") for q in QUERIES}
    with closing(_library(tmp_path / "b", keyword_index="tantivy")) as lib:
        assert not lib.ingest([feed]).failed
        assert {q: _keys(lib, q) for q in QUERIES} == expected
        assert {q: _keys(lib, q, "hybrid") for q in QUERIES} == hybrid
        assert (lib.settings.index_dir / "keywords" / "kb_terms.json").is_file()
        lib.remove("en2")
        assert _keys(lib, "jailbreak") == []
        assert lib.store.read("SELECT COUNT(*) FROM keyword_log")[0][0] == 0  # applied: trimmed
        more = {"key": "en4", "title": "Jailbreak prompts revisited", "abstract": "Refusals."}
        assert not lib.ingest([_feed(tmp_path, [more], "more.jsonl")]).failed
        assert _keys(lib, "jailbreak") == ["en4"]


def test_auto_uses_the_index_from_the_threshold_only(tmp_path):
    feed = _feed(tmp_path, RECORDS)
    with closing(_library(tmp_path / "small", keyword_index="auto")) as lib:
        assert not lib.ingest([feed]).failed
        assert _keys(lib, "reward")[0] == "en1"
        assert not (lib.settings.index_dir / "keywords").exists()  # FTS5 only
    large = _library(tmp_path / "large", keyword_index="auto", keyword_index_min_chunks=5)
    with closing(large) as lib:
        assert not lib.ingest([feed]).failed
        assert _keys(lib, "reward")[0] == "en1"
        assert (lib.settings.index_dir / "keywords" / "kb_terms.json").is_file()


def test_a_second_process_catches_up_from_the_log(tmp_path):
    feed = _feed(tmp_path, RECORDS)
    with closing(_library(tmp_path, keyword_index="tantivy")) as server:
        assert not server.ingest([feed]).failed
        assert _keys(server, "jailbreak") == ["en2"]
        with closing(_library(tmp_path, keyword_index="tantivy")) as cli:  # a `kb ingest` beside it
            more = {"key": "en4", "title": "Jailbreak prompts revisited", "abstract": "x"}
            assert not cli.ingest([_feed(tmp_path, [more], "more.jsonl")]).failed
            cli.remove("en2")
        assert _keys(server, "jailbreak") == ["en4"]


def test_a_busy_index_falls_back_to_fts5(tmp_path):
    feed = _feed(tmp_path, RECORDS)
    with closing(_library(tmp_path, keyword_index="tantivy")) as lib:
        assert not lib.ingest([feed]).failed
        _keys(lib, "reward")  # built
        held = TermIndex.open(lib.settings.index_dir / "keywords")
        assert held is not None
        writer = held._index.writer(heap_size=20_000_000, num_threads=1)  # another process
        more = {"key": "en4", "title": "Jailbreak prompts revisited", "abstract": "x"}
        assert not lib.ingest([_feed(tmp_path, [more], "more.jsonl")]).failed
        assert sorted(_keys(lib, "jailbreak")) == ["en2", "en4"]  # FTS5 meanwhile
        writer.rollback()
        del writer
        assert sorted(_keys(lib, "jailbreak")) == ["en2", "en4"]


def test_a_read_only_replica_never_builds_and_still_finds(tmp_path):
    feed = _feed(tmp_path, RECORDS)
    with closing(_library(tmp_path, keyword_index="sqlite")) as lib:
        assert not lib.ingest([feed]).failed
    with closing(_library(tmp_path, keyword_index="tantivy", read_only=True)) as replica:
        assert _keys(replica, "reward")[0] == "en1"
        assert not (replica.settings.index_dir / "keywords").exists()


def test_keyword_index_setting_is_checked(monkeypatch):
    monkeypatch.setenv("KB_KEYWORD_INDEX", "lucene")
    with pytest.raises(ConfigError, match="KB_KEYWORD_INDEX must be auto, sqlite or tantivy"):
        Settings.from_env()
    monkeypatch.setenv("KB_KEYWORD_INDEX", "auto")
    monkeypatch.setenv("KB_KEYWORD_INDEX_MIN_CHUNKS", "-1")
    with pytest.raises(ConfigError, match="KB_KEYWORD_INDEX_MIN_CHUNKS must be 0 or more"):
        Settings.from_env()


def test_doctor_checks_the_keyword_index_and_repair_builds_it_again(tmp_path):
    feed = _feed(tmp_path, RECORDS)
    with closing(_library(tmp_path, keyword_index="tantivy")) as lib:
        assert not lib.ingest([feed]).failed
        _keys(lib, "reward")  # built
        assert lib.doctor().healthy
        folder = lib.settings.index_dir / "keywords"
        (folder / "kb_terms.json").write_text("{not json", encoding="utf-8")
        finding = next(f for f in lib.doctor().findings if f.check == "keyword index")
        assert finding.count == 1 and "cannot be read" in finding.detail
        report = lib.doctor(repair=True)
        assert next(f for f in report.findings if f.check == "keyword index").repaired
        assert lib.doctor().healthy and _keys(lib, "jailbreak") == ["en2"]
    with closing(_library(tmp_path, keyword_index="tantivy")) as lib:  # a new process
        assert _keys(lib, "jailbreak") == ["en2"]
        terms = TermIndex.open(lib.settings.index_dir / "keywords")
        assert terms is not None and terms.size == lib.store.keywords.count() == 5
