"""Language detection and the few script helpers (CJK or not) that ingest shares."""

from __future__ import annotations

import re
import threading

from langdetect.detector import Detector
from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
from langdetect.lang_detect_exception import LangDetectException
from langdetect.language import Language

UNDETERMINED = "und"

# Han ideographs (URO, Ext. A, compatibility, Ext. B+), kana and hangul: scripts written
# without spaces between words, where SentencePiece gives about one token per character.
HAN_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"
_KANA = "\u3040-\u30ff\u31f0-\u31ff"
_HANGUL = "\uac00-\ud7af"
CJK_CHARS = HAN_CHARS + _KANA + _HANGUL
# Scripts written without spaces between words (Korean uses spaces, so hangul is not here).
UNSPACED_CHARS = HAN_CHARS + _KANA
# Latin letters: ASCII, Latin-1 (without × and ÷), Extended-A and -B, Extended Additional
# (Vietnamese ệ, ữ).
LATIN_CHARS = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"
_HAN_RE = re.compile(f"[{HAN_CHARS}]")
_KANA_RE = re.compile(f"[{_KANA}]")
# CJK punctuation as a regex class body: 。、「」《》… and fullwidth forms (NFKC turns most
# fullwidth punctuation such as ，！？：； into ASCII, but text may arrive un-normalised).
CJK_PUNCT = "\u3001-\u303f\uff00-\uffef\u2014\u2026\u201c\u201d\u2018\u2019"

_PUNCT = rf"\s.,;:!?()\[\]{{}}\"'{CJK_PUNCT}"
_ENDS_UNSPACED_RE = re.compile(rf"[{UNSPACED_CHARS}][{_PUNCT}]*$")
_STARTS_UNSPACED_RE = re.compile(rf"[{_PUNCT}]*[{UNSPACED_CHARS}]")
_STARTS_CLOSING_RE = re.compile(r"[,.;:!?)\]}，。、；：！？）】》」』”’．]")

_MAX_DETECT_CHARS = 2000
# Languages written in the Latin alphabet, among langdetect's profiles: a Latin-script text
# from a document in one of these is in the document's language (see detect_lang's prior).
LATIN_SCRIPT_LANGS = frozenset(
    "af ca cs cy da de en es et eu fi fr ga gl hr hu id is it lt lv ms mt nl no pl pt ro sk sl "
    "so sq sv sw tl tr vi".split()
)
_LATIN_RE = re.compile(f"[{LATIN_CHARS}]")
_EN_PRIOR = 0.1
# This module's own langdetect factory, loaded on first use (its 55 profiles take ~1 s) and
# seeded, as langdetect is random unless seeded (see its PyPI page). The lock keeps that
# first load safe when threads detect at once.
_LOCK = threading.Lock()
_FACTORY: list[DetectorFactory] = []


def _detector() -> Detector:
    """A fresh detector from the seeded factory (langdetect's detectors are single-use)."""
    with _LOCK:
        if not _FACTORY:
            factory = DetectorFactory()
            factory.load_profile(PROFILES_DIRECTORY)
            factory.set_seed(0)
            _FACTORY.append(factory)
        return _FACTORY[0].create()


def detect_lang(text: str, *, prior: str | None = None) -> str:
    """The ISO 639-1 code of ``text``'s language ("en", "zh", ...), or "und" if unknown.

    Where the script decides, langdetect (slow, and unreliable on short mixed text) is not
    asked: text whose letters are mostly Han ideographs is "zh", and text mostly in Latin
    letters is ``prior`` when that is a Latin-script language. Only the first 2,000
    characters are passed to langdetect.

    Args:
        prior: the language of the document the text comes from (a chunk's paper), if known.
            A Latin-script chunk of a Chinese paper (its English abstract) is still detected.
    """
    sample = text[: _MAX_DETECT_CHARS * 2]
    letters = sum(1 for ch in sample if ch.isalpha())
    if letters == 0:
        return UNDETERMINED
    han = len(_HAN_RE.findall(sample))
    kana = len(_KANA_RE.findall(sample))
    # A Han character carries about as much as a 3-4 letter Latin word piece, so Chinese
    # prose full of English terms ("使用 GPT-4 进行 red teaming") still counts as Chinese.
    if han * 3 >= letters - han and kana * 10 < han:
        return "zh"
    if prior in LATIN_SCRIPT_LANGS and len(_LATIN_RE.findall(sample)) * 10 >= letters * 9:
        return prior
    try:
        detector = _detector()
        detector.append(sample[:_MAX_DETECT_CHARS])
        guesses: list[Language] = detector.get_probabilities()
    except LangDetectException:
        return UNDETERMINED
    # The papers are English or Chinese: when langdetect hesitates on a short text (a title
    # like "Offset Unlearning for Large Language Models" -> da 0.71, en 0.29), trust English.
    if any(g.lang == "en" and g.prob >= _EN_PRIOR for g in guesses):
        return "en"
    return normalize_lang(guesses[0].lang) if guesses else UNDETERMINED


def guess_langs(sample: str, *, trials: int) -> list[Language]:
    """langdetect's guesses for ``sample``, best first, from ``trials`` random trials."""
    detector = _detector()
    detector.n_trial = trials
    detector.append(sample)
    guesses: list[Language] = detector.get_probabilities()
    return guesses


# The ISO 639-1 codes: what a record's ``lang`` may say (after ``normalize_lang``), with "und".
KNOWN_LANGS = frozenset(
    """aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu
    cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho
    hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv
    kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr
    nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq
    sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh
    yi yo za zh zu und""".split()
)


def normalize_lang(code: str) -> str:
    """Reduce a language tag to its primary ISO 639-1 subtag: "zh-CN", "zh_tw" -> "zh"."""
    primary = re.split(r"[-_]", code.strip().lower(), maxsplit=1)[0]
    return primary or UNDETERMINED


def join_text(left: str, right: str, *, gap: bool = True) -> str:
    """Join two pieces of text: a space for Latin text, nothing between Chinese characters.

    Args:
        gap: whether the pieces were separated by whitespace (a space or a line break) in
            the source; pieces that touched are joined without a space.
    """
    if not left or not right:
        return left + right
    if not gap or (_ENDS_UNSPACED_RE.search(left) and _STARTS_UNSPACED_RE.match(right)):
        return left + right
    # A line that starts with a closing mark ("，" under "近年来", "," under "technology")
    # is the end of the line above, which lost it to the extractor's line breaks.
    if _STARTS_CLOSING_RE.match(right):
        return left + right
    return f"{left} {right}"
