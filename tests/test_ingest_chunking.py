from __future__ import annotations

import re
from itertools import pairwise

import pytest

from ingest import chunk_pages, chunk_text, estimate_tokens, read_pdf
from kb.types import ChunkDraft
from tests.conftest import AES_PDF, PDFS

HAN_SPACE_HAN = re.compile(r"[\u4e00-\u9fff] +[\u4e00-\u9fff]")
EN_SENTENCE = "Red teaming finds failures of large language models before attackers do. "
ZH_SENTENCE = "红队测试能在攻击者之前发现大语言模型的失败模式。"


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def assert_pages_exact(chunks: list[ChunkDraft], pages: dict[int, str]) -> None:
    """Every chunk occurs on its pages (ignoring whitespace): it starts on page_start and
    ends on page_end."""
    for chunk in chunks:
        assert chunk.page_start is not None and chunk.page_end is not None
        span = [squash(pages[n]) for n in range(chunk.page_start, chunk.page_end + 1)]
        joined, text = "".join(span), squash(chunk.text)
        first_end, last_start = len(span[0]), len(joined) - len(span[-1])
        starts = [m.start() for m in re.finditer(f"(?={re.escape(text)})", joined)]
        assert any(s < first_end and s + len(text) > last_start for s in starts), chunk


def shared_words(prev: str, nxt: str) -> str:
    """The longest start of ``nxt`` (in whole words) that ``prev`` ends with."""
    words = nxt.split(" ")
    for n in range(len(words), 0, -1):
        head = " ".join(words[:n])
        if prev.endswith(head):
            return head
    return ""


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("   \n", 0),
        ("a", 1),
        ("The quick brown fox", 5),  # 1 + 1.25 + 1.25 + 1
        ("Large language models are unsafe.", 8),
        ("大语言模型", 5),
        ("GPT-4 模型", 4),
        ("internationalization", 5),
    ],
)
def test_estimate_tokens(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


def test_chunks_respect_max_tokens_and_overlap() -> None:
    text = " ".join(f"Finding {i} shows that model {i} fails under attack {i}." for i in range(60))
    chunks = chunk_text(text, max_tokens=60, overlap=15)
    assert len(chunks) > 5
    assert all(estimate_tokens(c.text) <= 60 for c in chunks)
    assert [c.ord for c in chunks] == list(range(len(chunks)))
    for prev, nxt in pairwise(chunks):
        # The next chunk starts with about `overlap` tokens from the end of the previous one.
        assert 5 <= estimate_tokens(shared_words(prev.text, nxt.text)) <= 15
    assert all(c.page_start is None and c.page_end is None for c in chunks)
    assert {c.lang for c in chunks} == {"en"}


def test_without_overlap_chunks_partition_the_text() -> None:
    text = EN_SENTENCE * 10 + ZH_SENTENCE * 10
    chunks = chunk_text(text, max_tokens=40, overlap=0)
    assert squash("".join(c.text for c in chunks)) == squash(text)
    assert (chunks[0].lang, chunks[-1].lang) == ("en", "zh")


def test_overlap_prefers_whole_sentences() -> None:
    text = " ".join(f"Short {i}." for i in range(40))
    chunks = chunk_text(text, max_tokens=20, overlap=6)
    assert len(chunks) > 3
    for prev, nxt in pairwise(chunks):
        shared = shared_words(prev.text, nxt.text)
        assert shared.startswith("Short") and shared.endswith(".")


@pytest.mark.parametrize(
    "text",
    [
        "word " * 500,  # one sentence without punctuation
        "安全" * 500,  # Chinese without punctuation
        "x" * 3000,  # one giant "word"
        ("模型safety" * 100 + " ") * 5,
    ],
)
def test_overlong_sentences_are_split_hard(text: str) -> None:
    chunks = chunk_text(text, max_tokens=50, overlap=10)
    assert len(chunks) > 1
    assert all(estimate_tokens(c.text) <= 50 for c in chunks)
    assert squash(text).startswith(squash(chunks[0].text))
    assert squash(text).endswith(squash(chunks[-1].text))


def test_chinese_chunks_have_no_inserted_spaces() -> None:
    # Lines wrap mid-sentence, as in PDF text; joining them must not add spaces.
    lines = [ZH_SENTENCE[i : i + 9] for i in range(0, len(ZH_SENTENCE), 9)] * 20
    chunks = chunk_text("\n".join(lines), max_tokens=40, overlap=8)
    assert len(chunks) > 3
    for chunk in chunks:
        assert " " not in chunk.text
        assert chunk.lang == "zh"


def test_latin_lines_are_joined_with_spaces() -> None:
    chunks = chunk_text("large language\nmodels are\nunsafe", max_tokens=50, overlap=0)
    assert [c.text for c in chunks] == ["large language models are unsafe"]
    mixed = chunk_text("本文研究\nLLM 的安全\n问题。", max_tokens=50, overlap=0)
    assert [c.text for c in mixed] == ["本文研究 LLM 的安全问题。"]


def test_page_numbers_are_exact() -> None:
    pages = {
        1: f"Page one opens here. {EN_SENTENCE * 6}",
        2: "",
        3: f"Page three. {ZH_SENTENCE * 5}\n{EN_SENTENCE * 3}",
        4: "   ",
        5: "Last page, short.",
    }
    chunks = chunk_pages(pages, max_tokens=45, overlap=10)
    assert_pages_exact(chunks, pages)
    assert chunks[0].page_start == 1 and chunks[-1].page_end == 5
    assert any(c.page_start < c.page_end for c in chunks)
    assert not any(c.page_start in (2, 4) or c.page_end in (2, 4) for c in chunks)
    assert all(estimate_tokens(c.text) <= 45 for c in chunks)


def test_page_numbers_are_exact_on_real_pdfs() -> None:
    for path in (PDFS / "en_garak_llm_vulnerability_scanner_paper.pdf", AES_PDF):
        pdf = read_pdf(path)
        pages = dict(enumerate(pdf.pages, start=1))
        chunks = chunk_pages(pages, max_tokens=120, overlap=20)
        assert len(chunks) > 30
        assert_pages_exact(chunks, pages)
        assert all(estimate_tokens(c.text) <= 120 for c in chunks)
        assert any(c.page_start < c.page_end for c in chunks)
        if path == AES_PDF:
            assert not any(HAN_SPACE_HAN.search(c.text) for c in chunks)
            assert sum(c.lang == "zh" for c in chunks) > 0.9 * len(chunks)


def test_chunks_without_letters_are_dropped() -> None:
    assert chunk_text("。。。 --- ***\n\n...", max_tokens=10, overlap=0) == []
    assert chunk_pages({1: "•••", 2: "- - -"}, max_tokens=20, overlap=0) == []
    chunks = chunk_pages({1: "•••", 2: "2"}, max_tokens=20, overlap=0)
    assert chunks == [ChunkDraft(ord=0, text="••• 2", lang="und", page_start=1, page_end=2)]


def test_first_ord_continues_numbering() -> None:
    chunks = chunk_text(EN_SENTENCE * 5, max_tokens=20, overlap=0, first_ord=7)
    assert [c.ord for c in chunks] == list(range(7, 7 + len(chunks)))


@pytest.mark.parametrize(("max_tokens", "overlap"), [(0, 0), (10, 10), (10, -1)])
def test_bad_sizes_are_rejected(max_tokens: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        chunk_text("text", max_tokens=max_tokens, overlap=overlap)
