"""A paper's own DOI, arXiv id and year: read from its header, margin stamp, front matter and
footer, never from the works it cites; placeholder DOIs refused."""

from __future__ import annotations

import pytest

from ingest.frontmatter import find_doi, front_matter, is_valid_doi, own_arxiv_id, own_doi, own_year
from ingest.layout import TextLine, title_block
from ingest.metadata import extract_metadata


def _page(*rows: tuple[float, float, str]) -> list[TextLine]:
    return [TextLine(text, size, 1, top, 50.0, 800.0) for top, size, text in rows]


@pytest.mark.parametrize(
    ("doi", "valid"),
    [
        ("10.13328/j.cnki.jos.006204", True),
        ("10.1145/3287560.3287596", True),
        ("10.13328/j.cnki.jos.000000", False),  # a manuscript template's placeholder
        ("10.1234/xxxx.2024", False),
        ("10.0000/abc.1", False),  # no registrant is all zeros
        ("10.12/abc", False),  # a registrant code has 4-9 digits
        ("11.1234/abc", False),
    ],
)
def test_is_valid_doi(doi: str, valid: bool) -> None:
    assert is_valid_doi(doi) is valid


@pytest.mark.parametrize(
    ("text", "doi"),
    [
        ("see https://doi.org/10.1145/3576915.3623212).", "10.1145/3576915.3623212"),
        ("(doi:10.1016/S0140-6736(20)30183-5).", "10.1016/S0140-6736(20)30183-5"),
        ("DOI：10.1234/abc.5。本文", "10.1234/abc.5"),
        # broken fonts: "?" or "∕" for the slash, "G" for the ISSN's hyphen, U+2212, full width
        ("DOI:10.7544?issn1000-1239.2021.20200920", "10.7544/issn1000-1239.2021.20200920"),
        ("DOI:10.7544∕issn1000G1239.2021.20200964", "10.7544/issn1000-1239.2021.20200964"),
        ("DOI: 10.11959/j.issn.1000−436x.2021035", "10.11959/j.issn.1000-436x.2021035"),
        ("ＤＯＩ：１０．３７７８／ｊ．ｉｓｓｎ．１００２", "10.3778/j.issn.1002"),
        # a DOI URL broken at the end of a line
        ("https://doi.org/10.1145/3287560.\n3287596", "10.1145/3287560.3287596"),
        ("[doi: 10.13328/j.cnki.jos.000000]", None),
        ("no identifier", None),
    ],
)
def test_find_doi(text: str, doi: str | None) -> None:
    assert find_doi(text) == doi


JOURNAL_PAGE = _page(
    (29, 7.5, "软件学报 ISSN 1000-9825, CODEN RUXUEW"),
    (39, 7.5, "Journal of Software,2021,32(5):1526−1546 [doi: 10.13328/j.cnki.jos.006204]"),
    (93, 14, "面向智能攻击的行为预测研究"),
    (118, 12, "马钰锡 1, 张全新 1, 谭毓安 1, 沈蒙 2,3"),
    (219, 9, "摘要:自 2020 年 4 月以来,人工智能的迅速发展和广泛应用促进了数字技术的整体跃升."),
    (304, 9, "关键词:攻击预测;行为预测;智能攻击"),
    (500, 12, "1 引言"),
    (520, 9, "文献[3]见 doi:10.1145/3133956.3134015,发表于 2017 年 10 月."),
    (760, 7.5, "收稿时间: 2020-06-17; 修改时间: 2020-08-20"),
)


def test_journal_header_gives_the_doi_and_year_not_the_body_or_received_date() -> None:
    meta = extract_metadata({"creation_date": "D:20210510105236"}, [""], "zh", lines=JOURNAL_PAGE)
    assert meta.doi == "10.13328/j.cnki.jos.006204"
    assert meta.year == 2021
    assert meta.authors == ["马钰锡", "张全新", "谭毓安", "沈蒙"]


def test_dois_cited_in_the_body_are_not_the_papers() -> None:
    page = [line for line in JOURNAL_PAGE if "doi: 10.13328" not in line.text]
    meta = extract_metadata({}, [""], "zh", lines=page)
    assert meta.doi is None
    # Labelled in the front matter (a Chinese journal's keyword block), it is.
    page.insert(5, TextLine("中图法分类号 TP393 DOI号 10.11897/SP.J.1016.2016.00529", 9, 1, 320))
    assert extract_metadata({}, [""], "zh", lines=page).doi == "10.11897/SP.J.1016.2016.00529"


def test_arxiv_id_from_the_margin_stamp_not_from_citations() -> None:
    slides = "Prompt injection attacks\nGreshake et al., arXiv:2302.12173\nMaura Pintor"
    assert extract_metadata({}, [slides, "See arXiv:2307.15043 [cs.CL]"], "en").arxiv_id is None
    paper = "arXiv:2402.04249v2 [cs.LG] 27 Feb 2024\nHarmBench\nSee arXiv:2307.15043."
    meta = extract_metadata({"creation_date": "D:20250101"}, [paper], "en")
    assert (meta.arxiv_id, meta.year) == ("2402.04249", 2024)


def test_year_from_a_venue_footer_over_cited_years() -> None:
    page = _page(
        (99, 17.2, "Poison Frogs! Targeted Clean-Label Poisoning Attacks on Neural Networks"),
        (176, 10, "Ali Shafahi"),
        (339, 12, "Abstract"),
        (364, 10, "Data poisoning is an attack on machine learning models (Biggio et al., 2012)."),
        (573, 12, "1 Introduction"),
        (620, 10, "in deep neural networks has triggered debates [Szegedy et al., 2013]"),
        (
            732,
            9,
            "32nd Conference on Neural Information Processing Systems (NeurIPS 2018), Canada.",
        ),
    )
    block = title_block(page)
    zones = front_matter(page, block, [""], {})
    assert own_year(zones, "") == 2018
    assert own_doi(zones) is None and own_arxiv_id(zones) is None


@pytest.mark.parametrize(
    ("page", "year"),
    [
        ("操作系统宏内核内存管理组件接口的设计与实现\n二〇二五年六月", 2025),
        ("综合论文训练\n二〇一九年十二月", 2019),
    ],
)
def test_year_in_chinese_numerals(page: str, year: int) -> None:
    assert extract_metadata({"creation_date": "D:20300101"}, [page], "zh").year == year
