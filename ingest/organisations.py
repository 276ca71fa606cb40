"""Which organisation issued a document, when its title page names no person.

Tried in this order, each named for the layout it reads: the organisation rows under the
title (a block of short rows in one size, one of them an organisation: "复旦白泽智能
(Whitzard-AI) / 系统软件与安全实验室 / 复旦大学"); organisations above the title on a cover;
a labelled issuer ("编写单位:", "Published by"); an organisation as a running head or foot;
a back cover's imprint ("World Economic Forum / 91–93 route de la Capite ..."); the holder of
a copyright line ("© FS-ISAC 2024"); the PDF's Author field (or XMP dc:creator) where the
text names it ("FCA" -> "Financial Conduct Authority"). Names printed in capitals take the
case the document prints them in elsewhere ("PARTNERSHIP ON AI" -> "Partnership on AI").
"""

from __future__ import annotations

import re

from ingest.layout import TextLine, TitleBlock
from ingest.names import is_organisation, is_person_name
from ingest.rows import SAME_ROW, SAME_SIZE, ends_byline, row_size, row_text, wraps

_ISSUER_LABEL_RE = re.compile(
    r"^\s*(?:编\s*写\s*单\s*位|编\s*制\s*单\s*位|发\s*布\s*单\s*位|主\s*编\s*单\s*位|起\s*草\s*单\s*位"
    r"|出\s*品|published by|prepared by|issued by|authored by)\s*[:：]?\s*",
    re.IGNORECASE,
)
# A line that names a collaborator, a sponsor or a parent body, not the author.
_NOT_AUTHOR_RE = re.compile(
    r"^(?:in collaboration with|in partnership with|with the support of|supported by"
    r"|sponsored by|funded by|set up by|commissioned by|prepared for|presented to|submitted to"
    r"|指导单位|支持单位|联合|支持|指导)",
    re.IGNORECASE,
)
_LINK_RE = re.compile(r"@|https?:|www\.|\.(?:com|org|edu|cn|net)\b", re.IGNORECASE)
_DATE_RE = re.compile(r"\b(?:19|20)\d\d\b|\d{4}\s*年")
_COPYRIGHT_RE = re.compile(
    r"(?:©|\(c\)|copyright)\s*(?:©\s*)?(?:(?:19|20)\d\d(?:\s*[-–]\s*(?:19|20)?\d\d)?[\s,]*)?"
    r"(?:by\s+)?(?:the\s+)?(?P<holder>[^|.,;©\n]{2,80}?)"
    r"(?:\s*(?:19|20)\d\d)?\s*(?:[|.,;]|all rights|版权所有|$)",
    re.IGNORECASE,
)
_PUBLISHED_BY_RE = re.compile(r"\bpublished by (?:the )?(?P<holder>[A-Z][^.,;\n]{2,80})")
_NOT_HOLDER_RE = re.compile(
    r"publish|press|journal|学报|出版|licen[cs]e|creative commons|\bcc\b|author", re.IGNORECASE
)
_ACRONYM_RE = re.compile(r"^[A-Z][A-Z&\-]{1,11}$")
_SMALL_WORDS = {"of", "for", "and", "the", "on", "in", "to", "&", "at"}


def organisations(
    rows: list[list[TextLine]],
    block: TitleBlock | None,
    start: int,
    pages: list[str],
    info_author: str = "",
) -> list[str]:
    """The organisations that issued a document (see the module's rule 5), or []."""
    text = "\n".join(pages[:2])
    everywhere = "\n".join([text, pages[-1] if len(pages) > 2 else ""])
    found = (
        (_org_block(rows[start : start + 8]) if block else [])
        or _orgs_above(rows, block)
        or _issuer(rows, text)
        or _running_org(rows, text)
        or _imprint(pages[-1] if len(pages) > 2 else "")
        or _holder(text)
        or _info_org(info_author, everywhere)
    )
    return [_recase(name, everywhere) for name in found]


def _orgs_above(rows: list[list[TextLine]], block: TitleBlock | None) -> list[str]:
    """Organisations named above the title on a cover, one name possibly set over two rows
    ("HIGH-LEVEL EXPERT GROUP ON" / "ARTIFICIAL INTELLIGENCE")."""
    if block is None:
        return []
    texts: list[str] = []
    previous: list[TextLine] | None = None
    for row in rows:
        if row[0].top >= block.top - SAME_ROW:
            break
        text = row_text(row)
        if previous and wraps(previous, row) and len(row) == len(previous) == 1:
            texts[-1] = f"{texts[-1]} {text}"
        else:
            texts.append(text)
        previous = row
    return [t for t in texts if is_organisation(t) and not _NOT_AUTHOR_RE.match(t)][:3]


def _org_block(rows: list[list[TextLine]]) -> list[str]:
    """The organisations named in the rows under a title, up to body text or a heading.

    A row may hold several ("Federal Trade Commission | October 2012"). Once one is found,
    the other short rows in its size next to it name organisations too, keyword or not
    ("复旦白泽智能(Whitzard-AI)" above "系统软件与安全实验室" and "复旦大学"); links and
    dates between them are passed over.
    """
    items: list[tuple[float, str]] = []
    for row in rows:
        text = row_text(row)
        if (
            ends_byline(row)
            or len(text) > 80
            or text.endswith(("。", "."))
            and len(text.split()) > 6
        ):
            break
        for part in re.split(r"\s+[|｜]\s+|\s{3,}", text):
            if not (_LINK_RE.search(part) or _DATE_RE.search(part) or _NOT_AUTHOR_RE.match(part)):
                items.append((row_size(row), part.strip()))
    sizes = [size for size, text in items if is_organisation(text)]
    if not sizes:
        return []
    names = [
        text
        for size, text in items
        if abs(size - sizes[0]) < SAME_SIZE and len(text) <= 40 and not is_person_name(text)
    ]
    return list(dict.fromkeys(names))


def _issuer(rows: list[list[TextLine]], text: str) -> list[str]:
    """An organisation labelled as the issuer: "编写单位: ...", "Published by ..."."""
    lines = [row_text(row) for row in rows] + text.splitlines()
    for line in lines:
        label = _ISSUER_LABEL_RE.match(line)
        if label:
            parts = re.split(r"[、,，;；]|\s{3,}", line[label.end() :])
            orgs = [p.strip() for p in parts if is_organisation(p.strip())]
            if orgs:
                return orgs
    return []


def _running_org(rows: list[list[TextLine]], text: str) -> list[str]:
    """An organisation's name alone as a running head or foot of pages 1-2."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    zone = lines[:2] + lines[-2:] + [row_text(row) for row in rows[-2:]]
    for line in zone:
        if is_organisation(line) and not _NOT_AUTHOR_RE.match(line) and len(line.split()) <= 8:
            return [line]
    return []


def _imprint(last_page: str) -> list[str]:
    """The organisation whose name opens a short back cover (its imprint: name, address)."""
    lines = [line.strip() for line in last_page.splitlines() if line.strip()]
    if not lines or len(last_page) > 1500:
        return []
    first = lines[0]
    return [first] if is_organisation(first) and len(first.split()) <= 8 else []


def _holder(text: str) -> list[str]:
    """The organisation of a copyright or "published by" line: "© 2024 World Economic Forum"."""
    for regex in (_COPYRIGHT_RE, _PUBLISHED_BY_RE):
        for match in regex.finditer(text):
            holder = match.group("holder").strip(" :：-–")
            holder = re.sub(r"\s*(?:19|20)\d\d$|版权所有$", "", holder).strip()
            if not holder or _NOT_HOLDER_RE.search(holder) or is_person_name(holder):
                continue
            if is_organisation(holder) or _ACRONYM_RE.match(holder):
                return [holder]
    return []


def _info_org(info_author: str, text: str) -> list[str]:
    """The PDF's Author field as an organisation: spelt out where the text does ("FCA" ->
    "Financial Conduct Authority"), or as it is if the text names it that way."""
    name = info_author.strip()
    if not name or is_person_name(name):
        return []
    if _ACRONYM_RE.match(name):
        expanded = _expansion(name, text)
        return [expanded] if expanded else []
    # An organisation's full name counts where the text prints it, or its initials ("NIST"):
    # "Microsoft Corporation" in a Word export's info is the software's maker.
    initials = "".join(
        w[0] for w in re.findall(r"[A-Za-z][\w\-]*", name) if w.lower() not in _SMALL_WORDS
    )
    printed = name.casefold() in text.casefold() or re.search(rf"\b{initials}\b", text)
    return [name] if is_organisation(name) and len(initials) >= 2 and printed else []


def _expansion(acronym: str, text: str) -> str | None:
    """A run of capitalised words in ``text`` whose initials spell ``acronym``."""
    letters = acronym.replace("-", "").replace("&", "")
    words = re.findall(r"[A-Za-z][\w'’\-]*|,", text)
    for i in range(len(words)):
        picked: list[str] = []
        initials = ""
        for word in words[i:]:
            if word == "," or word.lower() in _SMALL_WORDS:
                if not picked:
                    break
                picked.append(word)
                continue
            if not word[0].isupper() or len(initials) == len(letters):
                break
            initials += word[0]
            picked.append(word)
            if not letters.startswith(initials):
                break
        if initials == letters and len(letters) >= 2:
            while picked and (picked[-1] == "," or picked[-1].lower() in _SMALL_WORDS):
                picked.pop()
            return re.sub(r"\s+,", ",", " ".join(picked))
    return None


def _recase(name: str, text: str) -> str:
    """``name`` as the document prints it in mixed case, if it is in capitals here."""
    if not name.isupper():
        return name
    pattern = r"\s+".join(re.escape(word) for word in name.split())
    for match in re.finditer(pattern, text, re.IGNORECASE):
        if not match.group().isupper():
            return " ".join(match.group().split())
    return name
