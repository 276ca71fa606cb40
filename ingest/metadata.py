"""Guess a paper's title, authors, year, abstract, DOI and arXiv id from its PDF info and text.

The first page's layout comes first (see ``ingest.layout``: the largest type is the title);
the PDF's document info is used where it agrees with the page or the page says nothing; and
last the first page's plain text. Authors come from ``ingest.byline``, identifiers and the
year from the zones of ``ingest.frontmatter``. Every rule reads English and Chinese
layouts alike: 摘要 as well as Abstract, 作者 as well as Authors, Chinese names in Chinese.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from ingest.byline import find_authors, names_in_line
from ingest.frontmatter import (
    find_arxiv_id,
    find_doi,
    front_matter,
    normalize_arxiv_id,
    own_arxiv_id,
    own_doi,
    own_year,
)
from ingest.lang import UNSPACED_CHARS, detect_lang, join_text
from ingest.layout import (
    ABSTRACT_RE,
    CONTENTS_RE,
    TextLine,
    TitleBlock,
    display_runs,
    is_furniture,
    is_heading,
    is_sane_title,
    line_after,
    subject_line,
    title_block,
)
from ingest.names import is_person_name, split_authors
from ingest.pdf import read_pdf
from kb.types import PaperMeta

__all__ = [
    "describe_pdf",
    "printed_info",
    "document_lang",
    "extract_metadata",
    "find_arxiv_id",
    "find_doi",
    "is_person_name",
    "is_sane_title",
    "names_in_line",
    "normalize_arxiv_id",
    "split_authors",
    "title_from_text",
]

_UNSPACED_RE = re.compile(f"[{UNSPACED_CHARS}]")
_HAN_RE = re.compile("[\u3400-\u4dbf\u4e00-\u9fff]")
_CONNECTOR_END_RE = re.compile(
    r"(?:[:,&\-–—]|\b(?:and|of|for|the|in|to|with|on|a|an|via|from|by))$", re.IGNORECASE
)
_MAX_ABSTRACT_CHARS = 2000
# Lines inside an abstract's span that are not the abstract: footnotes ("∗Equal contribution",
# "1University of ..."), e-mails, funding and received-date notes, venue footers, stamps.
_NOT_ABSTRACT_RE = re.compile(
    r"^\s*(?:[*∗†‡§¶✉]|\d{1,2}(?=[A-Z\u4e00-\u9fff(（]))|@\w|\be-?mail\b"
    r"|equal contribution|corresponding author|work done|通信作者|通讯作者|收稿日期|修回日期"
    r"|基金项目|作者简介|^\s*preprint\b|conference on|^\s*arxiv:|©|copyright",
    re.IGNORECASE,
)
_DESCRIBE_PAGES = 2  # pages of text describe_pdf reads: the title page and the next (abstract)
_ZH_SHARE = 0.1  # a Chinese-titled document whose text is this share Han is Chinese


def describe_pdf(path: Path) -> PaperMeta:
    """The metadata of the PDF at ``path``, from its document info, its first pages' text and
    its first page's layout (``read_pdf(layout=True)``).

    Reads the text of the first two pages and the last one (a back cover's imprint) only;
    ``n_pages`` still counts them all. Raises IngestError if the file cannot be opened;
    pages without usable text read as "".
    """
    pdf = read_pdf(
        path, first_pages=_DESCRIBE_PAGES, last_page=True, require_text=False, layout=True
    )
    lines = pdf.lines
    head = "\n".join(pdf.pages[:_DESCRIBE_PAGES])
    lang = detect_lang(head)
    if lang == "und" and lines:
        lang = detect_lang("\n".join(line.text for line in lines))
    meta = extract_metadata(pdf.info, pdf.pages, lang, lines=lines)
    lang = document_lang(lang, meta.title, head)
    return dataclasses.replace(meta, lang=lang, n_pages=pdf.n_pages)


def document_lang(lang: str, title: str, text: str) -> str:
    """``lang``, or "zh" for a Chinese-titled document whose text is partly Chinese: a
    Chinese journal article's English abstract block (or Latin text a broken font spells in
    full-width letters) can outweigh its Chinese text."""
    letters = sum(ch.isalpha() for ch in text)
    han = len(_HAN_RE.findall(text))
    chinese_title = len(_HAN_RE.findall(title)) * 2 >= sum(ch.isalpha() for ch in title) > 0
    if lang != "zh" and chinese_title and letters and han >= _ZH_SHARE * letters:
        return "zh"
    return lang


def extract_metadata(
    info: dict[str, str], pages: list[str], lang: str, *, lines: list[TextLine] | None = None
) -> PaperMeta:
    """Bibliographic metadata from a PDF's document info, page texts and first-page layout.

    Args:
        info: the PDF document info (``PdfText.info``: title, author, creation_date, ...).
        pages: the text of each page, page 1 first (the last is read as a back cover).
        lang: the paper's language, stored as is.
        lines: the first page's lines with their font sizes (``read_pdf(layout=True)``), if read;
            without them the title and authors come from the info and the plain text only.
    """
    page = [line for line in lines or [] if line.page == 1]
    first = (pages[0] if pages else "") or "\n".join(line.text for line in page)
    head = "\n".join([first, *pages[1:2]])
    texts = [first, *pages[1:]]
    block = title_block(page, next_page=pages[1] if len(pages) > 1 else "", known=_info(info))
    title = _title(_info(info), block, page, first, head)
    if block and title == block.text and (subtitle := _subtitle(block, page, head)):
        title = f"{title}{'' if title.endswith((':', '：')) else ':'} {subtitle}"
    title = _recase(_unbracketed(title), [head, _info(info)])
    anchor = block or _anchor(page, title)
    authors = find_authors(page, anchor, info_author=info.get("author", ""), pages=texts)
    zones = front_matter(page, anchor, texts, info)
    return PaperMeta(
        title=title,
        authors=authors.names,
        author_kind=authors.kind,
        title_en=_english_title(page, anchor, title),
        year=own_year(zones, info.get("creation_date", "")),
        abstract=_abstract(head),
        doi=own_doi(zones),
        arxiv_id=own_arxiv_id(zones),
        lang=lang,
        n_pages=len(pages),
    )


def printed_info(info: dict[str, str], text: str) -> dict[str, str]:
    """The PDF info without a title or author that ``text`` does not print: a scan's info is
    often the scanner's, and its OCR text is what the pages say."""
    page = _plain(text)
    return {k: v for k, v in info.items() if k not in ("title", "author") or _plain(v) in page}


def _info(info: dict[str, str]) -> str:
    return info.get("title", "").strip()


def _anchor(page: list[TextLine], title: str) -> TitleBlock | None:
    """Where a title the layout did not pick (the info's, a memo's subject) sits on the page."""
    end = line_after(page, title) if page and title else None
    if end is None:
        return None
    start = next(
        i
        for i in range(end)
        if _plain(page[i].text) and _plain(title).startswith(_plain(page[i].text))
    )
    return TitleBlock(title, page[start].size, False, end, page[start].top)


# ---------------------------------------------------------------- title


def _title(
    info_title: str, block: TitleBlock | None, page: list[TextLine], first: str, head: str
) -> str:
    """The title as printed: a memo's subject line, the layout's largest type, or the PDF's
    info title where the page prints it (see docs/METADATA.md for the order)."""
    sane = is_sane_title(info_title)
    subject = subject_line(page)
    if subject and not (block and block.strong):
        return subject
    if block is None:
        return info_title if sane else title_from_text(first)
    if not sane:
        return block.text
    info_plain, block_plain = _plain(info_title), _plain(block.text)
    if block_plain == info_plain:
        return block.text  # as printed ("for Automated", where the info says "forAutomated")
    if block_plain in info_plain:
        # The info title adds to the layout's: kept only if the page prints the rest too
        # ("Facing Facts" + its subtitle, not "... - amended (web-ready PDF)").
        rest = info_plain.replace(block_plain, "", 1)
        return info_title if rest in _plain(head) else block.text
    if info_plain in block_plain:
        return block.text
    if len(info_plain) >= 8 and any(info_plain == _plain(run) for run in display_runs(page)):
        return info_title  # printed large on page 1: the larger type above it is a banner
    return block.text if block.strong else info_title


def _plain(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def _unbracketed(title: str) -> str:
    """A title printed whole inside 《》 ("《人工智能安全治理框架》") without them: the
    brackets mark a title in running text, they are not part of it."""
    match = re.fullmatch(r"\s*《([^《》]+)》\s*", title)
    return match.group(1) if match else title


def _subtitle(block: TitleBlock, page: list[TextLine], head: str) -> str:
    """The smaller run of lines right under the title, when a running head or foot prints
    the title and it together ("Responsible Practices for Synthetic Media: A Framework for
    Collective Action" under a cover's "PAI's Responsible Practices for Synthetic Media")."""
    if block.end >= len(page) or page[block.end].size >= block.size:
        return ""
    run = [page[block.end]]
    for line in page[block.end + 1 :]:
        if abs(line.size - run[0].size) >= 0.6 or not 0 < line.top - run[-1].top <= 2 * line.size:
            break
        run.append(line)
    subtitle = " ".join(line.text for line in run)
    sub, title = _plain(subtitle), _plain(block.text)
    if len(sub) < 4 or is_furniture(subtitle):
        return ""
    for printed in head.splitlines():
        plain = _plain(printed)
        stem = plain[: -len(sub)]
        if plain.endswith(sub) and stem and title.endswith(stem) and len(stem) >= 0.6 * len(title):
            return subtitle
    return ""


def _recase(title: str, texts: list[str]) -> str:
    """A title set in capitals, as the document prints it elsewhere in mixed case, if it does
    (a running head, the PDF's info); else as printed."""
    letters = [ch for ch in title if ch.isalpha() and ch.isascii()]
    if len(letters) < 8 or sum(ch.isupper() for ch in letters) < 0.9 * len(letters):
        return title
    target = _plain(title)
    for text in texts:
        for line in text.splitlines():
            if _plain(line) == target and not line.isupper():
                return " ".join(line.split())
    return title


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
        return bool(unfinished) and not re.search(r"[\d:：]", nxt) and len(title) + len(nxt) <= 60
    return bool(_CONNECTOR_END_RE.search(title) or nxt[:1].islower())


def _english_title(page: list[TextLine], anchor: TitleBlock | None, title: str) -> str:
    """A Chinese article's English title: the largest run of Latin lines below the Chinese
    title, set larger than the body (bilingual journal front pages)."""
    if not page or not anchor or not _HAN_RE.search(title):
        return ""
    body = max(
        set(line.size for line in page), key=lambda s: sum(len(x.text) for x in page if x.size == s)
    )
    best: tuple[float, str] = (0.0, "")
    run: list[TextLine] = []
    for line in [*page[anchor.end :], None]:
        if (
            line is not None
            and run
            and abs(line.size - run[0].size) < 0.6
            and line.top - run[-1].top <= 2 * line.size
        ):
            run.append(line)
            continue
        if run:
            text = " ".join(x.text for x in run)
            good = len(run) <= 3 and run[0].size > body and not _HAN_RE.search(text)
            good = (
                good and is_sane_title(text) and not is_furniture(text) and not names_in_line(text)
            )
            if good and run[0].size > best[0] and not ABSTRACT_RE.match(text):
                best = (run[0].size, text)
        run = [line] if line is not None else []
    return best[1]


# ---------------------------------------------------------------- abstract


def _abstract(text: str) -> str:
    """The text after an "Abstract"/"摘要" heading up to the next heading, without the
    footnotes, e-mails and notes that extraction puts among its lines."""
    match = ABSTRACT_RE.search(text)
    if not match:
        return ""
    body = ""
    for line in text[match.end() :].splitlines():
        line = line.strip()
        if is_heading(line) or CONTENTS_RE.match(line):
            break
        if _NOT_ABSTRACT_RE.search(line) or line.isdigit():
            continue
        body = join_text(body, line) if line else body
        if len(body) >= _MAX_ABSTRACT_CHARS:
            return _cut(body, _MAX_ABSTRACT_CHARS)
    return body


def _cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, at the last sentence end if there is one."""
    text = text[:limit]
    ends = [m.end() for m in re.finditer(r"[。！？!?]|\.(?=\s)", text)]
    return text[: ends[-1]] if ends and ends[-1] > limit // 2 else text
