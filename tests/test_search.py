"""Search modes, filters and related papers (fake embedder: the ranking logic)."""

from __future__ import annotations

import json

import pytest

from index.search import PaperHits, fuse_in_language, title_match
from kb.errors import InvalidInput
from kb.library.query import SearchQuery

RECORDS = [
    {"key": "en1", "title": "Reward hacking in reinforcement learning", "abstract":
     "Agents exploit misspecified rewards.", "authors": ["Ann Lee"], "year": 2021},
    {"key": "en2", "title": "Jailbreak attacks on chat models", "abstract":
     "Prompts that bypass refusals.", "authors": ["Bo Chen"], "year": 2023},
    {"key": "en3", "title": "Compute thresholds for AI governance", "abstract":
     "Regulating training compute.", "authors": ["Ann Lee", "Cy Dee"], "year": 2024},
    {"key": "zh1", "title": "强化学习中的奖励黑客", "abstract": "智能体利用错误设定的奖励。",
     "authors": ["张伟"], "year": 2022},
    {"key": "zh2", "title": "大模型越狱攻击", "abstract": "绕过拒绝的提示。",
     "authors": ["李娜", "张伟"], "year": 2024},
]  # fmt: skip


@pytest.fixture
def lib(library, tmp_path):
    feed = tmp_path / "feed.jsonl"
    feed.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in RECORDS))
    assert not library.ingest([feed]).failed
    return library


def keys(response):
    return [h.paper.key for h in response.results]


def test_keyword_mode_finds_exact_terms_in_both_scripts(lib):
    assert keys(lib.search(SearchQuery.build("jailbreak", mode="keyword")))[0] == "en2"
    assert keys(lib.search(SearchQuery.build("越獄攻擊", mode="keyword"))) == [
        "zh2"
    ]  # traditional folded
    hit = lib.search(SearchQuery.build("reward hacking", mode="keyword")).results[0]
    assert hit.paper.key == "en1" and hit.via == ["keyword"]
    assert lib.search(SearchQuery.build("zzzz qqqq", mode="keyword")).results == []


def test_hybrid_marks_both_sides(lib):
    hits = lib.search(SearchQuery.build("reward hacking", mode="hybrid", k=5)).results
    by_key = {h.paper.key: h.via for h in hits}
    assert by_key["en1"] == ["dense", "keyword"]
    assert "keyword" not in by_key.get("zh1", [])


def test_a_typed_title_goes_first_in_hybrid(lib):
    for key in ("zh1", "zh2", "en2"):
        title = lib.paper(key).title
        assert keys(lib.search(SearchQuery.build(title, mode="hybrid", k=3)))[0] == key
    assert title_match("强化学习中的奖励黑客", "强化学习中的奖励黑客") == 1.0
    assert title_match("reward hacking", "Reward hacking in reinforcement learning") < 0.8


def _papers(*items: tuple[int, float]) -> list[PaperHits]:
    """Ranked papers of one chunk each: (paper id, score); chunk id = 10 x paper id."""
    return [PaperHits(pid, score, [(score, pid * 10)]) for pid, score in items]


def test_fusion_only_reorders_query_language_slots():
    dense = _papers((1, 3.0), (2, 2.9), (3, 2.0), (4, 1.0))
    keyword = _papers((3, 9.0))
    langs = {1: "zh", 2: "en", 3: "en", 4: "zh"}
    fused = fuse_in_language(dense, keyword, langs, "en")
    assert [p.pid for p in fused] == [1, 3, 2, 4]  # zh papers keep ranks 1 and 4


def test_keyword_and_main_encoder_can_fill_query_language_slots():
    dense = _papers((1, 3.0), (2, 2.9), (3, 2.0), (4, 1.0))
    langs = {1: "zh", 2: "en", 3: "en", 4: "zh", 5: "en"}
    # paper 5: missed by the summed dense ranking, first for keywords and the main encoder
    keyword = _papers((5, 9.0), (3, 4.0))
    main = _papers((5, 2.5), (3, 2.4), (2, 1.0))
    scored = {5: PaperHits(5, 1.5, [(1.5, 50)])}
    fused = fuse_in_language(dense, keyword, langs, "en", main=main, scored=scored)
    assert [p.pid for p in fused] == [1, 3, 5, 4]  # zh keeps ranks 1 and 4; 2 lost its slot
    assert fused[2] == scored[5]  # with its dense score
    assert fuse_in_language(dense, keyword, langs, "en", main=main) == fuse_in_language(
        dense, keyword, langs, "en", main=main, scored={}
    )  # without a dense score, a paper cannot take a slot


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_filters_apply_inside_the_search(lib, mode):
    got = keys(lib.search(SearchQuery.build("reward hacking", mode=mode, year_from=2022, k=10)))
    assert "en1" not in got
    assert set(
        keys(lib.search(SearchQuery.build("anything", year_from=2024, year_to=2024, k=10)))
    ) == {"en3", "zh2"}
    assert set(keys(lib.search(SearchQuery.build("jailbreak", author="张伟", k=10)))) == {
        "zh1",
        "zh2",
    }
    assert set(keys(lib.search(SearchQuery.build("reward", author="ann lee", k=10)))) == {
        "en1",
        "en3",
    }
    assert keys(lib.search(SearchQuery.build("reward", year_from=1990, year_to=1991, k=10))) == []


def test_tag_filter_and_tags_survive_reingest(lib, tmp_path):
    lib.tag("zh1", ["reading-group", "rl"])
    lib.tag("en3", ["reading-group"])
    assert set(keys(lib.search(SearchQuery.build("reward", tag="reading-group", k=10)))) == {
        "zh1",
        "en3",
    }
    assert keys(lib.search(SearchQuery.build("reward", tag="nope", k=10))) == []
    lib.tag("zh1", ["rl"], remove=True)
    changed = dict(RECORDS[3], abstract="新的摘要。")
    feed = tmp_path / "again.jsonl"
    feed.write_text(json.dumps(changed, ensure_ascii=False))
    assert lib.ingest([feed]).ingested  # replaced by key
    assert lib.paper("zh1").tags == ["reading-group"]
    with pytest.raises(InvalidInput):
        lib.tag("zh1", ["  "])


def test_filtered_query_still_returns_k(lib):
    assert len(lib.search(SearchQuery.build("x y z", year_from=2021, k=4)).results) == 4


def test_bad_filters(lib):
    with pytest.raises(InvalidInput, match="year_from"):
        lib.search(SearchQuery.build("x", year_from=2025, year_to=2020))
    with pytest.raises(InvalidInput, match="mode"):
        lib.search(SearchQuery.build("x", mode="fuzzy"))


def test_related_excludes_the_paper_and_alternates_languages(lib):
    paper = lib.paper("en1")
    related = lib.related(paper.id, k=4)
    got = keys(related)
    assert "en1" not in got and len(got) == 4
    langs = [h.paper.lang for h in related.results]
    assert all(a != b for a, b in zip(langs, langs[1:], strict=False)), langs


def test_zsum_fusion_lets_a_strong_keyword_match_win_within_its_language():
    dense = _papers((1, 5.0), (2, 4.9), (3, 4.0), (4, 3.0))
    keyword = _papers((3, 30.0), (2, 2.0))
    langs = {1: "en", 2: "en", 3: "en", 4: "zh"}
    fused = fuse_in_language(dense, keyword, langs, "en", "zsum")
    assert [p.pid for p in fused] == [3, 2, 1, 4]
    assert fuse_in_language(dense, [], langs, "en", "zsum") == dense  # no keyword evidence


def test_fusion_setting(tmp_path):
    from kb.errors import ConfigError
    from kb.settings import Settings

    assert Settings.from_env({"KB_FUSION": "zsum"}).fusion == "zsum"
    with pytest.raises(ConfigError, match="KB_FUSION"):
        Settings.from_env({"KB_FUSION": "max"})


def test_score_statistics_are_computed_again_after_many_removals(library, tmp_path):
    """Removed chunks are not counted out of the running sums one by one: once removals
    pass 5 % of the index, the sums are computed again from the store."""
    feed = tmp_path / "many.jsonl"
    rows = [{"key": f"en{i}", "title": f"Alignment study {i}", "abstract": "Reward models."}
            for i in range(40)]  # fmt: skip
    feed.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    library.ingest([feed])
    side = library.encoders()[0]
    first = side.stats()
    library.remove("en0")  # 1 chunk in 40: within the drift
    assert side.stats() is first
    for i in range(1, 4):
        library.remove(f"en{i}")  # 4 in 40 now
    again = side.stats()
    assert again is not first and again.counts["en"] == 36


# -- filters keep their promise: k papers when k exist, in every mode


def _long_records() -> list[dict]:
    """Six Chinese and six English papers of many chunks, every one about data security."""
    topics_zh = ["数据安全风险", "数据安全治理", "数据安全评估", "数据安全合规", "数据安全技术",
                 "数据安全标准"]  # fmt: skip
    out = []
    for i, topic in enumerate(topics_zh):
        body = "。".join(f"{topic}第{j}节：数据安全与隐私保护的要求和实践" for j in range(30))
        out.append({"key": f"zh{i}", "title": f"{topic}研究报告", "abstract": f"{topic}。",
                    "text": body, "lang": "zh", "year": 2020 + i % 3,
                    "authors": ["王芳" if i % 2 else "李雷"]})  # fmt: skip
        text = " ".join(f"Section {j}: data security controls and audits." for j in range(40))
        out.append({"key": f"en{i}", "title": f"Data security report {i}", "abstract":
                    "Data security.", "text": text, "lang": "en", "year": 2020 + i % 3,
                    "authors": ["Ann Lee" if i % 2 else "Bo Chen"]})  # fmt: skip
    return out


@pytest.fixture
def long_lib(settings, tmp_path):
    from kb.library.facade import Library
    from tests.fakes import HashEmbedder
    from tests.samples import write_feed

    # two candidate chunks: the longest papers fill them, so the search must look deeper
    lib = Library(
        settings.replace(candidates=2, chunk_tokens=24, chunk_overlap=4), embedder=HashEmbedder()
    )
    assert not lib.ingest([write_feed(tmp_path / "long.jsonl", _long_records())]).failed
    assert lib.count() == 12 and min(p.n_chunks for p in lib.all_papers()) >= 5
    lib.tag("zh1", ["watch"])
    lib.tag("en4", ["watch"])
    yield lib
    lib.close()


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_filters_return_k_papers_when_k_exist(long_lib, mode):
    def found(query: str, **filters) -> list[str]:
        return keys(long_lib.search(SearchQuery.build(query, mode=mode, k=20, **filters)))

    assert sorted(found("数据安全", lang="zh")) == [f"zh{i}" for i in range(6)]
    assert sorted(found("data security", lang="en")) == [f"en{i}" for i in range(6)]
    # keyword search matches terms, so an English query finds only the English papers
    both = mode != "keyword"
    assert len(found("数据安全")) == (12 if both else 6)
    year_2022 = ["en2", "en5", "zh2", "zh5"] if both else ["en2", "en5"]
    assert sorted(found("data security", year_from=2022)) == year_2022
    assert sorted(found("数据安全", author="王芳")) == ["zh1", "zh3", "zh5"]
    assert sorted(found("data security", author="ann lee")) == ["en1", "en3", "en5"]
    assert sorted(found("data security", tag="watch")) == (["en4", "zh1"] if both else ["en4"])
    k3 = long_lib.search(SearchQuery.build("数据安全", mode=mode, k=3, lang="zh"))
    assert len(k3.results) == 3


def test_a_query_as_api_parameters():
    """What `kb search` sends a running server: the same search, unset fields left out."""
    query = SearchQuery.build("越狱攻击", k=3, lang="zh", year_from=2020, tag="watch")
    assert query.params() == {"q": "越狱攻击", "k": 3, "lang": "zh", "year_from": 2020,
                              "tag": "watch"}  # fmt: skip
    assert SearchQuery.build(" x ", lang="any").params() == {"q": "x"}


def test_a_latin_query_takes_the_librarys_main_latin_language(monkeypatch):
    from kb.library.search import query_lang

    mixed = {"en": 980, "zh": 900, "es": 2, "und": 40}
    assert query_lang("越狱攻击的评估", mixed) == "zh"
    assert query_lang("Wie bewerten wir Täuschung?", {"en": 50, "de": 50}) == "de"
    assert query_lang("Wie bewerten wir Täuschung?", {}) == "de"  # empty library: detected

    def no_langdetect():
        raise AssertionError("langdetect was asked")

    monkeypatch.setattr("ingest.lang._detector", no_langdetect)
    assert query_lang("reward hacking", mixed) == "en"
    assert query_lang("Wie bewerten wir Täuschung?", mixed) == "en"  # a 98 % English library
