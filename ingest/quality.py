"""Judge how usable one page of extracted text is, in English and Chinese alike.

PDF text goes wrong in a few recognisable ways (see ../shared/data/pdfs/NOTES.md): fonts
without a usable /ToUnicode map give letters from unrelated scripts ("܂ࣇଽ҆࿐༝") or
``(cid:N)`` tokens, some producers make pypdf drop the spaces between English words
("ThispaperaddressesthetopicofincidentresponseinthecontextofAIsystems."), Type3 fonts put a
space between Chinese characters ("大 语 言 模 型"), and broken encodings leave U+FFFD,
private-use or control characters and Latin-1 garbage ("Ã©", "ÖÐÎÄ"). ``text_quality``
measures each of these and folds them into one score between 0 and 1.

The expected scripts are the ones an English/Chinese library meets: Latin, Greek (formulas),
Cyrillic (names), Han, kana and hangul. Nothing here depends on English words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from langdetect.lang_detect_exception import LangDetectException

from ingest.lang import (
    CJK_CHARS,
    LATIN_CHARS,
    UNDETERMINED,
    UNSPACED_CHARS,
    guess_langs,
    normalize_lang,
)
from ingest.normalize import CID_RE

# At or above GOOD_QUALITY a page's text is kept as is; below it another extractor is tried.
GOOD_QUALITY = 0.8
# Below USABLE_QUALITY a page has no usable text (only OCR could read it).
USABLE_QUALITY = 0.3

_CJK_RE = re.compile(f"[{CJK_CHARS}]")
_LATIN_RE = re.compile(f"[{LATIN_CHARS}]")
# Letters of the scripts expected here: Latin, Greek, basic Cyrillic, CJK, bopomofo.
_GREEK_CYRILLIC_BOPOMOFO = "\u0370-\u03ff\u1f00-\u1fff\u0400-\u045f\u3100-\u312f"
_EXPECTED_RE = re.compile(f"[{LATIN_CHARS}{_GREEK_CYRILLIC_BOPOMOFO}{CJK_CHARS}]")
# A run of Latin letters longer than any real word: the spaces between words were lost.
# English words over 20 letters are rare ("internationalization" has 20).
_LONG_RUN_RE = re.compile(f"[{LATIN_CHARS}]{{21,}}")
_RUN_RE = re.compile(f"[{LATIN_CHARS}]+")
_SPACED_CJK_RE = re.compile(f"(?<=[{UNSPACED_CHARS}]) (?=[{UNSPACED_CHARS}])")
_UNSPACED_RE = re.compile(f"[{UNSPACED_CHARS}]")
_PRIVATE_RE = re.compile("[\ue000-\uf8ff\U000f0000-\U0010ffff]")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# UTF-8 read as Latin-1/cp1252 ("Ã©", "â€™") and GBK read as Latin-1 ("ÖÐÎÄ").
_LATIN1_GARBAGE_RE = re.compile(r"[ÃÂ][\u0080-\u00bf]|â€|[\u00c0-\u00ff]{3,}")
_SPACE_RE = re.compile(r"\s")

# langdetect is the slowest part of the check, and unreliable on short text.
_LANG_SAMPLE_CHARS = 400
_LANG_TRIALS = 3
# langdetect hesitates on real text too (tables, names, code), so its doubt costs little.
_LANG_WEIGHT = 0.3
_LANG_MIN_LETTERS = 100
_VOWELS = tuple("aeiouyàáâäãåèéêëìíîïòóôöõùúûüýÿæœø")
_WORD_SHAPE_RE = re.compile(r"[^\W\d_]?[^\W\d_A-Z]+")  # lower-case, maybe capitalised
_NATURAL_VOWELS = (0.28, 0.52)  # vowel share of Latin-script words that skips langdetect


@dataclass(frozen=True)
class TextQuality:
    """The measured faults of one page's text and the overall ``score`` (0 bad .. 1 clean).

    Shares of characters are over ``chars`` (non-space characters); shares of letters are
    over ``letters``.
    """

    chars: int
    letters: int
    cjk_share: float  # CJK characters / letters
    latin_share: float  # Latin letters / letters
    replacement_share: float  # U+FFFD / chars
    private_use_share: float  # private-use code points / chars
    control_share: float  # control characters other than line breaks and tabs / chars
    cid_share: float  # characters inside "(cid:N)" tokens / chars
    mojibake_share: float  # letters of unexpected scripts and Latin-1 garbage / letters
    missing_space_share: float  # Latin letters in runs longer than words / Latin letters
    spaced_cjk_share: float  # gaps between two Chinese characters / unspaced characters
    lang: str  # langdetect's guess for the Latin words ("und": too few to ask)
    lang_confidence: float  # its probability (1.0 when not asked)
    score: float

    @property
    def good(self) -> bool:
        """Whether the text is clean enough to keep without trying another extractor."""
        return self.score >= GOOD_QUALITY

    @property
    def usable(self) -> bool:
        """Whether the text is worth indexing at all."""
        return self.score >= USABLE_QUALITY


def text_quality(text: str) -> TextQuality:
    """Measure the text of one page: its scripts, its faults and an overall score 0..1.

    The score multiplies one factor per fault: garbage characters (replacement, private-use,
    control, ``(cid:N)``, mojibake) cost twice their share, lost word spaces 1.5 times the
    share of Latin letters in over-long runs (weighted by how Latin the text is), spaced-out
    Chinese its share (weighted by how Chinese the text is), and a hesitant langdetect on the
    Latin words up to 0.3 (weighted by how Latin the text is). Text without letters scores 0.
    """
    chars = len(text) - len(_SPACE_RE.findall(text))
    letters = _letters(text)
    tokens = CID_RE.findall(text)
    cid = sum(map(len, tokens))
    letters -= 3 * len(tokens)  # the letters of "(cid:12)" are not text
    if letters == 0 or chars == 0:
        return _empty(chars, cid)
    cjk, latin = len(_CJK_RE.findall(text)), len(_LATIN_RE.findall(text))
    unspaced = len(_UNSPACED_RE.findall(text))
    shares = {
        "replacement_share": text.count("\ufffd") / chars,
        "private_use_share": len(_PRIVATE_RE.findall(text)) / chars,
        "control_share": len(_CONTROL_RE.findall(text)) / chars,
        "cid_share": cid / chars,
        "mojibake_share": min(1.0, _mojibake(text, letters) / letters),
        "missing_space_share": _long_run_letters(text) / latin if latin else 0.0,
        "spaced_cjk_share": len(_SPACED_CJK_RE.findall(text)) / unspaced if unspaced else 0.0,
    }
    lang, confidence = _language(text)
    score = _score(shares, cjk / letters, latin / letters, confidence)
    return TextQuality(
        chars=chars,
        letters=letters,
        cjk_share=cjk / letters,
        latin_share=latin / letters,
        lang=lang,
        lang_confidence=confidence,
        score=score,
        **shares,
    )


def drop_garbage_lines(text: str) -> str:
    """Remove the lines whose letters are mostly mojibake (unexpected scripts, Latin-1 garbage).

    A page can be good text with one broken line, such as a header in a font without a
    usable /ToUnicode map above an English reference list.
    """
    if not _mojibake(text, _letters(text)):
        return text
    kept = []
    for line in text.split("\n"):
        letters = _letters(line)
        if not letters or 2 * _mojibake(line, letters) < letters:
            kept.append(line)
    return "\n".join(kept).strip()


def _letters(text: str) -> int:
    # str.isalpha is [^\W\d_] but for rare numerals such as "①" (counted here before)
    return sum(map(str.isalpha, text))


def _score(shares: dict[str, float], cjk: float, latin: float, confidence: float) -> float:
    garbage = sum(
        shares[k] for k in ("replacement_share", "private_use_share", "control_share", "cid_share")
    )
    factors = (
        1 - 2 * (garbage + shares["mojibake_share"]),
        1 - 1.5 * shares["missing_space_share"] * latin,
        1 - shares["spaced_cjk_share"] * cjk,
        1 - _LANG_WEIGHT * (1 - confidence) * latin,
    )
    score = 1.0
    for factor in factors:
        score *= min(1.0, max(0.0, factor))
    return round(score, 4)


def _mojibake(text: str, letters: int) -> int:
    """Letters outside the expected scripts, plus the letters of Latin-1 garbage."""
    unexpected = max(0, letters - len(_EXPECTED_RE.findall(text)))
    return unexpected + sum(len(m) for m in _LATIN1_GARBAGE_RE.findall(text))


def _long_run_letters(text: str) -> int:
    # All-capital runs are identifiers and constants ("RUNTIMEMODELINTEGRITY"), not prose.
    return sum(len(m) for m in _LONG_RUN_RE.findall(text) if not m.isupper())


def _language(text: str) -> tuple[str, float]:
    """langdetect's best guess for the Latin-script words of ``text``, and its probability.

    Only Latin words are asked about: langdetect cannot tell Chinese from Japanese or Korean
    on Han text (see ingest.lang), and a page that mixes Chinese and English would look
    hesitant. ("und", 1.0) when the Latin words are too short to judge.
    """
    # Word-shaped runs only ("the", "Model"): acronyms and names such as "LLMs", "GPT" or
    # "ChatGPT" in a Chinese page say nothing about the letters' language.
    words = [w for w in _RUN_RE.findall(text) if _WORD_SHAPE_RE.fullmatch(w)]
    if sum(map(len, words)) < _LANG_MIN_LETTERS:
        return UNDETERMINED, 1.0
    sample = " ".join(words)[:_LANG_SAMPLE_CHARS]
    if _NATURAL_VOWELS[0] <= _vowel_share(sample) <= _NATURAL_VOWELS[1]:
        # Words of any Latin-script language have 30-50 % vowels; fonts that map letters to
        # the wrong glyphs ("Wkh txlfn eurzq") rarely do. Asking langdetect costs about a
        # millisecond a page, as much as pypdf spends on a simple page, so only ask when the
        # letters look wrong (measured: bench/ingest_throughput.py, docs/INGEST.md).
        return UNDETERMINED, 1.0
    try:
        # Three trials instead of langdetect's seven: this runs on every page, and at 3 ms a
        # page (langdetect 1.0.9) the seven would cost a tenth of pypdf's own time.
        guesses = guess_langs(sample, trials=_LANG_TRIALS)
    except LangDetectException:
        return UNDETERMINED, 0.0
    if not guesses:
        return UNDETERMINED, 0.0
    return normalize_lang(guesses[0].lang), round(guesses[0].prob, 4)


def _vowel_share(sample: str) -> float:
    low = sample.lower()
    letters = sum(map(str.isalpha, low))
    return sum(map(low.count, _VOWELS)) / letters if letters else 0.0


def _empty(chars: int, cid: int) -> TextQuality:
    return TextQuality(
        chars=chars,
        letters=0,
        cjk_share=0.0,
        latin_share=0.0,
        replacement_share=0.0,
        private_use_share=0.0,
        control_share=0.0,
        cid_share=cid / chars if chars else 0.0,
        mojibake_share=0.0,
        missing_space_share=0.0,
        spaced_cjk_share=0.0,
        lang=UNDETERMINED,
        lang_confidence=0.0,
        score=0.0,
    )
