"""Search modes, filters and related papers (fake embedder: the ranking logic)."""

from __future__ import annotations

import json

import pytest

from index.search import fuse_in_language, title_match
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


def test_fusion_only_reorders_query_language_slots():
    dense = [(1, [(3.0, 10)]), (2, [(2.9, 20)]), (3, [(2.0, 30)]), (4, [(1.0, 40)])]
    keyword = [(3, [(9.0, 30)])]
    langs = {1: "zh", 2: "en", 3: "en", 4: "zh"}
    fused = fuse_in_language(dense, keyword, langs, "en")
    assert [pid for pid, _ in fused] == [1, 3, 2, 4]  # zh papers keep ranks 1 and 4


def test_keyword_and_main_encoder_can_fill_query_language_slots():
    dense = [(1, [(3.0, 10)]), (2, [(2.9, 20)]), (3, [(2.0, 30)]), (4, [(1.0, 40)])]
    langs = {1: "zh", 2: "en", 3: "en", 4: "zh", 5: "en"}
    # paper 5: missed by the summed dense ranking, first for keywords and the main encoder
    keyword = [(5, [(9.0, 50)]), (3, [(4.0, 30)])]
    main = [(5, [(2.5, 50)]), (3, [(2.4, 30)]), (2, [(1.0, 20)])]
    fused = fuse_in_language(dense, keyword, langs, "en", main=main, scored={5: [(1.5, 50)]})
    assert [pid for pid, _ in fused] == [1, 3, 5, 4]  # zh keeps ranks 1 and 4; 2 lost its slot
    assert fused[2] == (5, [(1.5, 50)])  # shown with its dense score
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
    dense = [(1, [(5.0, 10)]), (2, [(4.9, 20)]), (3, [(4.0, 30)]), (4, [(3.0, 40)])]
    keyword = [(3, [(30.0, 30)]), (2, [(2.0, 20)])]
    langs = {1: "en", 2: "en", 3: "en", 4: "zh"}
    fused = fuse_in_language(dense, keyword, langs, "en", "zsum")
    assert [pid for pid, _ in fused] == [3, 2, 1, 4]
    assert fuse_in_language(dense, [], langs, "en", "zsum") == dense  # no keyword evidence


def test_fusion_setting(tmp_path):
    from kb.errors import ConfigError
    from kb.settings import Settings

    assert Settings.from_env({"KB_FUSION": "zsum"}).fusion == "zsum"
    with pytest.raises(ConfigError, match="KB_FUSION"):
        Settings.from_env({"KB_FUSION": "max"})


def test_score_statistics_follow_drift_not_every_change(library, tmp_path):
    """Stats are recomputed after 5 % growth or a new language, not after each new paper."""
    feed = tmp_path / "many.jsonl"
    rows = [{"key": f"en{i}", "title": f"Alignment study {i}", "abstract": "Reward models."}
            for i in range(40)]  # fmt: skip
    feed.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    library.ingest([feed])
    side = library.encoders()[0]
    first = side.stats()
    one = tmp_path / "one.jsonl"
    one.write_text(
        json.dumps(
            {
                "key": "en-new",
                "title": "Alignment study 41",
                "abstract": "Reward models are trained on human preferences.",
            }
        )
    )
    library.ingest([one])
    assert side.stats() is first  # 1 chunk in 41: within the drift
    zh = tmp_path / "zh.jsonl"
    zh.write_text(json.dumps({"key": "zh1", "title": "奖励黑客", "abstract": "奖励模型。"},
                             ensure_ascii=False))  # fmt: skip
    library.ingest([zh])
    again = side.stats()
    assert again is not first and again.counts.get("zh") == 1  # a new language
