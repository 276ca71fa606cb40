"""Guess a paper's title, authors, year, abstract, DOI and arXiv id from its PDF info and text.

Every rule reads both English and Chinese layouts: 摘要 as well as Abstract, 关键词 as well
as Keywords, titles counted in Han characters as well as in words.
"""

from __future__ import annotations

import datetime as dt
import re

from ingest.lang import CJK_PUNCT, UNSPACED_CHARS, join_text
from kb.types import PaperMeta

_UNSPACED_RE = re.compile(f"[{UNSPACED_CHARS}]")
_FILE_TITLE_RE = re.compile(
    r"^(?:microsoft\s+\w+\s*-|untitled\b|title$|document\d*$|slide\s*\d*$)"
    r"|powerpoint|演示文稿|_\d+$|\.(?:pdf|docx?|tex|dvi|pptx?|odt|rtf|txt|indd|e?ps|md)$",
    re.IGNORECASE,
)
_SKIP_LINE_RE = re.compile(
    r"^[\W\d_]*$|https?://|www\.|\S@\S|^arxiv\s*:|\barxiv:\s*\d|^(?:doi|issn|isbn)\b"
    r"|^(?:preprint|under review|published as|proceedings of|accepted (?:at|to|by))\b"
    r"|^(?:authors?|date|version|revision|published|updated)\s*:|^(?:table of )?contents$"
    r"|^第\s*\d+\s*卷|中图分类号|文献标识码|文章编号|收稿日期|^目\s*录$"
    r"|^[^:：]{0,6}(?:单位|日期|作者|编写|指导|发布|版本|地址|电话|邮箱|主编|出品|联系)[^:：]{0,2}[:：]",
    re.IGNORECASE,
)
_CONNECTOR_END_RE = re.compile(
    r"(?:[:,&\-–—]|\b(?:and|of|for|the|in|to|with|on|a|an|via|from|by))$", re.IGNORECASE
)
_AUTHOR_SPLIT_RE = re.compile(r"\s*(?:[,;，；、]|\s(?:and|&)\s)\s*", re.IGNORECASE)
_INITIALS_RE = re.compile(r"^(?:[A-Z]\.?\s*-?\s*){1,3}$")
_PLACEHOLDER_AUTHORS = {
    "admin", "administrator", "anonymous", "author", "owner", "user", "unknown", "windows user",
    "microsoft office user", "微软用户", "作者", "用户", "未知",
}  # fmt: skip
_YEAR_RE = re.compile(r"(?<!\d)(19\d\d|20\d\d)(?!\d|\.\d)")
_ABSTRACT_RE = re.compile(
    # "Abstract" alone or with punctuation ("Abstract—We"), so a title such as "Abstract
    # Interpretation of Networks" is not taken for the heading.
    r"^[ \t]*(?:Abstract[ \t]*(?=$|[:：.—–-])|ABSTRACT\b|[【\[]?\s*摘\s*要\s*[】\]]?)"
    r"[ \t]*[:：.—–-]?[ \t]*",
    re.MULTILINE,
)
# Lines that end an abstract: "1 Introduction", "I. INTRODUCTION", "Keywords:", "关键词",
# "一、引言", "第1章". Numbered headings only count on short lines (see _is_heading).
_NUMBERED_RE = re.compile(rf"^(?:\d{{1,2}}(?:\.\d{{1,2}})*\.?|[IVX]+\.)\s*[A-Z{UNSPACED_CHARS}]")
_HEADING_RE = re.compile(
    r"^(?:(?:Keywords?|KEYWORDS?|Key [Ww]ords|Index Terms|INDEX TERMS|Introduction|INTRODUCTION"
    r"|CCS Concepts|CCS CONCEPTS|ACM Reference)\b"
    r"|(?:关键词|关键字|引言|前言|绪论|目录|中图分类号)"
    r"|[一二三四五六七八九十]+\s*[、.．]|第\s*[一二三四五六七八九十\d]+\s*[章节])"
)
_MAX_ABSTRACT_CHARS = 2000
_DOI_RE = re.compile(f'10\\.\\d{{4,9}}/[^\\s"<>{UNSPACED_CHARS}{CJK_PUNCT}]+')
_DOI_TRAILING = ".,;:'\"!?"
_ARXIV_RE = re.compile(
    r"(?:arxiv:\s*|arxiv\.org/(?:abs|pdf)/)"
    r"(\d{4}\.\d{4,5}|[a-z][a-z\-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?",
    re.IGNORECASE,
)


def extract_metadata(info: dict[str, str], pages: list[str], lang: str) -> PaperMeta:
    """Bibliographic metadata from a PDF's document info and page texts.

    Args:
        info: the PDF document info (``PdfText.info``: title, author, creation_date, ...).
        pages: the text of each page, page 1 first.
        lang: the paper's language, stored as is.
    """
    first = pages[0] if pages else ""
    head = "\n".join(pages[:2])
    info_text = "\n".join(info.values())
    return PaperMeta(
        title=_title(info.get("title", ""), first),
        authors=split_authors(info.get("author", "")),
        year=_year(info.get("creation_date", ""), first),
        abstract=_abstract(head),
        doi=find_doi("\n".join([first, info_text, head])),
        arxiv_id=find_arxiv_id("\n".join([first, info_text, head])),
        lang=lang,
        n_pages=len(pages),
    )


def is_sane_title(title: str) -> bool:
    """True if ``title`` reads like a real title, not a file name or a placeholder."""
    title = title.strip()
    if not title or len(title) > 300 or _FILE_TITLE_RE.search(title):
        return False
    words = sum(1 for word in title.split() if any(ch.isalpha() for ch in word))
    return words >= 2 or len(_UNSPACED_RE.findall(title)) >= 4


def _title(info_title: str, first_page: str) -> str:
    if is_sane_title(info_title):
        return info_title.strip()
    return title_from_text(first_page)


def title_from_text(text: str) -> str:
    """The first substantial line of a first page, with a wrapped second line if any."""
    lines = [line.strip() for line in text.splitlines() if line.strip()][:12]
    for i, line in enumerate(lines):
        if _SKIP_LINE_RE.search(line) or _is_heading(line) or not is_sane_title(line):
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
    if _SKIP_LINE_RE.search(nxt) or _is_heading(nxt) or len(title) + len(nxt) > 200:
        return False
    if _UNSPACED_RE.match(nxt):
        # Join a Chinese line only after a visibly unfinished one ("...的", "...:"): PDF text
        # has no spaces between Chinese names, so "张三李四" under a title looks like a title.
        unfinished = re.search(r"[的与和及、,:：—(《“]$", title)
        return bool(unfinished) and not re.search(r"[\d:]", nxt) and len(title) + len(nxt) <= 60
    return bool(_CONNECTOR_END_RE.search(title) or nxt[:1].islower())


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


def _year(creation_date: str, first_page: str) -> int | None:
    date = re.match(r"^(?:D:)?(\d{4})", creation_date.strip())
    candidates = [date.group(1)] if date else []
    candidates += _YEAR_RE.findall(first_page)
    last = dt.date.today().year + 1
    for text in candidates:
        if 1990 <= int(text) <= last:
            return int(text)
    return None


def _abstract(text: str) -> str:
    match = _ABSTRACT_RE.search(text)
    if not match:
        return ""
    body = ""
    for line in text[match.end() :].splitlines():
        line = line.strip()
        if _is_heading(line):
            break
        body = join_text(body, line) if line else body
        if len(body) >= _MAX_ABSTRACT_CHARS:
            return _cut(body, _MAX_ABSTRACT_CHARS)
    return body


def _is_heading(line: str) -> bool:
    return bool(_HEADING_RE.match(line) or (len(line) <= 60 and _NUMBERED_RE.match(line)))


def _cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, at the last sentence end if there is one."""
    text = text[:limit]
    ends = [m.end() for m in re.finditer(r"[。！？!?]|\.(?=\s)", text)]
    return text[: ends[-1]] if ends and ends[-1] > limit // 2 else text


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
