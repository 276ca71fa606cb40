"""Read a PDF's title page: its lines with their font sizes, and the lines' roles.

Metadata rules need what plain text loses: how large each line is set (a title is the largest
type on its page) and where it sits. The lines come from pdfminer.six, which also decodes
fonts that pypdf turns into mojibake (CJK fonts without a /ToUnicode map, e.g.
../shared/data/pdfs/zh_rucaibox_llm_survey_chinese.pdf).

The line rules here read English and Chinese title pages alike: 摘要 as well as Abstract,
titles counted in Han characters as well as in words. Without font sizes, ``title_from_text``
(in ``ingest.metadata``) reads plain text lines with the same rules.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ingest.lang import UNSPACED_CHARS, join_text
from ingest.names import is_person_name
from ingest.normalize import CID_RE, clean_text, matching_form

log = logging.getLogger(__name__)
logging.getLogger("pdfminer").setLevel(logging.ERROR)

_UNSPACED_RE = re.compile(f"[{UNSPACED_CHARS}]")
_FILE_TITLE_RE = re.compile(
    r"^(?:microsoft\s+\w+\s*-|untitled\b|title$|document\d*$|slide\s*\d*$)"
    # Workflow prefixes of a shared document's file name: "Copy of X", "Approved: X".
    r"|^(?:copy of|approved\s*[:_]|final\s*[:_]|draft\s*[:_])"
    r"|powerpoint|演示文稿|_\d+$|\.(?:pdf|docx?|tex|dvi|pptx?|odt|rtf|txt|indd|e?ps|md)$",
    re.IGNORECASE,
)
_SKIP_LINE_RE = re.compile(
    r"^[\W\d_]*$|https?://|www\.|\S@\S|^arxiv\s*:|\barxiv:\s*\d|^(?:doi|issn|isbn)\b"
    r"|^(?:preprint|under review|published as|proceedings of|accepted (?:at|to|by))\b"
    r"|^(?:draft|confidential|internal use|do not distribute)\b|^(?:征求意见稿|草案|内部资料)"
    r"|\bjournal of\b|\btransactions on\b|学报|^(?:copyright|©)|版权|all rights reserved"
    r"|^(?:authors?|date|version|revision|published|updated)\s*:|^(?:table of )?contents$"
    r"|^第\s*\d+\s*卷|中图分类号|文献标识码|文章编号|收稿日期|^目\s*录$"
    r"|^[^:：]{0,6}(?:单位|日期|作者|编写|指导|发布|版本|地址|电话|邮箱|主编|出品|联系)[^:：]{0,2}[:：]"
    # A standard's type banner ("中华人民共和国国家标准", "团体标准") and number line
    # ("GB/T 45654—2025", "TC260-003"), a course header ("《机器学习》大作业").
    r"|^中华人民共和国.{0,10}标准$|^(?:国家|行业|团体|地方|企业)标准$"
    r"|^(?:GB|GB/T|GB/Z|YD/T|JR/T|T/\w+|TC\d+)[\s\-]*[\d.\-—–]+\s*$"
    r"|^《[^》]+》\s*(?:课程)?(?:大作业|作业|课程设计|课程报告|期末报告|实验报告|读书报告|课程论文)$",
    re.IGNORECASE,
)
# A line that names an organisation ("中国信息通信研究院云计算与大数据研究所", "Federal Trade
# Commission") is a publisher or an affiliation, not a title.
_ORG_NAME_RE = re.compile(
    r"(?:公司|集团|研究院|研究所|研究中心|大学|学院|委员会|联盟|协会|办公室|实验室|科技)$"
    r"|\b(?:University|Institute|Laboratory|Commission|Corporation|Inc\.?|Ltd\.?|LLC|GmbH"
    r"|Foundation|Association|Alliance|Council|Agency|Ministry)$",
    re.IGNORECASE,
)
# "中文校对:", "Version:", "作者:": a labelled line; metadata reads the labels.
LABEL_RE = re.compile(r"^[^:：]{1,12}[:：]")
CONTENTS_RE = re.compile(r"^(?:table of )?contents$|^目\s*录$", re.IGNORECASE)
ABSTRACT_RE = re.compile(
    # "Abstract" alone or with punctuation ("Abstract—We"), so a title such as "Abstract
    # Interpretation of Networks" is not taken for the heading.
    r"^[ \t]*(?:Abstract[ \t]*(?=$|[:：.—–-])|ABSTRACT\b|[【\[]?\s*摘\s*要\s*[】\]]?)"
    r"[ \t]*[:：.—–-]?[ \t]*",
    re.MULTILINE,
)
# Lines that end an abstract: "1 Introduction", "I. INTRODUCTION", "Keywords:", "关键词",
# "一、引言", "第1章". Numbered headings only count on short lines (see is_heading).
_NUMBERED_RE = re.compile(rf"^(?:\d{{1,2}}(?:\.\d{{1,2}})*\.?|[IVX]+\.)\s*[A-Z{UNSPACED_CHARS}]")
_HEADING_RE = re.compile(
    r"^(?:(?:Keywords?|KEYWORDS?|Key [Ww]ords|Index Terms|INDEX TERMS|Introduction|INTRODUCTION"
    r"|CCS Concepts|CCS CONCEPTS|ACM Reference)\b"
    r"|(?:关键词|关键字|引言|前言|绪论|目录|中图分类号)"
    r"|[一二三四五六七八九十]+\s*[、.．]|第\s*[一二三四五六七八九十\d]+\s*[章节])"
)
_SUBJECT_RE = re.compile(
    r"^\s*(?:subject|re|主\s*题|事\s*由|论文题目|题\s*目)\s*[:：]\s*", re.IGNORECASE
)
# "(2022 年)": the edition year Chinese reports print under their title, part of it.
_YEAR_LINE_RE = re.compile(r"^\(\s*(?:19|20)\d\d\s*年?\s*\)$")
_SCRIPT_GROUPS = {"CJK": "CJK", "HIRAGANA": "CJK", "KATAKANA": "CJK", "HANGUL": "CJK"}
_SAME_ROW = 2.0  # points: lines whose tops differ less than this share a row
_SAME_SIZE = 0.6  # points: lines this close in size belong to one title
_TITLE_MAX_LINES = 4
_COVER_MAX_LINES = 15  # a first page with few lines is a cover: its largest type is the title
_STRONG_TITLE = 1.2  # times the size of the other lines' type
# A gap this many ems wide, without a space character, separates two cells of one line.
_CELL_GAP = 0.7


@dataclass(frozen=True)
class TextLine:
    """One line of text on a page, as laid out."""

    text: str  # as printed (``ingest.normalize.printed_form``), single-spaced
    size: float  # font size in points: the most common size among the line's characters
    page: int  # 1-based
    top: float  # distance from the top of the page to the line's top edge, in points
    x0: float = 0.0  # distance from the left edge of the page, in points
    height: float = 0.0  # the page's height, in points (0: unknown)


@dataclass(frozen=True)
class TitleBlock:
    """The title a first page's layout gives, and where it ends among the page's lines."""

    text: str
    size: float
    strong: bool  # clearly larger than the rest of the page, and not a running head
    end: int  # index, in the page's lines, of the first line after the title
    top: float = 0.0  # where the title's first line starts, from the top of the page


def layout_params() -> Any:
    """pdfminer.six's layout settings for kb's reads: every pass over a PDF uses these.

    ``all_texts``: Type3 text sits inside figures (zh_owasp_llm_top10_v1_1_zh.pdf).
    ``boxes_flow=None``: no hierarchical grouping of text boxes, which took half of
    pdfminer's time (the 9 shared PDFs with poor pypdf pages: 27.2 s against 8.6 s CPU,
    pdfminer.six 20260107). Lines come out the same; boxes come top to bottom, left to right,
    and ``ingest.pdf`` orders two-column pages itself.
    """
    from pdfminer.layout import LAParams

    return LAParams(all_texts=True, boxes_flow=None)


def page_lines(page: Any, number: int) -> list[TextLine]:
    """The text lines of a pdfminer page layout (page ``number``, 1-based), top to bottom.

    Lines in one row come left to right. Rotated lines (watermarks) and lines pdfminer cannot
    decode (``(cid:N)`` glyphs) are left out. ``ingest.pdf.read_pdf(layout=True)`` lays page 1
    out in the pass it makes anyway and gives its lines here.
    """
    return _in_rows(_page_lines(page, number))


def _page_lines(page: Any, number: int) -> list[TextLine]:
    from pdfminer.layout import LTFigure, LTTextBox, LTTextLine

    found: list[TextLine] = []
    stack = list(page)
    while stack:
        item = stack.pop()
        if isinstance(item, LTFigure | LTTextBox):
            stack.extend(item)
        elif isinstance(item, LTTextLine):
            found += _text_lines(item, number, page.y1, page.height)
    return found


def _text_lines(item: Any, number: int, page_top: float, height: float) -> list[TextLine]:
    """A pdfminer text line as TextLines, one per cell; none if empty, rotated or undecodable.

    A line is cut into cells where its characters leave a gap of at least ``_CELL_GAP`` em
    with no space character in it: an author grid's names ("Anay Mehrotra  Manolis
    Zampetakis") or a form's label and value sit in one pdfminer line. A letter-spaced line
    ("O F F I C E  O F", "W H I T E  P A P E R") keeps only its own space characters, not the
    spaces pdfminer adds between its letters.
    """
    from pdfminer.layout import LTChar

    chars = [c for c in item if isinstance(c, LTChar) and c.get_text().strip()]
    if not chars or sum(map(_is_horizontal, chars)) * 2 < len(chars):
        return []
    spaced = _letter_spaced(item)
    cells: list[list[Any]] = [[]]
    previous: Any = None
    for child in item:
        if not isinstance(child, LTChar):
            if not spaced:
                cells[-1].append(child)
            continue
        if previous is not None and child.get_text().strip() and cells[-1]:
            gap = child.x0 - previous.x1
            if gap >= _CELL_GAP * max(child.size, previous.size):
                cells.append([])
        cells[-1].append(child)
        previous = child
    top = round(page_top - item.y1, 1)
    return [line for cell in cells if (line := _cell_line(cell, number, top, height))]


def _letter_spaced(item: Any) -> bool:
    """Whether pdfminer put a space between most letters of ``item`` (tracked-out type)."""
    from pdfminer.layout import LTChar

    kinds = ["c" if isinstance(c, LTChar) and c.get_text().strip() else "s" for c in item]
    text = "".join(kinds)
    apart = len(re.findall("(?=csc)", text))
    pairs = len(re.findall("(?=cc)", text)) + apart
    return pairs >= 6 and apart >= 0.8 * pairs


def _cell_line(cell: list[Any], number: int, top: float, height: float) -> TextLine | None:
    from pdfminer.layout import LTChar

    chars = [c for c in cell if isinstance(c, LTChar) and c.get_text().strip()]
    if not chars:
        return None
    raw = "".join(c.get_text() for c in cell)
    cids = len(CID_RE.findall(raw))
    text = clean_text(CID_RE.sub(" ", raw)).replace("\n", " ")
    if not text or cids * 2 > len(text.replace(" ", "")):
        return None
    # The letters' size: superscript marks ("李明慧1,2", "沙泓州1),2),3)") are smaller.
    letters = [c for c in chars if c.get_text().isalpha()] or chars
    sizes = Counter(round(c.size, 1) for c in letters)
    size = max(sizes, key=lambda s: (sizes[s], s))
    return TextLine(text, size, number, top, round(chars[0].x0, 1), round(height, 1))


def _is_horizontal(char: Any) -> bool:
    """Whether a character is set upright on a horizontal baseline (watermarks are not)."""
    a, b, c, d = char.matrix[:4]
    return bool(char.upright) and abs(b) <= 0.1 * abs(a) and abs(c) <= 0.1 * abs(d)


def _in_rows(lines: list[TextLine]) -> list[TextLine]:
    """Lines top to bottom; lines whose tops are within a point or two, left to right."""
    ordered: list[TextLine] = []
    row: list[TextLine] = []
    for line in sorted(lines, key=lambda line: line.top):
        if row and line.top - row[0].top > _SAME_ROW:
            ordered += sorted(row, key=lambda line: line.x0)
            row = []
        row.append(line)
    return ordered + sorted(row, key=lambda line: line.x0)


# ---------------------------------------------------------------- what a line is


def is_sane_title(title: str) -> bool:
    """True if ``title`` reads like a real title, not a file name, a placeholder or mojibake."""
    title = matching_form(title).strip()
    if not title or len(title) > 300 or _FILE_TITLE_RE.search(title) or is_mixed_script(title):
        return False
    words = sum(1 for word in title.split() if any(ch.isalpha() for ch in word))
    return words >= 2 or len(_UNSPACED_RE.findall(title)) >= 4


def is_mixed_script(text: str) -> bool:
    """True if ``text``'s letters come from three or more scripts: mojibake, not a language.

    English/Chinese text uses Latin and CJK, with a Greek letter at most; fonts decoded with
    the wrong map give a mix such as Cyrillic, Lao and Sinhala ("Ч໓෮Ⴕ໓ሳ").
    """
    scripts: Counter[str] = Counter()
    for ch in text:
        if ch.isalpha():
            name = unicodedata.name(ch, "UNKNOWN").split(" ")[0]
            scripts[_SCRIPT_GROUPS.get(name, name)] += 1
    minor = sorted(scripts.values(), reverse=True)[2:]
    return len(scripts) >= 3 and sum(minor) * 10 >= sum(scripts.values())


def is_heading(line: str) -> bool:
    """A section heading or a keyword line: "1 Introduction", "Keywords:", "关键词", "一、引言"."""
    line = matching_form(line)
    return bool(_HEADING_RE.match(line) or (len(line) <= 60 and _NUMBERED_RE.match(line)))


def is_furniture(text: str) -> bool:
    """A stamp, date, URL, journal name, heading or organisation: a line that is no title."""
    text = matching_form(text)
    return bool(_SKIP_LINE_RE.search(text) or is_heading(text) or _ORG_NAME_RE.search(text))


def _confirms(text: str, known: str) -> bool:
    """Whether a short line repeats the info title ("RAG"): two sources agree on it."""
    return bool(_plain(text)) and _plain(text) == _plain(known) and not _FILE_TITLE_RE.search(text)


def _plain(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


# ---------------------------------------------------------------- the title and the by-line


def title_block(page: list[TextLine], *, next_page: str = "", known: str = "") -> TitleBlock | None:
    """The title of a first page: its largest type, consecutive lines of one size merged.

    Lines that are stamps, dates, URLs, journal names, headings or organisations are passed
    over, and so is everything from a "Contents"/"目录" heading on. A line group must read
    like a title (``is_sane_title``) unless it is ``known``, the PDF's own info title, which
    the layout then confirms ("RAG"). A person's name set as large as a title below it is a
    thesis cover's author, not the title. None when the page sets all its text in one size.

    Args:
        page: the lines of the first page, as ``page_lines`` gives them.
        next_page: the text of page 2; a title repeated at its top or bottom is a running
            head, which is not ``strong``.
        known: the title the PDF's document info gives, if any.
    """
    page = _before_contents(page)
    if not page or max(line.size for line in page) - min(line.size for line in page) < _SAME_SIZE:
        return None
    body = _common_size(page)
    runs = [
        (start, end, _joined(page[start:end]))
        for start, end in _size_runs(page)
        if _rows_in(page[start:end]) <= _TITLE_MAX_LINES
        and not (is_furniture(page[start].text) or is_furniture(_joined(page[start:end])))
    ]
    runs = [run for run in runs if is_sane_title(run[2]) or _confirms(run[2], known)]
    best: TitleBlock | None = None
    for k, (start, end, text) in enumerate(runs):
        size = page[start].size
        if is_person_name(text) and any(
            _same_size(size, page[s].size) for s, _, _ in runs[k + 1 :]
        ):
            continue  # the author's name above the title, in the title's size
        if (size > body or len(page) <= _COVER_MAX_LINES) and (best is None or size > best.size):
            best = TitleBlock(text, size, strong=False, end=end, top=page[start].top)
    return _finish(best, page, next_page) if best else None


def text_lines(text: str, page: int = 1) -> list[TextLine]:
    """Plain text (OCR's, which has no font sizes) as lines of one size, a line apart."""
    rows = [line.strip() for line in text.splitlines() if line.strip()]
    return [TextLine(row, 10.0, page, 12.0 * i) for i, row in enumerate(rows)]


def display_runs(page: list[TextLine]) -> list[str]:
    """The texts of the page's runs of lines set larger than its body text (titles,
    banners, subtitles), top to bottom."""
    if not page:
        return []
    body = _common_size(page)
    return [_joined(page[s:e]) for s, e in _size_runs(page) if page[s].size > body + _SAME_SIZE]


def subject_line(page: list[TextLine]) -> str:
    """A memorandum's title: its "SUBJECT:" / "主题:" line and the lines it wraps onto."""
    for i, line in enumerate(page):
        label = _SUBJECT_RE.match(line.text)
        if not label:
            continue
        text, parts = line.text[label.end() :].strip(), page[i + 1 :]
        value = (
            parts[0] if not text and parts and abs(parts[0].top - line.top) <= _SAME_ROW else None
        )
        if value is not None:
            text, parts = value.text, parts[1:]
        x0, previous = (value or line).x0, value or line
        for nxt in parts:
            gap = nxt.top - previous.top
            if abs(nxt.x0 - x0) > 2 or not 0 < gap <= 1.6 * nxt.size or LABEL_RE.match(nxt.text):
                break
            text, previous = join_text(text, nxt.text), nxt
        return text if is_sane_title(text) else ""
    return ""


def _rows_in(lines: list[TextLine]) -> int:
    return len({round(line.top) for line in lines})


def _same_size(a: float, b: float) -> bool:
    """Sizes of one title: within 0.6 pt, or 3 % for display type (47.1 and 48 pt)."""
    return abs(a - b) < max(_SAME_SIZE, 0.03 * max(a, b))


def _before_contents(page: list[TextLine]) -> list[TextLine]:
    for i, line in enumerate(page):
        if CONTENTS_RE.match(line.text):
            return page[:i]
    return page


def _common_size(lines: list[TextLine]) -> float:
    """The size most characters are set in (the body text's size)."""
    weights: Counter[float] = Counter()
    for line in lines:
        weights[line.size] += len(line.text)
    return max(weights, key=lambda size: (weights[size], -size))


def _size_runs(page: list[TextLine]) -> list[tuple[int, int]]:
    """(start, end) of each run of consecutive lines set in one size, close together."""
    runs = []
    start = 0
    for i in range(1, len(page) + 1):
        if i == len(page) or not _continues_run(page[i - 1], page[i], page[start].size):
            runs.append((start, i))
            start = i
    return runs


def _continues_run(previous: TextLine, line: TextLine, size: float) -> bool:
    gap = line.top - previous.top
    return _same_size(line.size, size) and -_SAME_ROW <= gap <= 2.5 * size


def _joined(lines: list[TextLine]) -> str:
    text = ""
    for line in lines:
        text = join_text(text, line.text)
    return text


def _finish(block: TitleBlock, page: list[TextLine], next_page: str) -> TitleBlock:
    """Add an edition year printed under the title; decide whether the title is strong."""
    text, end = block.text, block.end
    if end < len(page) and _YEAR_LINE_RE.match(matching_form(page[end].text)):
        text = join_text(text, page[end].text, gap=not _UNSPACED_RE.match(text[-1]))
        end += 1
    rest = [line for line in page if abs(line.size - block.size) >= _SAME_SIZE]
    strong = bool(rest) and block.size >= _STRONG_TITLE * _common_size(rest)
    strong = strong and not _is_running_head(text, next_page)
    return TitleBlock(text, block.size, strong, end, block.top)


def _is_running_head(text: str, next_page: str) -> bool:
    """Whether ``text`` comes back in the first or last lines of the next page."""
    lines = [line for line in next_page.splitlines() if line.strip()]
    plain = _plain(text)
    return len(plain) >= 4 and any(plain in _plain(line) for line in lines[:3] + lines[-3:])


def line_after(page: list[TextLine], title: str) -> int | None:
    """The index of the line after the lines that spell ``title``, or None if none do."""
    target = _plain(title)
    for start, line in enumerate(page):
        read, end = _plain(line.text), start + 1
        while read and target.startswith(read) and read != target and end < len(page):
            read, end = read + _plain(page[end].text), end + 1
        if read and read == target:
            return end
    return None
