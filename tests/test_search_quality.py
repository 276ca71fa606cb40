"""Search quality on the sample library with the real model: small-library stability, the
relevance floor, scores down the list. The model is the product, so it is never faked here."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb.library.query import SearchQuery

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# Ten queries a reader of the sample papers would type, half of them across languages.
QUERIES = [
    "deceptive alignment",
    "reward hacking in coding agents",
    "jailbreak attacks",
    "shutdown avoidance",
    "compute thresholds for AI governance",
    "debate for scalable oversight",
    "欺骗性对齐",
    "奖励黑客",
    "越狱攻击与防御",
    "算力治理",
]
OFF_TOPIC = ["quantum chromodynamics lattice gauge", "红烧肉的家常做法", "sourdough bread recipe"]

# One unrelated paper, as long as the sample papers (two pages, five chunks).
_BREAD = [
    "The starter was fed twice a day with equal weights of flour and water at 24 degrees.",
    "Rye flour ferments faster than wheat flour because it carries more sugars and enzymes.",
    "A stiff levain at 60 percent hydration gave a milder sourness than a liquid one.",
    "Shaping tension mattered as much as fermentation time: slack loaves spread in the oven.",
    "Steam in the first 15 minutes of baking kept the crust soft so the loaf could rise.",
    "Crust colour darkened with longer retards because bacteria released more free sugars.",
    "Tasters preferred loaves retarded for 24 to 36 hours in a blind panel of 30 people.",
    "Loaves retarded for 72 hours tasted sharply sour and had a dense, gummy crumb.",
    "We repeated every bake three times on different days to average out the kitchen.",
    "Home bakers can follow the same schedule with a refrigerator and a covered pot.",
]
BREAD_PAGES = [
    ["Crumb structure of sourdough bread under long cold fermentation", "Hanna Keller",
     "Abstract", "We bake 120 loaves with rye and wheat starters and measure crumb porosity,",
     "oven spring and acidity after cold retarding for 12 to 72 hours.", *_BREAD],
    ["2 Method", "Each loaf used 1000 g flour, 750 g water, 200 g levain and 20 g salt.",
     "3 Results", "Volume peaked after 36 hours of cold retard and fell at 72 hours.",
     *_BREAD[::-1], *_BREAD],
]  # fmt: skip


@pytest.fixture(scope="module")
def sample(tmp_path_factory, e5_dir):
    """The sample library (examples/) with the real encoders."""
    from kb.library.facade import Library
    from kb.settings import Settings

    folder = tmp_path_factory.mktemp("sample")
    lib = Library(Settings(data_dir=folder / "kb-data", model_dir=e5_dir.parent))
    assert not lib.ingest([EXAMPLES]).failed
    yield lib, folder
    lib.close()


def _ranked(lib, query: str, k: int = 8) -> list[tuple[str, float, bool]]:
    hits = lib.search(SearchQuery.build(query, k=k)).results
    return [(Path(h.paper.source).name, h.score, h.weak) for h in hits]


def test_scores_go_down_and_off_topic_queries_stay_under_the_floor(sample):
    lib, _ = sample
    for query in QUERIES + OFF_TOPIC:
        scores = [score for _, score, _ in _ranked(lib, query)]
        assert scores == sorted(scores, reverse=True), query
    for query in OFF_TOPIC:
        assert all(weak for _, _, weak in _ranked(lib, query)), query
        strict = lib.search(SearchQuery.build(query, min_score=lib.settings.min_score))
        assert strict.results == [], query


@pytest.fixture
def with_bread(sample):
    """The sample library with one unrelated paper added (removed afterwards), and the
    rankings of the ten queries before it came."""
    from tests.conftest import _draw_pdf

    lib, folder = sample
    before = {q: _ranked(lib, q) for q in QUERIES}
    bread = _draw_pdf(folder / "en_sourdough.pdf", BREAD_PAGES, title="Sourdough crumb")
    assert not lib.ingest([bread]).failed
    yield lib, bread.name, before
    lib.remove(next(p.id for p in lib.all_papers() if p.source.endswith(bread.name)))


def test_one_unrelated_paper_does_not_reorder_the_library(with_bread):
    """Per-language statistics of a small library are shrunk toward the reference sample, so
    one more paper does not move the papers already there: for each of the ten queries the
    sample papers keep their order in the top 3."""
    lib, bread, before = with_bread
    for query in QUERIES:
        old = [name for name, _, _ in _ranked(lib, query, k=9) if name != bread]
        assert old[:3] == [name for name, _, _ in before[query][:3]], query


def test_an_unrelated_paper_stays_under_the_floor(with_bread):
    """It may still rank high in a nine-paper library (after centring, a paper far from every
    AI-safety topic is near many queries: 2.7 for "shutdown avoidance"), but never as a match."""
    lib, bread, _ = with_bread
    for query in QUERIES:
        assert all(weak for name, _, weak in _ranked(lib, query, k=9) if name == bread), query


def test_a_chinese_query_finds_the_english_paper_first(sample):
    """Only an English paper covers deceptive alignment: the Chinese query finds it first
    (it came 7th of 8 with the library's own statistics, 2nd while the standard-deviation
    floor also ordered the papers; now it only sets the score shown, which stays weak)."""
    lib, _ = sample
    assert _ranked(lib, "欺骗性对齐")[0][0].startswith("en_deceptive")
