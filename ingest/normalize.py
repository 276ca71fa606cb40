"""Normalise extracted text: per page (``clean_text``) and per document (running lines).

Both work the same on English and Chinese text: Chinese has no spaces between words, so a
space that an extractor puts between two Chinese characters is removed, while the spaces
between Latin words are kept.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter

from ingest.lang import CJK_PUNCT, UNSPACED_CHARS

_CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\u00ad\u200b\u2060\ufeff]")
_BREAK_RE = re.compile(r"\r\n?|[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_SPACES_RE = re.compile(r"[ \t]*\n[ \t]*|[ ]{2,}")
_BLANK_LINES_RE = re.compile(r"\n{3,}")
# Dot leaders of tables of contents ("Introduction . . . . . . . 3", "引言……………1");
# pdfminer puts each dot of a leader on a line of its own. Seven marks or more: "……" and
# "......" are punctuation.
_LEADER_RE = re.compile(r"(?:[ \t\n]*[.·…]){7,}[ \t]*")
# Characters that are how a font or an extractor encodes text, not how it is printed: the
# Kangxi radicals and CJK radical forms some Chinese fonts map to (U+2F24 "⼤" for "大"),
# ligatures ("ﬁ"), full-width Latin letters and digits (CNKI files extract "ＤＯＩ"),
# presentation forms and odd spaces. They become what they stand for (NFKC); everything
# else is kept as printed: full-width punctuation "，：；（）", "º", "①", "²", "…".
_ENCODING_FORMS_RE = re.compile(
    "[\u2e80-\u2eff\u2f00-\u2fdf\ufb00-\ufb06\uff10-\uff19\uff21-\uff3a\uff41-\uff5a"
    "\ufe10-\ufe1f\ufe30-\ufe6f\u00a0\u2000-\u200a\u202f\u205f\u3000]+"
)
_LATIN_LOWER = "a-z\u00df-\u00f6\u00f8-\u00ff"
_HYPHEN_BREAK_RE = re.compile(f"(?<=[{_LATIN_LOWER}])-\n(?=[{_LATIN_LOWER}])")
# Spaces that extractors put inside Chinese text: between two Chinese characters or CJK
# punctuation marks, and after a Chinese character + ASCII punctuation ("模型, 安全").
_U, _P = UNSPACED_CHARS, UNSPACED_CHARS + CJK_PUNCT
_ASCII_P = r",.;:!?)\]"
_HAN_GAP_RE = re.compile(
    f"(?<=[{_U}]) +(?=[{_P}{_ASCII_P}])"
    f"|(?<=[{_P}(\\[]) +(?=[{_U}])"
    f"|(?<=[{_U}][{_ASCII_P}]) +(?=[{_U}])"
)
# TeX fonts set an accent as its own glyph before the letter ("Tram`er", "Aur´elien",
# "Koneˇcn´y", "¨Ozg¨ur"); the cedilla comes after it ("Franc¸ois").
_ACCENTS = {
    "`": "\u0300", "´": "\u0301", "ˆ": "\u0302", "˜": "\u0303", "¯": "\u0304", "˘": "\u0306",
    "˙": "\u0307", "¨": "\u0308", "˚": "\u030a", "˝": "\u030b", "ˇ": "\u030c",
}  # fmt: skip
_ACCENT_RE = re.compile(
    "(?:(?<=[^\\W\\d_])|(?<=\\s)|^)([" + "".join(_ACCENTS) + "])([A-Za-zı])|([A-Za-z])¸",
    re.MULTILINE,
)
_LATIN_MARK_RE = re.compile(
    "(?<=[A-Za-z0-9])\\s*([\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff5e]+)\\s*(?=[A-Za-z0-9])"
)
_HAN_NEAR_RE = re.compile(f"[{UNSPACED_CHARS}]")
# pdfminer's placeholder for a glyph it could not map to a character
CID_RE = re.compile(r"\(cid:\d+\)")
_DIGITS_RE = re.compile(r"\d+")
_NO_KEY_RE = re.compile(r"\s+")

# A line is a running header or footer when it recurs in the top or bottom lines of at
# least this share of the pages (and of at least _MIN_RUNNING_PAGES pages).
RUNNING_LINE_SHARE = 0.5
_MIN_RUNNING_PAGES = 3
_ZONE_LINES = 2
_MAX_RUNNING_CHARS = 200


_CONTROLS_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # Unicode Cc but \t and \n


def strip_controls(text: str) -> str:
    """``text`` without control characters: tab and line feed stay, CR and CRLF become a line
    feed, the others (NUL, ESC of terminal escape sequences, C1 codes) are removed."""
    if text.isprintable():  # the common case, checked in C
        return text
    return _CONTROLS_RE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def clean_text(text: str) -> str:
    """Normalise the extracted text of one page; paragraph breaks (blank lines) are kept.

    Text as printed (``printed_form``: full-width punctuation kept; the Kangxi radicals some
    Chinese fonts map to, such as U+2F24 "⼤" -> "大", ligatures and full-width letters
    mapped; TeX's separate accents joined to their letters: "Tram`er" -> "Tramèr"), no
    control or invisible characters, single spaces, dot
    leaders shortened to one space, a lowercase word hyphenated at a line end rejoined
    ("de-" + "ployed" -> "deployed"), and no spaces between Chinese characters: Chinese has
    none, and some PDFs (Type3 fonts, e.g. ../shared/data/pdfs/zh_owasp_llm_top10_v1_1_zh.pdf)
    make pypdf emit one between every character.
    """
    text = _ACCENT_RE.sub(_accented, text)
    text = printed_form(text)
    text = _BREAK_RE.sub("\n", text)
    text = _CONTROL_RE.sub("", text)
    text = _LEADER_RE.sub(" ", text)
    text = _SPACES_RE.sub(lambda m: "\n" if "\n" in m.group() else " ", text)
    text = _BLANK_LINES_RE.sub("\n\n", text)
    text = _HYPHEN_BREAK_RE.sub("", text)  # "de-\nployed" -> "deployed"
    # Twice: "型 , 安" only shows its second gap once the first is gone.
    return _HAN_GAP_RE.sub("", _HAN_GAP_RE.sub("", text)).strip()


def printed_form(text: str) -> str:
    """``text`` as printed: composed (NFC), with encoding artefacts mapped (see
    ``_ENCODING_FORMS_RE``) and full-width punctuation kept where it is Chinese punctuation.
    Matching and the keyword index apply NFKC on top (``matching_form``).

    Full-width punctuation between Latin words with no Chinese near it ("technology ，
    which", "APT （ advanced") is the encoding of a font that maps all of its Latin text to
    full width (CNKI downloads): it becomes ASCII, spaced as English is.
    """
    text = unicodedata.normalize("NFC", text)
    text = _ENCODING_FORMS_RE.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)
    return _LATIN_MARK_RE.sub(lambda m: _latin_mark(m, text), text)


def _latin_mark(match: re.Match[str], text: str) -> str:
    around = text[max(0, match.start() - 12) : match.end() + 12]
    if _HAN_NEAR_RE.search(around):
        return match.group()  # Chinese prose with an English term: printed as it is
    mark = unicodedata.normalize("NFKC", match.group(1))
    before, after = text[match.start() - 1], text[match.end()]
    # Spaced as in English prose ("lives. However", "technology, which"), not inside
    # numbers and identifiers ("10．7544", "7544？issn", "SP．J．1016").
    if mark[-1] == ".":
        spaced = before.islower() and after.isupper()
    else:
        spaced = before.isalpha() and after.isalpha()
    if mark in "([{":
        return f" {mark}" if spaced else mark
    return f"{mark} " if spaced and mark[-1] in ",.;:!?)]}" else mark


def matching_form(text: str) -> str:
    """``text`` for comparing and pattern matching: NFKC ("，" -> ",", "①" -> "1")."""
    return unicodedata.normalize("NFKC", text)


def _accented(match: re.Match[str]) -> str:
    """A spacing accent and its letter as one accented letter, if Unicode has it."""
    if match.group(3):
        letter, mark = match.group(3), "\u0327"
    else:
        letter, mark = match.group(2).replace("ı", "i"), _ACCENTS[match.group(1)]
    joined = unicodedata.normalize("NFC", letter + mark)
    return joined if len(joined) == 1 else match.group()


def remove_cid_tokens(text: str) -> str:
    """Drop pdfminer's "(cid:N)" placeholders for glyphs it could not map to characters."""
    if "(cid:" not in text:
        return text
    return clean_text(CID_RE.sub(" ", text))


def drop_running_lines(pages: list[str]) -> list[str]:
    """Remove running headers and footers: lines that recur at the top or bottom of pages.

    Only the first and last two non-empty lines of a page are candidates (one on pages of
    fewer than six lines, none under three). Lines are compared
    without spaces, case-insensitively and with every number replaced, so "Page 3" and
    "Page 4", or "第3页" and "第4页", are the same line. A line must recur on at least half
    of the pages that have text, and on at least three.
    """
    lines = [page.split("\n") for page in pages]
    zones = [_zones(page_lines) for page_lines in lines]
    counts: Counter[tuple[str, str]] = Counter()
    for zone in zones:
        counts.update({(where, key) for where, key, _ in zone})
    filled = sum(1 for page in pages if page.strip())
    least = max(_MIN_RUNNING_PAGES, math.ceil(RUNNING_LINE_SHARE * filled))
    out = []
    for page, page_lines, zone in zip(pages, lines, zones, strict=True):
        drop = {index for where, key, index in zone if counts[where, key] >= least}
        if not drop:
            out.append(page)
            continue
        kept = "\n".join(line for i, line in enumerate(page_lines) if i not in drop)
        out.append(_BLANK_LINES_RE.sub("\n\n", kept).strip())
    return out


def _zones(lines: list[str]) -> list[tuple[str, str, int]]:
    """(top|bottom, comparison key, line index) of the first and last non-empty lines."""
    filled = [i for i, line in enumerate(lines) if line.strip()]
    # On a short page the zones would overlap and take in its body: a third of it at most.
    size = min(_ZONE_LINES, len(filled) // 3)
    if not size:
        return []
    found = []
    for where, indexes in (("top", filled[:size]), ("bottom", filled[-size:])):
        for index in indexes:
            key = _line_key(lines[index])
            if key:
                found.append((where, key, index))
    return found


def _line_key(line: str) -> str:
    """The form in which running lines are compared; "" for lines that cannot be one."""
    if len(line) > _MAX_RUNNING_CHARS:
        return ""
    return _DIGITS_RE.sub("#", _NO_KEY_RE.sub("", line)).casefold()
