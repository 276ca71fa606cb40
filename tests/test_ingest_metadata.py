from __future__ import annotations

import pytest

from ingest import extract_metadata, read_pdf
from ingest.metadata import (
    find_arxiv_id,
    find_doi,
    is_sane_title,
    normalize_arxiv_id,
    split_authors,
    title_from_text,
)
from tests.conftest import PDFS, MakePdf

EN_PAGE_1 = [
    "arXiv:2307.15043v2 [cs.CL] 20 Dec 2023",
    "Universal and Transferable Adversarial Attacks on",
    "Aligned Language Models",
    "Andy Zou, Zifan Wang, J. Zico Kolter",
    "Abstract",
    "Because out-of-the-box large language models are capable of generating a",
    "great deal of objectionable content, recent work has focused on aligning them.",
    "DOI: 10.48550/arXiv.2307.15043.",
    "1 Introduction",
    "Large language models are trained on massive text corpora.",
]
ZH_PAGE_1 = [
    "大语言模型安全对齐研究综述",
    "张三 李四",
    "摘 要：大语言模型在带来便利的同时也带来了安全风险。本文综述对齐方法。",
    "关键词：大语言模型；安全；对齐",
    "doi:10.3778/j.issn.1002-8331.2305-0123。",
    "一、引言",
]


def test_english_pdf_metadata(make_pdf: MakePdf) -> None:
    path = make_pdf(
        "gcg.pdf",
        [EN_PAGE_1, ["2 Related work"]],
        title="Microsoft Word - gcg_final.docx",
        author="Andy Zou, Zifan Wang and J. Zico Kolter",
        date="D:20230727120000Z",
    )
    pdf = read_pdf(path)
    meta = extract_metadata(pdf.info, pdf.pages, "en")
    assert meta.title == "Universal and Transferable Adversarial Attacks on Aligned Language Models"
    assert meta.authors == ["Andy Zou", "Zifan Wang", "J. Zico Kolter"]
    assert meta.year == 2023
    assert meta.abstract == (
        "Because out-of-the-box large language models are capable of generating a great deal "
        "of objectionable content, recent work has focused on aligning them. "
        "DOI: 10.48550/arXiv.2307.15043."
    )
    assert meta.doi == "10.48550/arXiv.2307.15043"
    assert meta.arxiv_id == "2307.15043"
    assert (meta.lang, meta.n_pages, meta.url) == ("en", 2, None)


def test_chinese_pdf_metadata(make_pdf: MakePdf) -> None:
    path = make_pdf(
        "zh.pdf",
        [ZH_PAGE_1, ["第二页"]],
        title="大语言模型安全对齐研究综述",
        author="张三，李四、王五",
        date="D:20240301000000+08'00'",
    )
    pdf = read_pdf(path)
    meta = extract_metadata(pdf.info, pdf.pages, "zh")
    assert meta.title == "大语言模型安全对齐研究综述"
    assert meta.authors == ["张三", "李四", "王五"]
    assert meta.year == 2024
    assert meta.abstract == "大语言模型在带来便利的同时也带来了安全风险。本文综述对齐方法。"
    assert meta.doi == "10.3778/j.issn.1002-8331.2305-0123"
    assert meta.arxiv_id is None
    assert meta.lang == "zh"


def test_chinese_title_from_first_page_does_not_swallow_authors(make_pdf: MakePdf) -> None:
    path = make_pdf("zh.pdf", [ZH_PAGE_1], title="PowerPoint 演示文稿")
    pdf = read_pdf(path)
    meta = extract_metadata(pdf.info, pdf.pages, "zh")
    assert meta.title == "大语言模型安全对齐研究综述"
    assert meta.authors == []
    assert meta.year is None


def test_real_pdfs() -> None:
    pdf = read_pdf(PDFS / "en_garak_llm_vulnerability_scanner_paper.pdf")
    meta = extract_metadata(pdf.info, pdf.pages, "en")
    assert meta.title == "garak : A Framework for Security Probing Large Language Models"
    assert meta.year == 2024
    assert meta.abstract.startswith("As Large Language Models (LLMs) are deployed and integrated")
    assert meta.abstract.endswith("inform alignment and policy discussions for LLM deployment.")

    pdf = read_pdf(PDFS / "zh_caict_2022_data_security_risk_analysis.pdf")
    meta = extract_metadata(pdf.info, pdf.pages, "zh")
    # The info title is a file name ("...-220119.pdf"), so page 1 gives the title.
    assert meta.title == "数据安全风险分析及应对策略"
    assert meta.year == 2022


@pytest.mark.parametrize(
    ("title", "sane"),
    [
        ("Red Teaming Language Models", True),
        ("大模型安全", True),
        ("安全", False),
        ("Microsoft Word - paper.docx", False),
        ("untitled", False),
        ("Untitled document", False),
        ("main.tex", False),
        ("final version 3.pdf", False),
        ("RAG", False),
        ("Architecture Diagram_01", False),
        ("", False),
    ],
)
def test_is_sane_title(title: str, sane: bool) -> None:
    assert is_sane_title(title) is sane


def test_title_skips_stamps_numbers_and_urls() -> None:
    text = "1\nhttps://example.org/paper\narXiv:2401.00001v1 [cs.AI] 1 Jan 2024\nPreprint\n"
    text += "Jailbreaking Black Box Models\nin Twenty Queries\nPatrick Chao"
    assert title_from_text(text) == "Jailbreaking Black Box Models in Twenty Queries"
    assert title_from_text("12\n\nwww.x.org") == ""


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ("Alice Smith and Bob Jones; Carol Wu", ["Alice Smith", "Bob Jones", "Carol Wu"]),
        ("Smith, J. and Doe, K.", ["Smith, J.", "Doe, K."]),
        ("张三、李四，王五；赵六", ["张三", "李四", "王五", "赵六"]),
        ("Administrator", []),
        ("Workstream 2: Preparing Defenders", []),
        ("", []),
    ],
)
def test_split_authors(raw: str, names: list[str]) -> None:
    assert split_authors(raw) == names


@pytest.mark.parametrize(
    ("info", "page", "year"),
    [
        ({"creation_date": "D:20190102030405Z"}, "Published 2021", 2019),
        ({"creation_date": "D:19851231"}, "发布日期:2023 年 10 月 16 日", 2023),
        ({}, "arXiv:2012.07805 and 1850 and 2999", None),
        ({}, "Copyright © 2015 the authors", 2015),
    ],
)
def test_year(info: dict[str, str], page: str, year: int | None) -> None:
    assert extract_metadata(info, [page], "en").year == year


def test_abstract_on_the_heading_line_and_in_chinese() -> None:
    page = "Title Here\nAbstract—We study safety.\nIt matters.\nIndex Terms—safety"
    assert extract_metadata({}, [page], "en").abstract == "We study safety. It matters."
    page = "标题\n【摘要】模型安全\n很重要。\n1 引言\n正文"
    assert extract_metadata({}, [page], "zh").abstract == "模型安全很重要。"
    assert extract_metadata({}, ["No heading here.\nJust text."], "en").abstract == ""
    title_only = "Abstract Interpretation of Neural Networks\nAbstract\nWe verify."
    assert extract_metadata({}, [title_only], "en").abstract == "We verify."


def test_abstract_continues_on_page_two_and_is_capped() -> None:
    pages = ["Title Line Here\nABSTRACT\nFirst part.", "Second part.\nKEYWORDS: x"]
    assert extract_metadata({}, pages, "en").abstract == "First part. Second part."
    long = "Abstract\n" + "\n".join(["This sentence is about model safety."] * 200)
    abstract = extract_metadata({}, [long], "en").abstract
    assert 1000 < len(abstract) <= 2000
    assert abstract.endswith("safety.")


@pytest.mark.parametrize(
    ("text", "doi"),
    [
        ("see https://doi.org/10.1145/3576915.3623212).", "10.1145/3576915.3623212"),
        ("(doi:10.1016/S0140-6736(20)30183-5).", "10.1016/S0140-6736(20)30183-5"),
        ("DOI：10.1234/abc.5。本文", "10.1234/abc.5"),
        ("no identifier", None),
    ],
)
def test_find_doi(text: str, doi: str | None) -> None:
    assert find_doi(text) == doi


@pytest.mark.parametrize(
    ("text", "arxiv_id"),
    [
        ("arXiv:2306.05499v2 [cs.CR] 12 Jun 2023", "2306.05499"),
        ("ARXIV: 1706.03762", "1706.03762"),
        ("arXiv:hep-th/9901001v1", "hep-th/9901001"),
        ("https://arxiv.org/abs/2401.12345v3", "2401.12345"),
        ("version 2306.05499", None),
    ],
)
def test_find_arxiv_id(text: str, arxiv_id: str | None) -> None:
    assert find_arxiv_id(text) == arxiv_id


def test_normalize_arxiv_id() -> None:
    assert normalize_arxiv_id("arxiv:2306.05499v2") == "2306.05499"
    assert normalize_arxiv_id("hep-th/9901001") == "hep-th/9901001"
