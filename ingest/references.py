"""Find a paper's references section, cut it from the searchable text, and list its arXiv ids.

A reference list is a poor search target (every entry names other papers' titles), so the
chunks leave it out; the arXiv ids it cites are kept as data instead. The section starts at a
heading line - "References", "REFERENCES", "Bibliography", "参考文献", "引用文献", optionally
numbered ("7 References", "七、参考文献") - in the later part of the document, and runs to the
end or to an appendix heading ("Appendix A", "附录").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.metadata import normalize_arxiv_id

# "7", "7.", "VII.", "A.", "七、", "第七章"
_NUMBER = (
    r"(?:\d{1,2}(?:\.\d{1,2})*\.?|[IVX]{1,5}\.?|[A-Z]\."
    r"|第?[一二三四五六七八九十]{1,3}\s*[、.章节]?)"
)
_HEADING_RE = re.compile(
    rf"^[ \t]*(?:{_NUMBER}[ \t]*)?[\[【(]?[ \t]*"
    r"(?:References|REFERENCES|Reference|REFERENCE|Bibliography|BIBLIOGRAPHY|Works Cited"
    r"|Literature Cited|(?:主要)?参考文献|引用文献)"
    r"[ \t]*[\]】)]?[ \t]*[:：]?[ \t]*$",
    re.MULTILINE,
)
_APPENDIX_RE = re.compile(
    r"^[ \t]*(?:(?:Appendix|APPENDIX)(?:[ \t]+[A-Z0-9]\b|[ \t]*[:：.]|$)|Appendices|APPENDICES"
    r"|附[ \t]*录).{0,60}$"
    # ACL-style "A garak Probes": the first appendix, lettered, on a short line that is not
    # part of an entry (no period, comma or digits).
    r"|^A[ \t]+[^\W\d][^.,;\d\n]{2,58}$",
    re.MULTILINE,
)
# What reference entries are made of: years, links, identifiers, "[12]" numbering, "et al."
# and the GB/T 7714 type marks of Chinese references ("[J]", "[M]", "[R]").
_CITATION_RE = re.compile(
    r"(?<!\d)(?:19|20)\d\d(?!\d)|https?://|\bdoi\b|arxiv|^\s*\[\d{1,4}\]|\bet al\b"
    r"|\[[JMCDRSPNZ](?:/OL)?\]",
    re.IGNORECASE | re.MULTILINE,
)
# A references section has at least this many citation marks per 1,000 non-space characters
# at its start (3.5 to 11 on the shared papers; 0 under the "References:" labels of
# en_owasp_ai_exchange.pdf, whose sections go on after them).
MIN_CITATION_DENSITY = 3.0
_DENSITY_SAMPLE_CHARS = 2000
# The heading must come after this share of the text: earlier it is a table of contents.
MIN_START_SHARE = 0.2
_ARXIV_ID = r"(\d{4}\.\d{4,5}|[a-z][a-z\-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?(?![\d])"
_ARXIV_RE = re.compile(
    rf"(?:\barxiv(?:\.org/(?:abs|pdf)/|[ \t]*(?:preprint)?[ \t]*:?[ \t]*)|\babs/){_ARXIV_ID}",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class References:
    """A document split into body and references.

    ``pages`` are the page texts without the references section (pages wholly inside it
    are ""); ``start_page`` is the 1-based page of its heading, or None when none was found.
    """

    pages: list[str]
    start_page: int | None
    text: str
    arxiv_ids: list[str]


def split_references(pages: list[str]) -> References:
    """Cut the references section out of a document's pages and list the arXiv ids it cites.

    Args:
        pages: the normalised text of each page, page 1 first.
    """
    start = _find_heading(pages)
    if start is None:
        return References(pages=list(pages), start_page=None, text="", arxiv_ids=[])
    page, offset = start
    body = list(pages)
    parts = []
    for number in range(page, len(pages)):
        text = pages[number][offset:] if number == page else pages[number]
        end = _APPENDIX_RE.search(text, 1 if number == page else 0)
        if end:
            parts.append(text[: end.start()])
            body[number] = _join(
                pages[number][:offset] if number == page else "", text[end.start() :]
            )
            break
        parts.append(text)
        body[number] = pages[number][:offset].rstrip() if number == page else ""
    section = "\n".join(parts).strip()
    return References(pages=body, start_page=page + 1, text=section, arxiv_ids=arxiv_ids(section))


def arxiv_ids(text: str) -> list[str]:
    """The arXiv ids cited in ``text``, once each, in order, without version suffixes.

    Finds "arXiv:2306.05499v2", "arXiv preprint 2306.05499", "arxiv.org/abs/2306.05499",
    "CoRR abs/2306.05499" and old-style ids after such a prefix ("arXiv:hep-th/9901001").
    """
    found: dict[str, None] = {}
    for match in _ARXIV_RE.finditer(text):
        found.setdefault(normalize_arxiv_id(match.group(1)), None)
    return list(found)


def _find_heading(pages: list[str]) -> tuple[int, int] | None:
    """(page index, character offset) of the last references heading, if it is past the early
    text and followed by what reads like references."""
    total = sum(len(page) for page in pages)
    before = total
    for index in range(len(pages) - 1, -1, -1):
        before -= len(pages[index])
        matches = list(_HEADING_RE.finditer(pages[index]))
        if matches:
            offset = matches[-1].start()
            after = "\n".join([pages[index][offset:], *pages[index + 1 :]])
            if before + offset >= MIN_START_SHARE * total and _cites(after):
                return index, offset
            return None
    return None


def _cites(text: str) -> bool:
    """Whether ``text`` starts like a list of references (see MIN_CITATION_DENSITY)."""
    sample = text[:_DENSITY_SAMPLE_CHARS]
    chars = len(sample) - sum(1 for ch in sample if ch.isspace())
    return 1000 * len(_CITATION_RE.findall(sample)) >= MIN_CITATION_DENSITY * max(chars, 1)


def _join(head: str, tail: str) -> str:
    head, tail = head.rstrip(), tail.strip()
    return f"{head}\n\n{tail}" if head and tail else head or tail
