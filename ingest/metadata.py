"""Guess a paper's title, authors, year, abstract, DOI and arXiv id from its PDF info and text.

The PDF's document info is used where it is sane; otherwise the first page's layout (see
``ingest.layout``: the largest type is the title, the lines under it the by-line), and last
the first page's plain text. Every rule reads both English and Chinese layouts: 摘要 as well
as Abstract, 作者 as well as Authors, Chinese names kept in Chinese.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

from ingest.lang import CJK_PUNCT, UNSPACED_CHARS, detect_lang, join_text
from ingest.layout import (
    ABSTRACT_RE,
    CONTENTS_RE,
    LABEL_RE,
    TextLine,
    TitleBlock,
    author_lines,
    first_page_lines,
    is_furniture,
    is_heading,
    is_sane_title,
    line_after,
    title_block,
)
from ingest.pdf import read_pdf
from kb.types import PaperMeta

__all__ = [
    "describe_pdf",
    "extract_metadata",
    "find_arxiv_id",
    "find_doi",
    "is_person_name",
    "is_sane_title",
    "normalize_arxiv_id",
    "split_authors",
    "title_from_text",
]

_UNSPACED_RE = re.compile(f"[{UNSPACED_CHARS}]")
_CONNECTOR_END_RE = re.compile(
    r"(?:[:,&\-–—]|\b(?:and|of|for|the|in|to|with|on|a|an|via|from|by))$", re.IGNORECASE
)
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_AUTHOR_SPLIT_RE = re.compile(r"\s*(?:[,;，；、]|\s(?:and|&)\s)\s*", re.IGNORECASE)
# A by-line also separates names with " | ", " - " or wide gaps.
_LINE_SPLIT_RE = re.compile(r"\s*(?:[,;，；、]|\s(?:and|&|[|–—-])\s|\s{3,})\s*", re.IGNORECASE)
_INITIALS_RE = re.compile(r"^(?:[A-Z]\.?\s*-?\s*){1,3}$")
_INITIAL_RE = re.compile(r"[A-Z]|(?:[A-Z]\.-?)+")  # "J", "J.", "J.-P." but not "AI"
_PLACEHOLDER_AUTHORS = {
    "admin", "administrator", "anonymous", "author", "owner", "user", "unknown", "windows user",
    "microsoft office user", "微软用户", "作者", "用户", "未知",
}  # fmt: skip
_AUTHOR_LABEL_RE = re.compile(
    r"^(?:作\s*者|著\s*者|执笔人?|authors?|written by)\s*[:：]\s*|^by\s+", re.IGNORECASE
)
# Footnote marks and affiliation numbers around a name: "Zou1", "张三 1", "周昆 *", "Wang†",
# "(nick)"; a year ("Nov 2025") is not a mark.
_MARKS_RE = re.compile(
    r"\([^)]*\)|^[\s\d*†‡§¶#✉∗⋆^.]+|(?:[\s,，]*(?:(?<!\d)\d{1,2}|[*†‡§¶#✉∗⋆^]))+\s*$"
)
_LINK_RE = re.compile(r"@|https?:|www\.")
_NOT_A_NAME_RE = re.compile(
    r"@|https?:|www\.|\d|大学|学院|研究院|研究所|研究中心|实验室|公司|集团|联盟|协会|委员会"
    r"|办公室|中心|科技|银行|医院|教授|研究员|主任|博士|硕士|院士|工程师|主编"
    r"|\b(?:Univ|University|Institute|Lab|Labs|Laboratory|Inc|Corp|Corporation|Ltd|LLC|GmbH"
    r"|Company|Commission|Foundation|Association|Alliance|Council|Agency|Department|Dept"
    r"|Ministry|School|College|Academy|Centre|Center|Workstream|Team|Group|Project|Director"
    r"|Professor|Prof|Dr|Sr|Chief|Officer|Manager|Member|Chair|Head|Lead|Editor|Fellow"
    r"|Student|Researcher|Engineer|Scientist|President|Founder|CEO|CTO|Board)\b",
    re.IGNORECASE,
)
_HAN_NAME_RE = re.compile(f"[{_HAN}]{{2,4}}|[{_HAN}]{{1,6}}·[{_HAN}]{{1,8}}")
_HAN_NAMES_RE = re.compile(f"[{_HAN}]{{2,4}}(?: [{_HAN}]{{2,4}})+")
_PARTICLES = {"van", "von", "der", "den", "de", "del", "della", "di", "da", "dos", "du", "la"}
_PARTICLES |= {"le", "bin", "al", "ter", "ten"}
_SURNAME_FIRST_RE = re.compile(r"[^\W\d_][\w'’\-]+,\s*(?:[A-Z]\.\s*-?\s*)+")

_YEAR_RE = re.compile(r"(?<!\d)(19\d\d|20\d\d)(?!\d|\.\d)")
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_Y = r"(?<!\d)((?:19|20)\d\d)(?!\d)"
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
# A date printed on the page, earliest first wins: "27 October 2025", "April 11, 2024",
# "Nov 2025", "2022 年 1 月", "2023-11-01", "11/25/2025", "Published 2021", "Published: 10/7/24".
_DATE_RE = re.compile(
    rf"\b{_MONTH}\s+(?:{_DAY},?\s+)?{_Y}|\b{_DAY}\s+{_MONTH},?\s+{_Y}|{_Y}\s*年\s*\d{{1,2}}\s*月"
    rf"|{_Y}-\d\d?-\d\d?\b|\b\d\d?[/.]\d\d?[/.]{_Y}|\bpublished\b\D{{0,20}}?{_Y}"
    r"|\b(?:published|date|released)\s*:?\s*\d\d?/\d\d?/(\d\d)\b",
    re.IGNORECASE,
)
_MAX_ABSTRACT_CHARS = 2000
_DOI_RE = re.compile(f'10\\.\\d{{4,9}}/[^\\s"<>{UNSPACED_CHARS}{CJK_PUNCT}]+')
_DOI_TRAILING = ".,;:'\"!?"
_ARXIV_RE = re.compile(
    r"(?:arxiv:\s*|arxiv\.org/(?:abs|pdf)/)"
    r"(\d{4}\.\d{4,5}|[a-z][a-z\-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?",
    re.IGNORECASE,
)
# A line that links the original of a translation ("英文原文链接: arxiv.org/abs/2303.18223"):
# that id is the original's, not this document's.
_SOURCE_LINE_RE = re.compile(
    r"原文|英文版|译自|翻译|translat|original (?:paper|version|article)", re.IGNORECASE
)
_DESCRIBE_PAGES = 2  # pages of text describe_pdf reads: the title page and the next (abstract)


def describe_pdf(path: Path) -> PaperMeta:
    """The metadata of the PDF at ``path``, from its document info, its first pages' text and
    its first page's layout (``first_page_lines``).

    Reads the text of the first two pages only (``n_pages`` still counts them all). Raises
    IngestError if the file cannot be opened; pages without usable text read as "".
    """
    pdf = read_pdf(path, first_pages=_DESCRIBE_PAGES, require_text=False)
    lines = first_page_lines(path)
    lang = detect_lang("\n".join(pdf.pages))
    if lang == "und" and lines:
        lang = detect_lang("\n".join(line.text for line in lines))
    meta = extract_metadata(pdf.info, pdf.pages, lang, lines=lines)
    return dataclasses.replace(meta, n_pages=pdf.n_pages)


def extract_metadata(
    info: dict[str, str], pages: list[str], lang: str, *, lines: list[TextLine] | None = None
) -> PaperMeta:
    """Bibliographic metadata from a PDF's document info, page texts and first-page layout.

    Args:
        info: the PDF document info (``PdfText.info``: title, author, creation_date, ...).
        pages: the text of each page, page 1 first.
        lang: the paper's language, stored as is.
        lines: the first page's lines with their font sizes (``first_page_lines``), if read;
            without them the title and authors come from the info and the plain text only.
    """
    page = [line for line in lines or [] if line.page == 1]
    first = (pages[0] if pages else "") or "\n".join(line.text for line in page)
    head = "\n".join([first, *pages[1:2]])
    next_page = pages[1] if len(pages) > 1 else ""
    block = title_block(page, next_page=next_page, known=info.get("title", ""))
    title = _title(info.get("title", ""), block, first)
    own_text = "\n".join([_own_lines(first), "\n".join(info.values()), _own_lines(head)])
    return PaperMeta(
        title=title,
        authors=_authors(info.get("author", ""), page, block, title),
        year=_year(info.get("creation_date", ""), first),
        abstract=_abstract(head),
        doi=find_doi(own_text),
        arxiv_id=find_arxiv_id(own_text),
        lang=lang,
        n_pages=len(pages),
    )


def _title(info_title: str, block: TitleBlock | None, first_page: str) -> str:
    """The info title if sane, unless the layout's clearly larger title says otherwise."""
    info_title = info_title.strip()
    sane = is_sane_title(info_title)
    if block is None:
        return info_title if sane else title_from_text(first_page)
    if not sane:
        return block.text
    info_plain, block_plain = _plain(info_title), _plain(block.text)
    if block_plain in info_plain:  # the info title adds a subtitle ("Facing Facts: Best ...")
        return info_title
    if info_plain in block_plain or block.strong:
        return block.text
    return info_title


def _plain(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def title_from_text(text: str) -> str:
    """The first substantial line of a first page's text, with a wrapped second line if any.

    Lines from a "Contents"/"目录" heading on are not read: a table of contents has no title.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()][:12]
    for i, line in enumerate(lines):
        if CONTENTS_RE.match(line):
            return ""
        if is_furniture(line) or not is_sane_title(line):
            continue
        title = line
        for nxt in lines[i + 1 : i + 3]:
            if not _continues_title(title, nxt):
                break
            title = join_text(title, nxt)
        return title
    return ""


def _continues_title(title: str, nxt: str) -> bool:
    """Whether ``nxt`` is the wrapped continuation of the title line(s) ``title``."""
    if is_furniture(nxt) or len(title) + len(nxt) > 200:
        return False
    if _UNSPACED_RE.match(nxt):
        # Join a Chinese line only after a visibly unfinished one ("...的", "...:"): PDF text
        # has no spaces between Chinese names, so "张三李四" under a title looks like a title.
        unfinished = re.search(r"[的与和及、,:：—(《“]$", title)
        return bool(unfinished) and not re.search(r"[\d:]", nxt) and len(title) + len(nxt) <= 60
    return bool(_CONNECTOR_END_RE.search(title) or nxt[:1].islower())


# ---------------------------------------------------------------- authors


def _authors(
    info_author: str, page: list[TextLine], block: TitleBlock | None, title: str
) -> list[str]:
    """The info author's names if any are people's names, else the by-line under the title."""
    names = [name for name in map(_clean_name, split_authors(info_author)) if is_person_name(name)]
    if names or not page:
        return names
    start = block.end if block else line_after(page, title)
    if start is None:
        return []
    for text in author_lines(page, start, block.size if block else None):
        for name in names_in_line(text):
            if name not in names:
                names.append(name)
    return names


def names_in_line(text: str) -> list[str]:
    """The people's names in one by-line, without emails, affiliations and footnote marks.

    A line counts only if its names are more than half of what is left once emails,
    affiliations, roles and numbers are dropped: "Detection, Incident Response, Compliance"
    is not a by-line. A line labelled otherwise ("中文校对:", "Version:") gives none.
    """
    label = _AUTHOR_LABEL_RE.match(text)
    if label:
        text = text[label.end() :]
    elif LABEL_RE.match(text):
        return []
    names, others = [], 0
    for part in _LINE_SPLIT_RE.split(text):
        part = "" if _LINK_RE.search(part) else _clean_name(part)
        # Digits left once the marks are gone make a date, a version or an address.
        if sum(ch.isalpha() for ch in part) < 2 or _NOT_A_NAME_RE.search(part):
            continue
        found = part.split(" ") if _HAN_NAMES_RE.fullmatch(part) else [part]
        for name in found:
            if is_person_name(name):
                names.append(name)
            else:
                others += 1
    return names if len(names) > others else []


def _clean_name(part: str) -> str:
    return re.sub(r"\s+", " ", _MARKS_RE.sub("", part.strip())).strip()


def is_person_name(name: str) -> bool:
    """Whether ``name`` looks like a person's name: "Leon Derczynski", "J. Zico Kolter",
    "Rob van der Veer", "Smith, J.", or 2-4 Han characters ("赵鑫", "欧阳娜娜").

    Single words ("LPF", "admin"), organisations ("富数科技") and text with digits are not.
    """
    if _NOT_A_NAME_RE.search(name) or name.lower() in _PLACEHOLDER_AUTHORS:
        return False
    if _HAN_NAME_RE.fullmatch(name) or _SURNAME_FIRST_RE.fullmatch(name):
        return True
    tokens = name.split()
    if not 2 <= len(tokens) <= 5 or tokens[0] in _PARTICLES or tokens[-1] in _PARTICLES:
        return False
    return all(_name_token(token) for token in tokens) and any(len(t) > 2 for t in tokens)


def _name_token(token: str) -> bool:
    if token in _PARTICLES or _INITIAL_RE.fullmatch(token):
        return True
    letters = token.replace("-", "").replace("'", "").replace("’", "")
    return letters.isalpha() and token[0].isupper() and any(ch.islower() for ch in token)


def split_authors(raw: str) -> list[str]:
    """Split an author string on , ; and & 、 ，; keeps "Smith, J." together; [] if unknown."""
    names: list[str] = []
    for part in _AUTHOR_SPLIT_RE.split(raw.strip()):
        part = part.strip()
        if _INITIALS_RE.match(part) and names:
            names[-1] = f"{names[-1]}, {part}"
        elif part:
            names.append(part)
    keep = []
    for name in names:
        plausible = not re.search(r"[\d@/:]", name) and len(name) <= 80
        if plausible and name.lower() not in _PLACEHOLDER_AUTHORS and name not in keep:
            keep.append(name)
    return keep


# ---------------------------------------------------------------- year, abstract, identifiers


def _year(creation_date: str, first_page: str) -> int | None:
    """The year of a date printed on the first page, else of the PDF's creation date, else
    the first plausible year on the first page.

    A printed date beats the creation date: a PDF rebuilt in 2026 may still say "27 October
    2025" on its cover.
    """
    last = dt.date.today().year + 1
    printed = [next(filter(None, m.groups())) for m in _DATE_RE.finditer(first_page)]
    printed = [text if len(text) == 4 else f"20{text}" for text in printed]
    created = re.match(r"^(?:D:)?(\d{4})", creation_date.strip())
    candidates = printed + ([created.group(1)] if created else []) + _YEAR_RE.findall(first_page)
    for text in candidates:
        if 1990 <= int(text) <= last:
            return int(text)
    return None


def _abstract(text: str) -> str:
    match = ABSTRACT_RE.search(text)
    if not match:
        return ""
    body = ""
    for line in text[match.end() :].splitlines():
        line = line.strip()
        if is_heading(line):
            break
        body = join_text(body, line) if line else body
        if len(body) >= _MAX_ABSTRACT_CHARS:
            return _cut(body, _MAX_ABSTRACT_CHARS)
    return body


def _cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, at the last sentence end if there is one."""
    text = text[:limit]
    ends = [m.end() for m in re.finditer(r"[。！？!?]|\.(?=\s)", text)]
    return text[: ends[-1]] if ends and ends[-1] > limit // 2 else text


def _own_lines(text: str) -> str:
    """``text`` without the lines that point to the original of a translation."""
    return "\n".join(line for line in text.splitlines() if not _SOURCE_LINE_RE.search(line))


def find_doi(text: str) -> str | None:
    """The first DOI in ``text``, without trailing punctuation or an unmatched ")"."""
    match = _DOI_RE.search(text)
    if not match:
        return None
    doi = match.group().rstrip(_DOI_TRAILING)
    while doi[-1] in ")]" and doi.count(doi[-1]) > doi.count("(" if doi[-1] == ")" else "["):
        doi = doi[:-1].rstrip(_DOI_TRAILING)
    return doi


def find_arxiv_id(text: str) -> str | None:
    """The first arXiv id in ``text`` ("arXiv:2306.05499v2" -> "2306.05499"), or None."""
    match = _ARXIV_RE.search(text)
    return match.group(1) if match else None


def normalize_arxiv_id(raw: str) -> str:
    """An arXiv id as given by a feed, without an "arXiv:" prefix or a version suffix."""
    text = re.sub(r"^\s*arxiv\s*:\s*", "", raw, flags=re.IGNORECASE).strip()
    return re.sub(r"v\d+$", "", text)
