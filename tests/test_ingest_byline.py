"""Authors from title pages: people's names, organisations, and the layouts they sit in.

Title pages are built from TextLines (text, size, page, top, left edge) as pdfminer gives
them; each layout here is one that ../shared/data/pdfs-dev/NOTES.md describes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.byline import names_in_line
from ingest.layout import TextLine
from ingest.metadata import describe_pdf, extract_metadata
from ingest.names import clean_name, has_leading_mark, is_organisation, is_person_name

Cell = tuple[str, float]  # text and left edge


def _page(*rows: tuple[float, float, list[Cell] | str]) -> list[TextLine]:
    """Lines from (top, size, cells) rows; a row given as a string is one cell at x 50."""
    lines = []
    for top, size, cells in rows:
        for text, x0 in [(cells, 50.0)] if isinstance(cells, str) else cells:
            lines.append(TextLine(text, size, 1, top, x0, 842.0))
    return lines


@pytest.mark.parametrize(
    ("name", "person"),
    [
        ("Bo Li", True),  # two short words are a name too
        ("Rafael G.L. D’Oliveira", True),
        ("王骞", True),
        ("欧阳娜娜", True),
        ("北京", False),  # no surname: a place in an affiliation row
        ("综合论文训练", False),
        ("Google Research", False),
        ("Robust Intelligence", False),
        ("ASurveyofIntelligentMalwareDetectionon WindowsPlatform", False),
        ("Nov 2025", False),
        ("CNKI", False),
    ],
)
def test_is_person_name(name: str, person: bool) -> None:
    assert is_person_name(name) is person


@pytest.mark.parametrize(
    ("text", "organisation"),
    [
        ("World Economic Forum", True),
        ("Partnership on AI", True),
        ("HIGH-LEVEL EXPERT GROUP ON ARTIFICIAL INTELLIGENCE", True),
        ("Department for Science, Innovation and Technology", True),
        ("复旦大学", True),
        ("同盾科技人工智能研究院", True),
        ("Best Practices for Common Uses of Facial Recognition Technologies", False),
        ("Foundation models report (legality section)", False),
        ("Jessica Rusu", False),
        ("人工智能安全治理框架。", False),
    ],
)
def test_is_organisation(text: str, organisation: bool) -> None:
    assert is_organisation(text) is organisation


def test_clean_name_drops_marks_degrees_and_handles() -> None:
    assert clean_name("Fazl Barez◦△") == "Fazl Barez"
    assert clean_name("Seungju Han∗♡♠") == "Seungju Han"
    assert clean_name("沙泓州1),2),3)") == "沙泓州"
    assert clean_name("刘宝旭 1,2*") == "刘宝旭"
    assert clean_name("Scott A. Emett, PhD") == "Scott A. Emett"
    assert clean_name("Marc Eulerich, PhD, CIA") == "Marc Eulerich"
    assert clean_name("Ads Dawson (GangGreenTemperTatum)") == "Ads Dawson"
    assert clean_name("Nov 2025") == "Nov 2025"  # a year is no footnote mark
    assert has_leading_mark("1Australian National University")
    assert has_leading_mark("♡Allen Institute for AI")
    assert not has_leading_mark("Zou1")
    assert not has_leading_mark("2024 Report")


@pytest.mark.parametrize(
    ("line", "names"),
    [
        # names apart only by their superscript affiliation numbers
        (
            "Mantas Mazeika 1 Long Phan 2 Xuwang Yin 2 Andy Zou 3 2",
            ["Mantas Mazeika", "Long Phan", "Xuwang Yin", "Andy Zou"],
        ),
        # symbol affiliations and contribution marks
        (
            "Seungju Han∗♡♠ Kavel Rao∗♢ Allyson Ettinger†♡",
            ["Seungju Han", "Kavel Rao", "Allyson Ettinger"],
        ),
        ("♡Allen Institute for AI ♢University of Washington ♠Seoul National University", []),
        ("Anthropic, †Redwood Research, ‡Mila Quebec AI Institute, ◦University of Oxford", []),
        ("马钰锡 1, 张全新 1, 谭毓安 1, 沈蒙 2,3", ["马钰锡", "张全新", "谭毓安", "沈蒙"]),
        ("沙泓州1),2),3)   刘庆云1),3)   周舟1),3)", ["沙泓州", "刘庆云", "周舟"]),
        ("清华大学网络科学与网络空间研究院   北京   (100084)", []),
        ("Department of Theoretical Computer Science and Mathematical Logic", []),
        ("姓   名:陈羿华", ["陈羿华"]),
        ("指导教师:陈渝副教授", []),
        ("FROM:   Shalanda D. Young", ["Shalanda D. Young"]),
    ],
)
def test_names_in_line(line: str, names: list[str]) -> None:
    assert names_in_line(line) == names


def test_author_grid_with_affiliations_under_each_name() -> None:
    # Names in a 3 + 4 grid in 12 pt, each affiliation under its name in 10 pt; some
    # affiliations ("Robust Intelligence") read like names.
    page = _page(
        (100, 17, "Tree of Attacks: Jailbreaking Black-Box LLMs Automatically"),
        (150, 12, [("Anay Mehrotra", 150), ("Manolis Zampetakis", 250), ("Paul Kassianik", 370)]),
        (
            165,
            10,
            [("Yale University,", 160), ("Yale University", 270), ("Robust Intelligence", 370)],
        ),
        (178, 10, [("Robust Intelligence", 160)]),
        (210, 12, [("Blaine Nelson", 120), ("Hyrum Anderson", 210), ("Amin Karbasi", 410)]),
        (225, 10, [("Robust Intelligence", 120), ("Google Research", 410)]),
        (280, 10, "Abstract"),
        (300, 10, "While Large Language Models display versatile functionality, they fail."),
    )
    meta = extract_metadata({}, [""], "en", lines=page)
    assert meta.title == "Tree of Attacks: Jailbreaking Black-Box LLMs Automatically"
    assert meta.authors == [
        "Anay Mehrotra", "Manolis Zampetakis", "Paul Kassianik",
        "Blaine Nelson", "Hyrum Anderson", "Amin Karbasi",
    ]  # fmt: skip


def test_wrapped_byline_and_a_name_broken_over_two_lines() -> None:
    page = _page(
        (80, 17, "Model Cards for Model Reporting"),
        (110, 12, "Margaret Mitchell, Simone Wu, Lucy Vasserman, Ben"),
        (124, 12, "Hutchinson, Elena Spitzer, Timnit Gebru"),
        (138, 10, "{mmitchellai,simonewu}@google.com"),
        (170, 11, "ABSTRACT"),
    )
    authors = extract_metadata({}, [""], "en", lines=page).authors
    names = ["Margaret Mitchell", "Simone Wu", "Lucy Vasserman", "Ben Hutchinson"]
    assert authors == [*names, "Elena Spitzer", "Timnit Gebru"]


def test_chinese_article_names_split_by_their_gap_and_no_pinyin_byline() -> None:
    # "张 超" is printed with a gap wide enough for pdfminer to cut the row there; the
    # English block repeats the by-line in pinyin.
    page = _page(
        (40, 8, [("计算机研究与发展", 16), ("DOI:10.7544∕issn1000G1239.2021.20200964", 320)]),
        (
            54,
            8,
            [("Journal of Computer Research and Development", 13), ("58(5):977 994,2021", 398)],
        ),
        (65, 14.7, "Windows平台恶意软件智能检测综述"),
        (101, 13.1, [("汪嘉来1,2", 10), ("张", 62), ("超1,2", 83), ("戚旭衍3", 114)]),
        (121, 8.2, [("清华大学网络科学与网络空间研究院", 18), ("北京", 172), ("(100084)", 190)]),
        (212, 13.1, "A Survey of Intelligent Malware Detection on Windows Platform"),
        (252, 9.7, "Wang Jialai, Zhang Chao, and Qi Xuyan"),
        (337, 9.7, "Abstract In recent years, malware has brought many negative effects."),
    )
    meta = extract_metadata({"author": "作者", "title": "标题"}, [""], "zh", lines=page)
    assert meta.title == "Windows平台恶意软件智能检测综述"
    assert meta.authors == ["汪嘉来", "张超", "戚旭衍"]
    assert meta.title_en == "A Survey of Intelligent Malware Detection on Windows Platform"
    assert (meta.doi, meta.year) == ("10.7544/issn1000-1239.2021.20200964", 2021)


def test_thesis_cover_author_above_the_title() -> None:
    page = _page(
        (266, 17.2, "BACHELOR THESIS"),
        (348, 20.7, "Jakub Hejhal"),
        (410, 20.7, "Exploring the vulnerabilities of"),
        (430, 20.7, "commercial AI systems against"),
        (449, 20.7, "adversarial attacks"),
        (540, 12, "Department of Theoretical Computer Science and Mathematical Logic"),
        (622, 12, "Supervisor of the bachelor thesis: Mgr. Roman Neruda, CSc."),
        (747, 12, "Prague 2021"),
    )
    meta = extract_metadata({"author": "Jakub Hejhal"}, [""], "en", lines=page)
    assert (
        meta.title
        == "Exploring the vulnerabilities of commercial AI systems against adversarial attacks"
    )
    assert (meta.authors, meta.year) == (["Jakub Hejhal"], 2021)


def test_chinese_thesis_form_names_the_author_not_the_supervisor() -> None:
    page = _page(
        (222, 36, "综合论文训练"),
        (305, 26, "操作系统宏内核内存管理组件接口的"),
        (338, 26, "设计与实现"),
        (451, 16, [("系", 177), ("别:计算机科学与技术系", 225)]),
        (513, 16, [("姓", 177), ("名:陈羿华", 225)]),
        (544, 16, [("指导教师:陈渝副教授", 177)]),
        (677, 16, "二〇二五年六月"),
    )
    info = {"title": "操作系统宏内核内存管理组件接口的设计与实现"}
    meta = extract_metadata(info, [""], "zh", lines=page)
    assert meta.title == info["title"]  # printed large under the banner
    assert (meta.authors, meta.year) == (["陈羿华"], 2025)


def test_memorandum_subject_is_the_title_and_from_the_author() -> None:
    page = _page(
        (75, 11, "EXECUTIVE OFFICE OF THE PRESIDENT"),
        (146, 12, "March 28, 2024"),
        (194, 12, "MEMORANDUM FOR THE HEADS OF EXECUTIVE DEPARTMENTS AND AGENCIES"),
        (221, 12, [("FROM:", 72), ("Shalanda D. Young", 144)]),
        (248, 12, [("SUBJECT:", 72), ("Advancing Governance and Risk Management for", 144)]),
        (263, 12, [("Agency Use of Artificial Intelligence", 144)]),
        (
            303,
            12,
            "Artificial intelligence (AI) is one of the most powerful technologies of our time.",
        ),
    )
    meta = extract_metadata({}, [""], "en", lines=page)
    title = "Advancing Governance and Risk Management for Agency Use of Artificial Intelligence"
    assert (meta.title, meta.authors, meta.year) == (title, ["Shalanda D. Young"], 2024)


def test_a_printed_presenter_beats_the_info_author() -> None:
    page = _page(
        (115, 30, "FATE：工业级联邦学习开源生"),
        (147, 30, "态建设经验分享"),
        (217, 18, "范涛"),
        (244, 18, "微众银行联邦学习研发负责人"),
    )
    info = {"title": "PowerPoint Presentation", "author": "Mirije Shefiti"}
    meta = extract_metadata(info, [""], "zh", lines=page)
    assert (meta.title, meta.authors) == ("FATE：工业级联邦学习开源生态建设经验分享", ["范涛"])


def test_organisations_under_the_title() -> None:
    page = _page(
        (104, 9, [("复旦白泽智能", 52), ("JADE 3.0：大模型安全对齐", 242), ("2024 年 6 月", 489)]),
        (156, 22, "JADE 3.0：大模型安全对齐"),
        (202, 14, "复旦白泽智能（Whitzard-AI）"),
        (223, 10.5, "https://whitzard-ai.github.io/"),
        (244, 14, "系统软件与安全实验室"),
        (264, 10.5, "https://secsys.fudan.edu.cn/"),
        (285, 14, "复旦大学"),
        (
            352,
            10.5,
            "技术简介大语言模型作为一种工具，其是非好坏并非绝对，关键在于如何更好地利用它。",
        ),
        (561, 12, "1 引言"),
    )
    meta = extract_metadata({}, [""], "zh", lines=page)
    assert meta.author_kind == "organisation"
    assert meta.authors == ["复旦白泽智能（Whitzard-AI）", "系统软件与安全实验室", "复旦大学"]
    assert meta.year == 2024


def test_cover_organisation_above_the_title_takes_the_case_printed_inside() -> None:
    page = _page(
        (172, 18.8, "INDEPENDENT"),
        (203, 25.5, "HIGH-LEVEL EXPERT GROUP ON"),
        (242, 25.5, "ARTIFICIAL INTELLIGENCE"),
        (279, 14.3, "SET UP BY THE EUROPEAN COMMISSION"),
        (590, 29.3, "ETHICS GUIDELINES"),
        (633, 29.3, "FOR TRUSTWORTHY AI"),
    )
    page_2 = (
        "ETHICS GUIDELINES FOR TRUSTWORTHY AI\nHigh-Level Expert Group on Artificial Intelligence"
    )
    meta = extract_metadata({"author": "AEPD"}, ["", page_2], "en", lines=page)
    assert meta.authors == ["High-Level Expert Group on Artificial Intelligence"]
    assert meta.author_kind == "organisation"


@pytest.mark.parametrize(
    ("info", "pages", "authors"),
    [
        # a copyright line on page 2
        ({}, ["Responsible\nAI Principles", "© FS-ISAC 2024 | 2\nContents"], ["FS-ISAC"]),
        (
            {},
            ["Governance", "© 2024 World Economic Forum. All rights reserved."],
            ["World Economic Forum"],
        ),
        # a back cover's imprint, which also spells out the info's acronym
        (
            {"author": "FCA"},
            ["AI Update", "Contents", "Financial Conduct Authority\n12 Endeavour Square\nLondon"],
            ["Financial Conduct Authority"],
        ),
        # an organisation as the running foot of page 1, recased from page 2's text
        (
            {},
            ["Synthetic Media\nPARTNERSHIP ON AI", "The Partnership on AI’s (PAI) practices"],
            ["Partnership on AI"],
        ),
        # nothing that names the issuer: no author rather than a guess
        ({"author": "AEPD"}, ["Ethics Guidelines", "Text."], []),
    ],
)
def test_organisation_authors_from_the_text(
    info: dict[str, str], pages: list[str], authors: list[str]
) -> None:
    assert extract_metadata(info, pages, "en").authors == authors


def test_authors_heading_on_page_two() -> None:
    page_2 = (
        "Authors\nForeword\nWe are grateful to the over 1,000 reviewers.\n"
        "Scott A. Emett, PhD\nAssociate Professor, Arizona State\nUniversity\n"
        "Marc Eulerich, PhD, CIA\nDean and Professor, University of\nDuisburg-Essen\n"
        "Jason Pikoos\nManaging Partner, Connor Group"
    )
    meta = extract_metadata({}, ["Generative AI\nGovernance Framework", page_2], "en")
    assert meta.authors == ["Scott A. Emett", "Marc Eulerich", "Jason Pikoos"]


def test_organisation_from_xmp_creator_when_the_page_names_it(tmp_path: Path) -> None:
    # The info's Author is reportlab's "anonymous"; XMP dc:creator names the organisation,
    # and the cover prints its initials.
    from pypdf import PdfWriter
    from pypdf.generic import NameObject, StreamObject
    from reportlab.pdfgen import canvas

    plain = tmp_path / "plain.pdf"
    page = canvas.Canvas(str(plain))
    page.setFont("Helvetica", 24)
    page.drawString(50, 780, "Artificial Intelligence Risk Management Framework")
    page.setFont("Helvetica", 10)
    page.drawString(50, 740, "NIST AI 100-1")
    page.showPage()
    page.save()
    writer = PdfWriter(clone_from=plain)
    xmp = StreamObject()
    xmp.set_data(
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
        b'rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator><rdf:Seq>'
        b"<rdf:li>National Institute of Standards and Technology</rdf:li>"
        b"</rdf:Seq></dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    xmp[NameObject("/Type")] = NameObject("/Metadata")
    xmp[NameObject("/Subtype")] = NameObject("/XML")
    writer._root_object[NameObject("/Metadata")] = writer._add_object(xmp)
    path = tmp_path / "nist.pdf"
    writer.write(path)
    meta = describe_pdf(path)
    assert meta.authors == ["National Institute of Standards and Technology"]
    assert meta.author_kind == "organisation"


def test_an_info_organisation_the_text_never_names_is_no_author() -> None:
    # Word exports carry the software maker's name.
    info = {"author": "Microsoft Corporation"}
    assert extract_metadata(info, ["Quarterly Safety Report", "Text."], "en").authors == []


@pytest.mark.parametrize(
    ("rows", "title"),
    [
        # a national standard's cover: type banner and number above the title
        (
            [(60, 12, "ICS 35.040"), (120, 26, "中华人民共和国国家标准"),
             (160, 16, "GB/T 45654—2025"), (300, 22, "网络安全技术"),
             (330, 22, "生成式人工智能服务安全基本要求"),
             (700, 16, "全国网络安全标准化技术委员会")],
            "网络安全技术生成式人工智能服务安全基本要求",
        ),
        # a course report's cover: the course header is no title
        (
            [(100, 26, "《人工智能安全》大作业"), (200, 22, "大模型越狱攻击的复现与分析"),
             (300, 14, "姓名：张三")],
            "大模型越狱攻击的复现与分析",
        ),
        # a title printed in 《》
        ([(100, 24, "《人工智能安全治理框架》"), (200, 14, "2024年9月")], "人工智能安全治理框架"),
    ],
)  # fmt: skip
def test_chinese_cover_titles(rows: list[tuple[float, float, str]], title: str) -> None:
    page = _page(*rows)
    meta = extract_metadata({}, [""], "zh", lines=page)
    assert meta.title == title
