"""A paper's own identifiers and year, read only where a paper prints its own.

A first page names many identifiers and years: its own DOI in the journal header, its arXiv
id in the margin stamp, and in its body the DOIs, arXiv ids and years of the works it cites.
Slides cite papers on every page. So each value is taken from the *zones* that carry the
document's own, in this order:

- the **header** (page-1 lines above the title: a journal's citation line "Journal of
  Software,2021,32(5):1526−1546 [doi: ...]", "58(5):909 926,2021");
- the **arXiv margin stamp** ("arXiv:2402.04249v2 [cs.LG] 27 Feb 2024");
- the **front matter** (from the title to the first section heading: by-line, abstract,
  keywords, "DOI号 10.11897/...", an ACM reference block);
- the **footer** (page 1's bottom band: "32nd Conference on ... (NeurIPS 2018)");
- the **running lines** (first and last lines of pages 1-2), and the PDF's info.

A DOI must also be well formed (``is_valid_doi``): "10." and a registrant code, a suffix, and
no placeholder ("10.13328/j.cnki.jos.000000" is a manuscript's template, not a DOI). An
arXiv id outside the stamp counts only when labelled as the document's ("arXiv:ID" opening a
header, footer or front-matter line). Lines that link the original of a translation
("英文原文链接: ...") name the original's identifiers, not this document's.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

from ingest.lang import CJK_PUNCT, UNSPACED_CHARS
from ingest.layout import ABSTRACT_RE, TextLine, TitleBlock, is_heading
from ingest.normalize import matching_form

__all__ = [
    "FrontMatter",
    "find_arxiv_id",
    "find_doi",
    "front_matter",
    "is_valid_doi",
    "normalize_arxiv_id",
    "own_arxiv_id",
    "own_doi",
    "own_year",
]

_FOOTER_BAND = 0.88  # lines below this share of the page's height are its footer
_EDGE_LINES = 3
# The separator after a DOI's prefix: "/", or what broken fonts give for it ("∕", "?").
_DOI_RE = re.compile(
    rf"10\.\d{{4,9}}(?:\.\d+)*[/∕⁄?](?=[\w(])[^\s\"<>{UNSPACED_CHARS}{CJK_PUNCT}]+"
)
_DOI_TRAILING = ".,;:'\"!?"
_DOI_LABEL_RE = re.compile(r"\bdoi\b|doi\s*号|https?://(?:dx\.)?doi\.org/", re.IGNORECASE)
# A DOI URL broken at the end of a line ("https://doi.org/10.1145/3287560." / "3287596").
_DOI_BREAK_RE = re.compile(r"(10\.\d{4,9}/\S*[.\-/])\n(?=\w+\s*$)", re.MULTILINE)
# "issn1000G1239": the ISSN inside a DOI, its hyphen lost to a broken font.
_ISSN_IN_DOI_RE = re.compile(r"(issn)(\d{4})[^\d\s\-](\d{3}[\dXx])", re.IGNORECASE)
_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2212\ufe63\uff0d"), "-")
_ARXIV_RE = re.compile(
    r"(?:arxiv:\s*|arxiv\.org/(?:abs|pdf)/)"
    r"(\d{4}\.\d{4,5}|[a-z][a-z\-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?",
    re.IGNORECASE,
)
# The stamp arXiv prints in the left margin of every paper it serves.
_ARXIV_STAMP_RE = re.compile(
    r"arXiv:\s*(\d{4}\.\d{4,5}|[a-z][a-z\-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?\s*"
    r"\[[\w.\-]+\]\s*(\d{1,2})\s*([A-Z][a-z]{2})\s*((?:19|20)\d\d)"
)
_OWN_ARXIV_LINE_RE = re.compile(r"^\s*(?:preprint[.,:]?\s*)?(?:arxiv preprint\s+)?arxiv:", re.I)
_SOURCE_LINE_RE = re.compile(
    r"原文|英文版|译自|翻译|translat|original (?:paper|version|article)", re.IGNORECASE
)
_NOT_PUBLICATION_RE = re.compile(
    r"收稿|修回|录用|接受日期|网络出版|基金|received|revised|accepted|submitted|funded|grant"
    r"|©|\(c\)|copyright",
    re.IGNORECASE,
)
_YEAR_RE = re.compile(r"(?<![\d.])((?:19|20)\d\d)(?![\d]|\.\d)")
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_Y = r"(?<!\d)((?:19|20)\d\d)(?!\d)"
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
# A date printed on the page: "27 October 2025", "April 11, 2024", "Nov 2025", "2022 年 1 月",
# "2023-11-01", "11/25/2025", "Published 2021", "Published: 10/7/24".
_DATE_RE = re.compile(
    rf"\b{_MONTH}\s+(?:{_DAY},?\s+)?{_Y}|\b{_DAY}\s+{_MONTH},?\s+{_Y}|{_Y}\s*年\s*\d{{1,2}}\s*月"
    rf"|{_Y}-\d\d?-\d\d?\b|\b\d\d?[/.]\d\d?[/.]{_Y}|\bpublished\b\D{{0,20}}?{_Y}"
    r"|\b(?:published|date|released)\s*:?\s*\d\d?/\d\d?/(\d\d)\b",
    re.IGNORECASE,
)
_NOT_A_YEAR_RE = re.compile(r"10\.\d{4,9}/\S+|https?://\S+|www\.\S+|issn\s*[\d\-]+", re.I)
_HAN_DIGITS = dict(zip("〇零一二三四五六七八九", "00123456789", strict=True))
_HAN_YEAR_RE = re.compile(
    r"([〇零一二三四五六七八九]{4})\s*年\s*(十[一二]?|[一二三四五六七八九])?\s*月?"
)


@dataclass(frozen=True)
class FrontMatter:
    """The zones of a document's first pages where it prints its own identifiers and date."""

    header: list[str]  # page-1 lines above the title
    front: list[str]  # page-1 lines from the title to the first section heading
    footer: list[str]  # page-1 lines in the page's bottom band
    edges: list[str]  # the first and last lines of the text of pages 1-2
    page1: str  # page 1's text (its margin stamp)
    info: str  # the PDF's info fields


def front_matter(
    lines: list[TextLine], block: TitleBlock | None, pages: list[str], info: dict[str, str]
) -> FrontMatter:
    """The zones of the first page (from its layout ``lines`` when read, else its text)."""
    first = pages[0] if pages else ""
    page = [line for line in lines if line.page == 1]
    edges: list[str] = []
    # Page 1's own edges are its header and footer when its layout is known.
    for text in pages[1:2] if page else pages[:2]:
        kept = [line for line in text.splitlines() if line.strip()]
        edges += kept[:_EDGE_LINES] + kept[-_EDGE_LINES:]
    if page:
        top = block.top if block else page[0].top
        height = page[0].height or max(line.top for line in page) + 1
        header = [line.text for line in page if line.top < top - 1]
        footer = [line.text for line in page if line.top >= _FOOTER_BAND * height]
        front = _until_body([line.text for line in page if line.top >= top - 1])
        front = [text for text in front if text not in footer]
    else:
        kept = [line for line in first.splitlines() if line.strip()]
        # Without the layout, no line is known to sit in the footer band.
        header, footer, front = [], [], _until_body(kept)
    values = "\n".join(v for k, v in info.items() if k != "creation_date")
    # Zones are only matched, never stored: in their NFKC form ("２０２１，５７（１０）").
    header, front, footer, edges = (
        [matching_form(text) for text in zone] for zone in (header, front, footer, edges)
    )
    return FrontMatter(header, front, footer, edges, matching_form(first), matching_form(values))


def _until_body(texts: list[str]) -> list[str]:
    """Lines up to the body: the first section heading after the abstract ("1 Introduction",
    "1 引言"; numbered affiliation lines before the abstract are no headings), or without an
    abstract the introduction's or the contents' heading."""
    start = next((i for i, text in enumerate(texts) if ABSTRACT_RE.match(text)), None)
    for i, text in enumerate(texts):
        if start is not None and i > start and is_heading(text) and not _is_keywords(text):
            return texts[:i]
        if start is None and _BODY_RE.match(text):
            return texts[:i]
    return texts


_BODY_RE = re.compile(
    r"^\s*(?:(?:\d{1,2}|[IVX]+)\.?\s*|[一二三四五六七八九十]+\s*[、.．]\s*|第\s*[一1]\s*[章节]\s*)?"
    r"(?:introduction|引\s*言|前\s*言|绪\s*论|contents|table of contents|目\s*录)\s*$",
    re.IGNORECASE,
)


def _is_keywords(text: str) -> bool:
    return bool(re.match(r"\s*(?:key\s*words?|index terms|关键[词字]|中图)", text, re.I))


def _own(lines: list[str]) -> str:
    """The lines as one text, without those that link a translation's original."""
    return "\n".join(line for line in lines if not _SOURCE_LINE_RE.search(line))


# ---------------------------------------------------------------- DOI


def own_doi(fm: FrontMatter) -> str | None:
    """The document's own DOI: labelled in a zone, then any DOI in the header, footer or
    running lines, then in the front matter, then in the info."""
    zones = [fm.header, fm.footer, fm.edges, fm.front]
    labelled = [line for zone in zones for line in zone if _DOI_LABEL_RE.search(line)]
    for text in (labelled, fm.header + fm.footer + fm.edges, fm.front, [fm.info]):
        doi = find_doi(_own(text))
        if doi:
            return doi
    return None


def find_doi(text: str) -> str | None:
    """The first well-formed DOI in ``text`` (NFKC, dashes and slashes repaired), or None.

    Trailing punctuation and an unmatched ")" are dropped; a DOI broken at a line end
    ("10.1145/3287560." / "3287596") is joined.
    """
    text = _DOI_BREAK_RE.sub(r"\1", unicodedata.normalize("NFKC", text).translate(_DASHES))
    for match in _DOI_RE.finditer(text):
        doi = match.group().rstrip(_DOI_TRAILING)
        while doi and doi[-1] in ")]" and _unmatched(doi):
            doi = doi[:-1].rstrip(_DOI_TRAILING)
        sep = re.search(r"[/∕⁄?]", doi)
        if sep is None:
            continue
        suffix = _ISSN_IN_DOI_RE.sub(r"\1\2-\3", doi[sep.end() :])
        doi = f"{doi[: sep.start()]}/{suffix}"
        if is_valid_doi(doi):
            return doi
    return None


def _unmatched(doi: str) -> bool:
    """Whether the closing bracket ``doi`` ends with has no opening one in it."""
    return doi.count(doi[-1]) > doi.count("(" if doi[-1] == ")" else "[")


def is_valid_doi(doi: str) -> bool:
    """Whether ``doi`` is a DOI as the DOI Handbook's syntax allows, and not a placeholder.

    "10." + a registrant code of 4-9 digits (not all zeros) + "/" + a suffix of printable
    characters; a suffix whose last part is only zeros ("jos.000000") or "xxxx" is a template's
    placeholder.
    """
    match = re.fullmatch(r"10\.(\d{4,9})(?:\.\d+)*/(\S+)", doi)
    if not match or not match.group(1).strip("0") or len(doi) > 200:
        return False
    last = re.split(r"[./\-_]", match.group(2).rstrip("."))[-1]
    return not (re.fullmatch(r"0{3,}|[xX]{3,}|[#*?]+", last) or re.search(r"x{4,}|X{4,}", doi))


# ---------------------------------------------------------------- arXiv id


def own_arxiv_id(fm: FrontMatter) -> str | None:
    """The document's own arXiv id: its margin stamp, else a line of the header, footer,
    running lines or front matter that opens with "arXiv:", else the info."""
    stamp = _ARXIV_STAMP_RE.search(_own(fm.page1.splitlines()))
    if stamp:
        return stamp.group(1)
    for line in fm.header + fm.footer + fm.edges + fm.front:
        if _OWN_ARXIV_LINE_RE.match(line) and not _SOURCE_LINE_RE.search(line):
            found = find_arxiv_id(line)
            if found:
                return found
    return find_arxiv_id(fm.info)


def find_arxiv_id(text: str) -> str | None:
    """The first arXiv id in ``text`` ("arXiv:2306.05499v2" -> "2306.05499"), or None."""
    match = _ARXIV_RE.search(text)
    return match.group(1) if match else None


def normalize_arxiv_id(raw: str) -> str:
    """An arXiv id as given by a feed, without an "arXiv:" prefix or a version suffix."""
    text = re.sub(r"^\s*arxiv\s*:\s*", "", raw, flags=re.IGNORECASE).strip()
    return re.sub(r"v\d+$", "", text)


# ---------------------------------------------------------------- year


def own_year(fm: FrontMatter, creation_date: str) -> int | None:
    """The year of publication (see the module's zones), else of the PDF's creation date.

    A printed date beats the creation date: a PDF rebuilt in 2026 may still say "27 October
    2025" on its cover. Lines with a received, revised or funding date, or a copyright
    notice, are passed over until the last resort (the first plausible year on page 1).
    """
    last = dt.date.today().year + 1
    published = [_arabic(line) for line in fm.header if not _NOT_PUBLICATION_RE.search(line)]
    front = [_arabic(line) for line in fm.front if not _NOT_PUBLICATION_RE.search(line)]
    footer = [line for line in fm.footer if not _NOT_PUBLICATION_RE.search(line)]
    stamp = _ARXIV_STAMP_RE.search(fm.page1)
    page1 = _arabic(fm.page1)
    created = re.match(r"^\(?(?:D:)?(\d{4})", creation_date.strip())
    candidates = (
        _dates(published)
        + _years(published)
        + ([stamp.group(4)] if stamp else [])
        + _dates(front)
        + _years(footer)
        + _dates([page1])
        + ([created.group(1)] if created else [])
        + _YEAR_RE.findall(page1)
    )
    for text in candidates:
        if 1990 <= int(text) <= last:
            return int(text)
    return None


def _dates(lines: list[str]) -> list[str]:
    found = []
    for line in lines:
        for match in _DATE_RE.finditer(line):
            text = next(filter(None, match.groups()))
            found.append(text if len(text) == 4 else f"20{text}")
    return found


def _years(lines: list[str]) -> list[str]:
    return [y for line in lines for y in _YEAR_RE.findall(_NOT_A_YEAR_RE.sub(" ", line))]


def _arabic(text: str) -> str:
    """Dates in Chinese numerals as digits: "二〇二五年六月" -> "2025年6月"."""

    def digits(match: re.Match[str]) -> str:
        year = "".join(_HAN_DIGITS[ch] for ch in match.group(1))
        month = match.group(2)
        if not month:
            return f"{year}年"
        number = 10 * (month[0] == "十") + (int(_HAN_DIGITS[month[-1]]) if month != "十" else 0)
        return f"{year}年{number}月"

    return _HAN_YEAR_RE.sub(digits, text)
