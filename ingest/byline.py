"""Who wrote a document: the people of its by-line, or the organisation that issued it.

Rules, tried in this order (each named for the layout it reads):

1. **Labelled by-line**: a line labelled as authors anywhere on page 1 ("作者:", "姓 名:",
   "Authors:", "By", a memo's "FROM:"), with the lines it wraps onto.
2. **By-line under the title**: the rows between the title and the abstract. A row gives names
   when they outnumber the other parts; names are split on commas, 、, "and", wide gaps and on
   the affiliation marks after each name ("Zou1", "Han∗♡", "沙泓州1),2),3)"). Author grids
   work because rows in a smaller size than the first names' row are affiliations, and a part
   with a mark *before* it ("1Australian National University", "†Redwood Research") is one
   too. A by-line keeps the script of its first name: the pinyin by-line of a Chinese
   article's English block repeats the Chinese one. A Chinese name printed with a gap wide
   enough to split it ("张" "超1,2") is joined again.
3. **Authors heading**: a line "Authors" / "作者" on pages 1-2 followed by name lines
   ("Scott A. Emett, PhD").
4. **The PDF's Author field**, when it names people and the page prints no by-line (a printed
   presenter beats a template's author).
5. **Organisations**, when no person is named: ``ingest.organisations``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.layout import LABEL_RE, TextLine, TitleBlock
from ingest.names import (
    clean_name,
    has_leading_mark,
    is_organisation,
    is_person_name,
    is_role,
    split_authors,
)
from ingest.organisations import organisations
from ingest.rows import CELL, SAME_SIZE, ends_byline, row_after, row_size, row_text, rows_of, wraps
from kb.types import AuthorKind

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HAN_CHAR_RE = re.compile(f"[{_HAN}]")
_ROWS_BEFORE_NAMES = 12  # rows under the title searched for a first name
_ROWS_AFTER_NAMES = 8  # rows after the last name before the by-line is over
_MAX_ROWS = 80
_AUTHOR_LABEL_RE = re.compile(
    r"^\s*(?:作\s*者|著\s*者|姓\s*名|执\s*笔\s*人?|主\s*讲\s*人|报\s*告\s*人|演\s*讲\s*人|汇\s*报\s*人"
    r"|authors?|written by|presented by|presenter|speaker|from)\s*[:：]\s*|^\s*by\s+",
    re.IGNORECASE,
)
_AUTHORS_HEADING_RE = re.compile(r"^\s*(?:authors?|about the authors?|作\s*者)\s*$", re.IGNORECASE)
# Splits a row into name parts: commas, 、, "and", "&", " | ", dashes and wide gaps.
_PART_SPLIT_RE = re.compile(
    r"\s*(?:[,;，；、]|\s(?:and|&|[|–—-])\s|\s{3,})\s*|(?<=\s)and\s+", re.IGNORECASE
)
_PIECE_SPLIT_RE = re.compile(r"\s*(?:[,;，；、]|\s[|｜–—-]\s|\s{3,})\s*")
_AND_RE = re.compile(r"\s(?:and|&)\s|(?<=\s)and\s+|^and\s+", re.IGNORECASE)
# The marks after a name and before the next one: "Mazeika 1 Long", "Han∗♡♠ Kavel".
_MARKS = r"(?:\d{1,2}[)）]?|[*†‡§¶#∗⋆✉♡♢♠♣◦□△⋄•^])"
_MARK_SPLIT_RE = re.compile(
    rf"(?<=[^\W\d_])\s*{_MARKS}(?:[\s,]*{_MARKS})*\s+(?=[A-Z{_HAN}])|(?<=[{_HAN}])\s*{_MARKS}"
    rf"(?:[\s,]*{_MARKS})*\s*(?=[{_HAN}])"
)
_WORD_RE = re.compile(r"[A-Z][^\W\d_]+")
_LINK_RE = re.compile(r"@|https?:|www\.|\.(?:com|org|edu|cn|net)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Authors:
    """A document's authors as printed, and whether they are people or organisations."""

    names: list[str]
    kind: AuthorKind = "person"


def find_authors(
    page: list[TextLine],
    block: TitleBlock | None,
    *,
    info_author: str = "",
    pages: list[str] | None = None,
) -> Authors:
    """The authors of a document, from its first page's layout, its text and its info.

    Args:
        page: the first page's lines (``ingest.pdf.read_pdf(layout=True)``).
        block: the title the layout gives, if any; the by-line is read under it.
        info_author: the PDF's Author field.
        pages: the text of the pages (page 1 first; the last one is the back cover).
    """
    pages = pages or []
    rows = list(rows_of(page))
    head = "\n".join(pages[:2])
    start = row_after(rows, block.end, page) if block else 0
    names = (
        _labelled(rows)
        or (_byline(rows, start, block.size if block else None) if block else [])
        or _authors_heading(head)
    )
    if names:
        return Authors(names)
    from_info = [n for n in map(clean_name, split_authors(info_author)) if is_person_name(n)]
    if from_info:
        return Authors(from_info)
    orgs = organisations(rows, block, start, pages, info_author)
    return Authors(orgs, "organisation") if orgs else Authors([])


# ---------------------------------------------------------------- people


def names_in_line(text: str) -> list[str]:
    """The people's names in one by-line, without emails, affiliations and footnote marks.

    A line counts only if its names are more than half of what is left once emails and
    links are dropped: "Detection, Incident Response, Compliance" is no by-line, nor a row
    of affiliations that happens to hold a place name. A line labelled otherwise
    ("中文校对:", "Version:", "Supervisor:") gives none.
    """
    label = _AUTHOR_LABEL_RE.match(text)
    if label:
        text = text[label.end() :]
    elif LABEL_RE.match(text.replace(CELL, "")):
        return []
    names: list[str] = []
    others = 0
    pieces = _PIECE_SPLIT_RE.split(text)
    # An organisation's name may hold "and" ("... Computer Science and Mathematical Logic").
    pieces = [
        p for piece in pieces for p in ([piece] if is_organisation(piece) else _AND_RE.split(piece))
    ]
    for chunk in pieces:
        for part in _MARK_SPLIT_RE.split(chunk or ""):
            if not part or _LINK_RE.search(part):
                continue
            if has_leading_mark(part):  # "1Australian National University"
                others += 1
                continue
            name = clean_name(part)
            # Digits left once the marks are gone make a date, a version or an address;
            # an organisation or a role ("Sr. Director") says nothing against the line.
            if sum(ch.isalpha() for ch in name) < 2 or re.search(r"\d", name):
                continue
            if is_organisation(name) or is_role(name):
                continue
            han = re.fullmatch(f"[{_HAN}]{{2,4}}( [{_HAN}]{{2,4}})+", name)
            for one in name.split(" ") if han else [name]:
                if is_person_name(one):
                    names.append(one)
                else:
                    others += 1
    return names if len(names) > others else []


def _script(name: str) -> str:
    return "han" if _HAN_CHAR_RE.search(name) else "latin"


def _labelled(rows: list[list[TextLine]]) -> list[str]:
    """Names from rows labelled as authors ("作者:", "FROM:"), with the rows they wrap onto."""
    names: list[str] = []
    for i, row in enumerate(rows):
        text = row_text(row)
        if ends_byline(row) and names:
            break
        if not _AUTHOR_LABEL_RE.match(text) or re.match(r"^\s*by\s", text) and i == 0:
            continue
        found = names_in_line(text)
        for nxt in rows[i + 1 : i + 4]:
            if not found or not wraps(rows[i], nxt) or LABEL_RE.match(row_text(nxt)):
                break
            more = names_in_line(row_text(nxt))
            if not more:
                break
            found += more
        names += [n for n in found if n not in names]
    return names


def _byline(rows: list[list[TextLine]], start: int, title_size: float | None) -> list[str]:
    """Names from the rows under the title, up to the abstract (see the module's rule 2)."""
    names: list[str] = []
    script = name_size = None
    last = start
    texts = [""] * start + _logical(rows[start:])  # nothing above the title wraps into it
    for i in range(start, min(len(rows), start + _MAX_ROWS)):
        row = rows[i]
        limit = _ROWS_AFTER_NAMES if names else _ROWS_BEFORE_NAMES
        if ends_byline(row) or i - last > limit:
            break
        size = row_size(row)
        if title_size is not None and size > title_size + SAME_SIZE:
            break
        if name_size is not None and size < name_size - SAME_SIZE:
            continue  # an affiliation row of an author grid
        if not texts[i]:
            continue  # wrapped onto an earlier row
        found = [n for n in names_in_line(texts[i]) if script in (None, _script(n))]
        if not found:
            continue
        script, name_size, last = script or _script(found[0]), name_size or size, i
        names += [n for n in found if n not in names]
    return names


def _logical(rows: list[list[TextLine]]) -> list[str]:
    """Each row's text, with the rows it wraps onto appended (those come back empty).

    One-cell rows in one size, a line apart, are one line of text: a by-line's wrapped
    names (joined with ", "), a name broken over the rows ("..., Lucy Vasserman, Ben" /
    "Hutchinson, Elena Spitzer" -> "Ben Hutchinson"), or the rest of a labelled line
    ("Workstream 2: Preparing Defenders for a Changing" / "Cybersecurity Landscape").
    """
    texts = [row_text(row) for row in rows]
    out = list(texts)
    head = 0
    for i in range(1, len(rows)):
        single = len(rows[i]) == len(rows[i - 1]) == 1 and wraps(rows[i - 1], rows[i])
        if not single or LABEL_RE.match(texts[i]) or ends_byline(rows[i]):
            head = i
            continue
        tail = _PART_SPLIT_RE.split(out[head])[-1]
        start = _PART_SPLIT_RE.split(texts[i])[0]
        broken = _WORD_RE.fullmatch(tail) and _WORD_RE.fullmatch(start)
        out[head] = f"{out[head]}{' ' if broken else ', '}{texts[i]}"
        out[i] = ""
    return out


def _authors_heading(text: str) -> list[str]:
    """Name lines after an "Authors" / "作者" heading on pages 1-2 ("Scott A. Emett, PhD")."""
    lines = [line.strip() for line in text.splitlines()]
    for i, line in enumerate(lines):
        if not _AUTHORS_HEADING_RE.match(line):
            continue
        names = [clean_name(x) for x in lines[i + 1 : i + 40] if is_person_name(clean_name(x))]
        if names:
            return list(dict.fromkeys(names))
    return []
