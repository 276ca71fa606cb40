"""The bilingual keyword analyzer, its FTS5 query builder, and the store's keyword index."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from index import keywords
from index.keywords import analyze, fts_document, fts_query
from kb.errors import InvalidInput, StoreError
from kb.store import MIGRATIONS, Store
from kb.types import ChunkDraft, PaperMeta, ParsedDocument

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------- analyzer


def test_english_words_are_stemmed_and_nothing_is_a_stop_word():
    assert analyze("evaluations") == analyze("evaluating") == analyze("Evaluation")
    assert analyze("The reward models") == ["the", "reward", "model"]


def test_chinese_is_segmented_in_search_mode():
    # search mode also emits the known words inside a longer one
    assert analyze("人工智能安全") == ["人工", "智能", "人工智能", "安全"]
    assert {"语言", "模型"} <= set(analyze("大语言模型"))


def test_traditional_chinese_is_folded_to_simplified():
    assert analyze("對齊評估") == analyze("对齐评估") == ["对齐", "评估"]
    assert analyze("強化學習") == analyze("强化学习")


def test_mixed_text_keeps_every_script_digits_and_order():
    assert analyze("GPT-4 在 RLHF 对齐中的 evaluations (2024)") == [
        "gpt", "4", "在", "rlhf", "对齐", "中", "的", "evalu", "2024",
    ]  # fmt: skip


def test_full_width_latin_is_normalised():
    assert analyze("ＧＰＴ－４ Ｅｖａｌｕａｔｉｏｎｓ") == analyze("GPT-4 evaluations")


def test_other_scripts_are_whole_lowercase_words():
    assert analyze("Модели こんにちは 인공지능 हिन्दी") == [
        "модели",
        "こんにちは",
        "인공지능",
        "हिन्दी",
    ]


def test_punctuation_and_symbols_give_no_tokens():
    assert analyze(" ,.;!?—…「」（）🙂 ") == []
    assert fts_query("?!... ()") is None
    assert fts_document("Reward hacking, 奖励模型!") == "reward hack 奖励 模型"


def test_fts_query_quotes_and_deduplicates():
    assert fts_query("Models model MODEL 模型") == '"model" OR "模型"'


def test_fts_query_escapes_quotes(monkeypatch):
    monkeypatch.setattr(keywords, "analyze", lambda text: ['a"b'])
    assert fts_query("anything") == '"a""b"'


HOSTILE = [
    '"',
    '"unbalanced',
    "'single'",
    "(alignment",
    "alignment)",
    "AND",
    "OR OR",
    "NOT alignment",
    "alignment AND OR NOT",
    "NEAR(alignment reward, 2)",
    "NEAR",
    "align*",
    "*",
    "tokens:alignment",
    "col:alignment",
    "^alignment",
    "-alignment",
    "alignment - reward",
    "+alignment",
    "{tokens}: x",
    "🙂🔥 alignment 🚀",
    "\u0301",
    "...",
    "\\",
    "对齐 AND (评估",
    "",
    "   ",
    "a" * 300,
    " ".join(["x"] * 500),
]


@pytest.mark.parametrize("query", HOSTILE)
def test_fts_query_never_breaks_fts5(query):
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE VIRTUAL TABLE t USING fts5(tokens, tokenize = 'unicode61 remove_diacritics 2')"
    )
    db.execute("INSERT INTO t (rowid, tokens) VALUES (1, ?)", (fts_document("Alignment 对齐"),))
    match = fts_query(query)
    if match is not None:
        found = [r[0] for r in db.execute("SELECT rowid FROM t WHERE t MATCH ?", (match,))]
        assert found == ([1] if {"align", "对齐"} & set(analyze(query)) else [])


def test_operators_typed_by_a_user_are_searched_as_words():
    assert fts_query('NOT "alignment" AND (对齐') == '"not" OR "align" OR "and" OR "对齐"'


def test_analyze_is_consistent_across_threads():
    text = "Evaluating reward models 評估獎勵模型 " * 20
    expected = analyze(text)
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(got == expected for got in pool.map(analyze, [text] * 32))


def test_first_use_is_silent_and_warning_free():
    # a fresh interpreter with warnings as errors: jieba neither warns nor logs to stderr
    code = "from index.keywords import analyze; assert analyze('大语言模型')"
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stderr == ""


# ---------------------------------------------------------------- storage


def _doc(key: str, texts: list[tuple[str, str]]) -> ParsedDocument:
    """A paper whose chunks are ``(lang, text)`` pairs."""
    chunks = [ChunkDraft(ord=i, text=text, lang=lang) for i, (lang, text) in enumerate(texts)]
    meta = PaperMeta(title=f"Paper {key}", lang=texts[0][0])
    return ParsedDocument(key=key, source=f"{key}.pdf", kind="pdf", content_hash=key * 2,
                          meta=meta, chunks=chunks)  # fmt: skip


def _add(store: Store, key: str, texts: list[tuple[str, str]]) -> list[int]:
    doc = _doc(key, texts)
    vecs = np.ones((len(texts), 4), np.float32)
    return store.papers.add(doc, vecs, [fts_document(t) for _, t in texts])[1]


def _search(store: Store, query: str, lang: str | None = None) -> list[int]:
    match = fts_query(query)
    assert match is not None
    return [cid for cid, _ in store.keywords.search(match, limit=10, chunk_ids_lang=lang)]


def _fts_ids(store: Store) -> set[int]:
    return {int(r[0]) for r in store.db.execute("SELECT rowid FROM chunk_fts")}


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "kb.sqlite3")
    yield s
    s.close()


def test_keyword_search_ranks_by_bm25(store):
    ids = _add(store, "a", [
        ("en", "Reward hacking: agents exploit a reward; reward models fail."),
        ("en", "A survey of reward design for agents."),
        ("en", "Sycophancy and reward: models flatter users."),
        ("en", "Interpretability of vision transformers."),
    ])  # fmt: skip
    hits = store.keywords.search(fts_query("reward") or "", limit=10)
    assert [cid for cid, _ in hits][0] == ids[0]  # the chunk saying it three times
    assert set(cid for cid, _ in hits) == set(ids[:3])
    scores = [score for _, score in hits]
    assert all(score > 0 for score in scores) and scores == sorted(scores, reverse=True)
    assert _search(store, "sycophancy rewards")[0] == ids[2]  # the rare term wins
    assert _search(store, "Rewarding") == [cid for cid, _ in hits]  # the stem matches
    assert _search(store, "absent") == []
    assert len(store.keywords.search(fts_query("reward") or "", limit=2)) == 2


def test_keyword_search_finds_chinese_and_traditional_queries(store):
    zh, en = _add(
        store, "a", [("zh", "我们评估大语言模型的对齐。"), ("en", "We evaluate alignment.")]
    )
    assert _search(store, "語言模型對齊") == [zh]
    assert _search(store, "evaluating") == [en]


def test_keyword_search_filters_by_language(store):
    zh, en = _add(store, "a", [("zh", "RLHF 对齐方法"), ("en", "RLHF alignment methods")])
    assert set(_search(store, "rlhf")) == {zh, en}
    assert _search(store, "rlhf", lang="zh") == [zh]
    assert _search(store, "rlhf", lang="en") == [en]
    assert _search(store, "rlhf", lang="fr") == []


def test_invalid_match_expression_is_invalid_input(store):
    with pytest.raises(InvalidInput, match="not valid FTS5 syntax"):
        store.keywords.search("alignment AND (", limit=5)


def test_replace_and_remove_leave_no_orphan_rows(store):
    old = _add(store, "a", [("en", "deceptive alignment"), ("en", "mesa optimizers")])
    keep = _add(store, "b", [("en", "deceptive agents")])
    new = _add(store, "a", [("en", "corrigibility")])
    assert _fts_ids(store) == set(keep + new) and not set(old) & _fts_ids(store)
    assert _search(store, "deceptive") == keep
    store.papers.remove(store.papers.by_key("a").id)
    assert _fts_ids(store) == set(keep)
    store.papers.remove(store.papers.by_key("b").id)
    assert _fts_ids(store) == set()


def test_a_chunk_deleted_by_any_statement_takes_its_keyword_row_and_is_logged(store):
    """The store deletes a chunk's keyword row with the chunk (a trigger, m014), so no path
    that deletes chunks can leave an orphan: a paper deleted by hand cascades to its chunks,
    their keyword rows and the log."""
    a = _add(store, "a", [("en", "deceptive alignment"), ("en", "mesa optimizers")])
    keep = _add(store, "b", [("en", "deceptive agents")])
    seq = store.keywords.log_seq()
    with store.transaction() as db:
        db.execute("DELETE FROM chunks WHERE id = ?", (a[0],))
    assert _fts_ids(store) == {a[1], *keep}
    with store.transaction() as db:
        db.execute("DELETE FROM papers WHERE key = 'a'")
    assert _fts_ids(store) == set(keep) and _search(store, "deceptive") == keep
    _, changed = store.keywords.changed_since(seq, 100) or (0, [])
    assert sorted(changed) == sorted(a)


def test_keyword_texts_must_match_the_chunks(store):
    doc = _doc("a", [("en", "one"), ("en", "two")])
    with pytest.raises(StoreError, match="2 chunks but 1 keyword texts"):
        store.papers.add(doc, np.ones((2, 4), np.float32), ["one"])
    assert store.papers.count() == 0 and _fts_ids(store) == set()


def _m001_store_with_chunks(path: Path, texts: list[str]) -> None:
    """A store as an older kb left it: schema version 1, chunks and no keyword index."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    MIGRATIONS[0](db)
    db.execute(
        "INSERT INTO papers (key, kind, source, content_hash, title, lang, added_at) "
        "VALUES ('old', 'pdf', 'old.pdf', 'h', 'Old paper', 'en', ?)",
        (datetime.now(UTC).isoformat(),),
    )
    db.executemany(
        "INSERT INTO chunks (paper_id, ord, text, lang) VALUES (1, ?, ?, 'en')", enumerate(texts)
    )
    db.execute("PRAGMA user_version = 1")
    db.execute("COMMIT")
    db.close()


def test_migration_marks_an_existing_store_for_backfill(tmp_path):
    path = tmp_path / "kb.sqlite3"
    _m001_store_with_chunks(path, ["reward hacking", "对齐评估", "scalable oversight"])
    store = Store(path)
    assert store.get_state("fts_pending") == "1"
    generation = store.generation()
    pending, after = [], 0
    while batch := store.keywords.missing_chunk_ids(2, after=after):  # the backfill loop
        assert store.keywords.set_texts([(cid, fts_document(text)) for cid, text in batch])
        pending += batch
        after = batch[-1][0]
    store.clear_state("fts_pending")
    assert [text for _, text in pending] == ["reward hacking", "对齐评估", "scalable oversight"]
    assert store.keywords.missing_chunk_ids(10) == [] and store.get_state("fts_pending") is None
    assert _search(store, "對齊") == [pending[1][0]]
    assert store.generation() == generation  # keyword writes leave the vector generation
    store.close()


def test_new_store_needs_no_backfill_and_stale_ids_are_skipped(store):
    assert store.get_state("fts_pending") is None
    (cid,) = _add(store, "a", [("en", "reward")])
    assert store.keywords.set_texts([(cid, "new"), (cid + 99, "gone")]) == 1
    assert _fts_ids(store) == {cid} and _search(store, "new") == [cid]
    _, (bare,) = store.papers.add(_doc("b", [("en", "no tokens")]), np.ones((1, 4), np.float32))
    assert store.keywords.missing_chunk_ids(10) == [(bare, "no tokens")]


def test_highlight_spans_mark_stems_and_chinese_words():
    from index.keywords import highlight_spans

    text = "Jailbreak attacks: the attacker jailbreaks models. 大模型越狱攻击很常见。"
    spans = highlight_spans(text, "jailbreaking attack 越狱攻击")
    marked = [text[a:b] for a, b in spans]
    assert marked == ["Jailbreak", "attacks", "attacker", "jailbreaks", "越狱攻击"]  # Snowball
    assert highlight_spans(text, "zzz") == [] and highlight_spans(text, "!!") == []
    trad = "大模型越獄攻擊"  # traditional text, simplified query terms
    assert [trad[a:b] for a, b in highlight_spans(trad, "越狱")] == ["越獄"]


def test_replacing_another_entry_drops_the_keyword_rows_of_the_same_key(store):
    """A re-ingest that replaces paper b with a document whose key paper a already has
    deletes a: its keyword rows go too, and are logged as changed."""
    a = _add(store, "a", [("en", "deceptive alignment")])
    _add(store, "b", [("en", "mesa optimizers")])
    b_id = store.papers.by_key("b").id
    doc = _doc("a", [("en", "corrigibility")])
    _, new = store.papers.add(
        doc, np.ones((1, 4), np.float32), [fts_document("corrigibility")], replace_id=b_id
    )
    assert _fts_ids(store) == set(new) and _search(store, "deceptive") == []
    last, changed = store.keywords.changed_since(0, 100) or (0, [])
    assert set(a) <= set(changed)
