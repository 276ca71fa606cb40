from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest import extract_metadata, pdf_fonts, read_pdf
from ingest.layout import TextLine, layout_params, page_lines
from ingest.metadata import (
    describe_pdf,
    find_arxiv_id,
    find_doi,
    is_person_name,
    is_sane_title,
    names_in_line,
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
        # A date printed on the page beats the creation date (a PDF rebuilt later) ...
        ({"creation_date": "D:20190102030405Z"}, "Published 2021", 2021),
        ({"creation_date": "D:20260305195216"}, "Framework\n27 October 2025", 2025),
        ({}, "Version: 1.0\nPublished: 10/7/24", 2024),
        ({}, "RAG\n11/25/2025, 11:32:32 AM", 2025),
        ({}, "Published: April 11, 2024", 2024),
        # ... but a bare year in the text (a citation, a copyright line) does not.
        ({"creation_date": "D:20190102"}, "as shown by (Smith, 2015)", 2019),
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


# ---------------------------------------------------------------- layout rules

Row = tuple[str, float]  # one line of text and its font size


def _sized_pdf(path: Path, pages: list[list[Row]], watermark: str = "", **info: str) -> Path:
    """A PDF whose lines have their own font sizes; non-ASCII lines use STSong-Light."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    if "STSong-Light" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    pdf = canvas.Canvas(str(path), invariant=1)
    pdf.setDateFormatter(lambda *_: "")
    if "title" in info:
        pdf.setTitle(info["title"])
    if "author" in info:
        pdf.setAuthor(info["author"])
    for rows in pages:
        y = 800.0
        for text, size in rows:
            y -= size * 1.4
            pdf.setFont("STSong-Light" if re.search(r"[^\x00-\x7f]", text) else "Helvetica", size)
            pdf.drawString(40, y, text)
        if watermark:
            pdf.saveState()
            pdf.setFont("Helvetica", 90)
            pdf.translate(150, 300)
            pdf.rotate(45)
            pdf.drawString(0, 0, watermark)
            pdf.restoreState()
        pdf.showPage()
    pdf.save()
    return path


EN_COVER: list[Row] = [
    ("Published as a conference paper at ICLR 2024", 8),
    ("Red Teaming Language Models", 17),
    ("with Language Models", 17),
    ("Ethan Perez1, Saffron Huang2 and Nat McAleese1*", 11),
    ("1DeepMind, 2University of Oxford, {perez, huang}@example.com", 9),
    ("Abstract", 11),
    ("Language models often harm users in ways that are hard to predict.", 10),
    ("We automatically find cases where a target model behaves badly.", 10),
    ("1 Introduction", 11),
]
ZH_COVER: list[Row] = [
    ("大语言模型安全对齐研究综述", 20),
    ("张三 1，李四 2，欧阳娜娜 1*", 12),
    ("1. 清华大学计算机系，北京 100084；2. 北京大学", 9),
    ("摘 要：大语言模型在带来便利的同时也带来了安全风险。本文综述对齐方法。", 10),
    ("关键词：大语言模型；安全；对齐", 10),
    ("一、引言", 12),
]


def _pdfminer_page_one(path: Path) -> list[TextLine]:
    """Page 1's lines from a pdfminer pass of its own: what read_pdf's shared pass must match."""
    from pdfminer.high_level import extract_pages

    return page_lines(next(iter(extract_pages(path, maxpages=1, laparams=layout_params()))), 1)


def test_page_one_lines_have_sizes_in_order_without_watermarks(tmp_path: Path) -> None:
    path = _sized_pdf(tmp_path / "en.pdf", [EN_COVER, [("Second page", 10)]], watermark="DRAFT")
    lines = read_pdf(path, layout=True).lines
    assert [line.text for line in lines] == [text for text, _ in EN_COVER]
    assert [line.size for line in lines] == [size for _, size in EN_COVER]
    assert all(line.page == 1 for line in lines)
    assert lines == sorted(lines, key=lambda line: line.top)


def test_read_pdf_lays_page_one_out_in_its_one_pdfminer_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pdfminer.high_level

    passes: list[object] = []
    real = pdfminer.high_level.extract_pages

    def counted(*args: object, **kwargs: object) -> object:
        passes.append(kwargs.get("page_numbers"))
        return real(*args, **kwargs)

    monkeypatch.setattr(pdfminer.high_level, "extract_pages", counted)
    path = _sized_pdf(tmp_path / "en.pdf", [EN_COVER, [("Second page", 10)]], watermark="DRAFT")
    pdf = read_pdf(path, layout=True)
    assert pdf.lines == _pdfminer_page_one(path)
    assert [line.text for line in pdf.lines] == [text for text, _ in EN_COVER]
    assert read_pdf(path).lines == []  # no layout asked, no pdfminer pass
    assert passes[0] == [0] and len(passes) == 2  # read_pdf's pass, then the reference pass

    # Pages that pypdf reads poorly (lost word spaces, as without ingest.pdf_fonts) and page
    # 1's lines share one pass.
    passes.clear()
    monkeypatch.setattr(pdf_fonts, "fix_space_width", lambda font: None)
    real_pdf = PDFS / "en_cosai_signing_ml_artifacts.pdf"
    pdf = read_pdf(real_pdf, layout=True)
    assert len(passes) == 1 and passes[0] == list(range(pdf.n_pages))
    assert {report.extractor for report in pdf.reports} == {"pdfminer"}
    assert pdf.lines and pdf.lines == _pdfminer_page_one(real_pdf)


def test_a_layout_pdfminer_fails_on_leaves_the_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pdfminer.high_level

    def broken(*args: object, **kwargs: object) -> object:
        raise RecursionError("deeply nested content")

    monkeypatch.setattr(pdfminer.high_level, "extract_pages", broken)
    path = _sized_pdf(tmp_path / "en.pdf", [EN_COVER])
    pdf = read_pdf(path, layout=True)
    assert pdf.lines == [] and pdf.pages[0].startswith(EN_COVER[0][0])


def test_layout_title_and_authors_over_a_file_name_title(tmp_path: Path) -> None:
    path = _sized_pdf(tmp_path / "en.pdf", [EN_COVER], title="Microsoft Word - rt_v3.docx")
    meta = describe_pdf(path)
    assert meta.title == "Red Teaming Language Models with Language Models"
    assert meta.authors == ["Ethan Perez", "Saffron Huang", "Nat McAleese"]
    assert meta.abstract.startswith("Language models often harm users")
    assert (meta.year, meta.lang, meta.n_pages) == (2024, "en", 1)


def test_chinese_title_and_chinese_authors_before_abstract(tmp_path: Path) -> None:
    path = _sized_pdf(tmp_path / "zh.pdf", [ZH_COVER], title="PowerPoint 演示文稿", author="LPF")
    meta = describe_pdf(path)
    assert meta.title == "大语言模型安全对齐研究综述"
    assert meta.authors == ["张三", "李四", "欧阳娜娜"]
    assert meta.abstract == "大语言模型在带来便利的同时也带来了安全风险。本文综述对齐方法。"
    assert meta.lang == "zh"


def _lines(rows: list[Row]) -> list[TextLine]:
    return [TextLine(text, size, 1, 50.0 + 20 * i) for i, (text, size) in enumerate(rows)]


def test_layout_title_merges_lines_and_skips_stamps_and_organisations() -> None:
    page = _lines(
        [
            ("DRAFT .01 For Feedback", 60),
            ("LLM and Gen AI Security", 36),
            ("Center of Excellence Guide", 36),
            ("数据安全风险分析及应对策略研究", 12),
            ("Federal Trade Commission", 24),
        ]
    )
    # The layout's title is set well above the rest: it beats a different info title.
    meta = extract_metadata({"title": "OWASP Top 10 COE Guide v1.0"}, [""], "en", lines=page)
    assert meta.title == "LLM and Gen AI Security Center of Excellence Guide"
    # An info title that adds a subtitle to the layout's is kept.
    cover = _lines([("Facing Facts", 85), ("Best Practices for Face Recognition", 23)])
    info = {"title": "Facing Facts: Best Practices for Face Recognition"}
    assert extract_metadata(info, [""], "en", lines=cover).title == info["title"]


def test_chinese_edition_year_joins_the_title() -> None:
    page = _lines([("可信隐私计算研究报告", 36), ("（2022 年）", 28), ("隐私计算联盟", 18)])
    meta = extract_metadata({"author": "富数科技"}, [""], "zh", lines=page)
    assert meta.title == "可信隐私计算研究报告（2022 年）"
    # The organisation on the cover is the author, not the company the info names.
    assert (meta.authors, meta.author_kind) == (["隐私计算联盟"], "organisation")


def test_running_head_title_does_not_beat_the_info_title() -> None:
    page = _lines([("Secure Agents Initiative", 13)] + [("Body text of the proposal.", 11)] * 5)
    next_page = "Secure Agents Initiative\nMore text."
    info = {"title": "A Proposal for Secure Agents"}
    meta = extract_metadata(info, ["", next_page], "en", lines=page)
    assert meta.title == "A Proposal for Secure Agents"
    assert extract_metadata({}, ["", next_page], "en", lines=page).title == page[0].text
    # A shared document's file name ("Approved: ...", "Copy of ...") is no title.
    info = {"title": "Approved: A Proposal for Secure Agents"}
    assert extract_metadata(info, ["", next_page], "en", lines=page).title == page[0].text


def test_short_title_confirmed_by_info_and_contents_page_has_none() -> None:
    page = _lines([("RAG", 16), ("11/25/2025, 11:32:32 AM", 12), ("Diagram 2", 10)])
    assert extract_metadata({"title": "RAG"}, [""], "en", lines=page).title == "RAG"
    assert extract_metadata({}, [""], "en", lines=page).title == ""
    toc = _lines([("Table of contents", 21), ("About the AI Exchange", 10), ("Threats", 10)])
    text = "Table of contents\nAbout the AI Exchange 4"
    assert extract_metadata({}, [text], "en", lines=toc).title == ""
    assert extract_metadata({}, [text], "en").title == ""


def test_labelled_chinese_authors_not_proofreaders() -> None:
    page = _lines(
        [
            ("大语言模型综述", 24),
            ("作者:赵鑫,周昆 *,李军毅 *,", 11),
            ("杨晨,文继荣", 11),
            ("中文校对:胡译文,邓欣", 11),
            ("摘要—自从 20 世纪 50 年代图灵测试被提出以来", 8),
        ]
    )
    page[2] = TextLine("杨晨,文继荣", 11, 1, page[1].top + 15)
    page[3] = TextLine("中文校对:胡译文,邓欣", 11, 1, page[2].top + 15)
    meta = extract_metadata({}, [""], "zh", lines=page)
    assert meta.authors == ["赵鑫", "周昆", "李军毅", "杨晨", "文继荣"]


@pytest.mark.parametrize(
    ("line", "names"),
    [
        ("Leon Derczynski", ["Leon Derczynski"]),
        ("lderczynski@nvidia.com1,2,3", []),
        ("1: NVIDIA Corporation; 2: ITU Copenhagen", []),
        ("David Girard, Sr. Director Global", ["David Girard"]),
        ("Ads Dawson (GangGreenTemperTatum) - https://genai.owasp.org/ - Nov 2025", ["Ads Dawson"]),
        ("Detection, Incident Response, Compliance, Governance", []),
        ("Workstream 2: Preparing Defenders for a Changing, Cybersecurity Landscape", []),
        ("Rob van der Veer and J. Zico Kolter", ["Rob van der Veer", "J. Zico Kolter"]),
        ("张三 李四 王五", ["张三", "李四", "王五"]),
        ("中国信息通信研究院云计算与大数据研究所", []),
    ],
)
def test_names_in_line(line: str, names: list[str]) -> None:
    assert names_in_line(line) == names


@pytest.mark.parametrize(
    ("name", "person"),
    [
        ("Nanna Inie", True),
        ("Smith, J.", True),
        ("Ron F. Del Rosa", True),
        ("欧阳娜娜", True),
        ("LPF", False),
        ("富数科技", False),
        ("Federal Trade Commission", False),
        ("AI Security", False),
        ("Center of Excellence", False),
    ],
)
def test_is_person_name(name: str, person: bool) -> None:
    assert is_person_name(name) is person


def test_translation_source_ids_are_not_the_documents() -> None:
    page = "大语言模型综述\n• 英文原文链接:https://arxiv.org/abs/2303.18223\n正文"
    assert extract_metadata({}, [page], "zh").arxiv_id is None
    # A body citation is the cited paper's id; the margin stamp is the document's own.
    page = "Title of the Paper\nSee arXiv:2303.18223 for details."
    assert extract_metadata({}, [page], "en").arxiv_id is None
    page += "\narXiv:2401.05566v3 [cs.CR] 17 Jan 2024"
    assert extract_metadata({}, [page], "en").arxiv_id == "2401.05566"


def test_mojibake_is_no_title() -> None:
    assert not is_sane_title("Ч໓෮Ⴕ໓ሳa RUC AI Box ෮Ⴕđԛρؿі Ч໓ቔᆀ")
    assert is_sane_title("Mixing English 和中文 titles with α")
