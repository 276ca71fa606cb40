"""The keyword (BM25) side of search: one bilingual analyzer and the FTS5 text it feeds.

Documents and queries go through the same :func:`analyze`, so whatever it does to a word it
does on both sides. Text is NFKC-normalised and lower-cased; Chinese (Han) runs are folded
from traditional to simplified (OpenCC ``t2s``) and segmented with jieba in search mode, which
also emits the shorter words inside long ones; Latin-script words are Snowball-stemmed;
digits and words of other scripts are kept as they are. There is no stop-word list: BM25's
IDF already gives little weight to words found everywhere.

SQLite stores the analyzed tokens joined by spaces (:func:`fts_document`) in an FTS5 table
whose ``unicode61`` tokenizer splits them again, the same way for documents and queries;
:func:`fts_query` turns free text into a MATCH expression of quoted tokens, which FTS5 cannot
read as syntax.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
import unicodedata
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

_OTHER, _WORD, _HAN = 0, 1, 2
# CJK ideographs: Extension A, the URO, compatibility ideographs, Extensions B-I, and 〇.
_HAN_RANGES = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x2FA1F),
    (0x30000, 0x323AF),
    (0x3007, 0x3007),
)
_LATIN_MAX = 0x024F  # Basic Latin to Latin Extended-B: the words the English stemmer may touch


@dataclass(frozen=True)
class _Tools:
    """The loaded third-party pieces: jieba's segmenter, OpenCC t2s, and the stemmer."""

    segment: Callable[[str], Iterator[str]]
    to_simplified: Callable[[str], str]
    stem: Callable[[str], str]


_tools: _Tools | None = None
_tools_lock = threading.Lock()


def analyze(text: str) -> list[str]:
    """The search tokens of a text, in order (repeats kept: BM25 counts them).

    >>> analyze("Evaluating 大语言模型!")  # doctest: +SKIP
    ['evalu', '大', '语言', '模型']
    """
    tools = _load()
    tokens: list[str] = []
    normal = unicodedata.normalize("NFKC", text).lower()
    for kind, chars in itertools.groupby(normal, key=_kind):
        if kind == _OTHER:
            continue
        run = "".join(chars)
        if kind == _HAN:
            han = tools.to_simplified(run)
            tokens += [w for w in tools.segment(han) if w.strip()]
        elif _is_latin_word(run):
            tokens.append(tools.stem(run))
        else:
            tokens.append(run)
    return tokens


def fts_document(text: str) -> str:
    """What is stored in the FTS5 table for a text: its analyzed tokens joined by spaces."""
    return " ".join(analyze(text))


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH expression for free text: its distinct tokens, each quoted, OR-ed.

    Quoting makes every token a plain phrase, so operators, ``*``, ``:``, ``^`` or stray
    quotes typed by a user are searched as text, never parsed. None when nothing is left.
    """
    distinct = dict.fromkeys(analyze(text))
    if not distinct:
        return None
    return " OR ".join('"' + token.replace('"', '""') + '"' for token in distinct)


def highlight_spans(text: str, query: str) -> list[tuple[int, int]]:
    """[start, end) character spans of ``text`` that match the query's search tokens.

    Latin and other words match when their analyzed form (stem) is a query token; in Chinese
    runs every occurrence of a query token of two or more characters is marked (a lone
    character would light up half the text).
    """
    wanted, han_words = _query_tokens(query)
    if not wanted:
        return []
    tools = _load()
    spans: list[tuple[int, int]] = []
    pos = 0
    for kind, chars in itertools.groupby(text, key=_kind):
        run = "".join(chars)
        start, pos = pos, pos + len(run)
        if kind == _OTHER:
            continue
        if kind == _HAN:
            if not han_words:
                continue
            han = tools.to_simplified(run)
            if len(han) == len(run):
                spans += _find_all(han, start, han_words)
        elif not _word_tokens(run).isdisjoint(wanted):
            spans.append((start, pos))
    return _merge(spans)


@functools.lru_cache(maxsize=256)
def _query_tokens(query: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """A query's search tokens, and those of two or more Han characters (highlighted in
    Chinese runs); kept, as every snippet of a search is highlighted with one query."""
    wanted = frozenset(analyze(query))
    return wanted, tuple(sorted(w for w in wanted if len(w) > 1 and _kind(w[0]) == _HAN))


@functools.lru_cache(maxsize=65536)
def _word_tokens(word: str) -> frozenset[str]:
    """The search tokens of one run of word characters (a snippet's words repeat a lot)."""
    return frozenset(analyze(word))


def _find_all(run: str, offset: int, needles: tuple[str, ...]) -> list[tuple[int, int]]:
    out = []
    for needle in needles:
        at = run.find(needle)
        while at != -1:
            out.append((offset + at, offset + at + len(needle)))
            at = run.find(needle, at + 1)
    return out


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


@functools.lru_cache(maxsize=65536)
def _kind(ch: str) -> int:
    """Han, word (letters, digits, combining marks of any script) or other (a separator)."""
    code = ord(ch)
    if any(lo <= code <= hi for lo, hi in _HAN_RANGES):
        return _HAN
    return _WORD if unicodedata.category(ch)[0] in "LNM" else _OTHER


def _is_latin_word(word: str) -> bool:
    return all(ch.isalpha() and ord(ch) <= _LATIN_MAX for ch in word)


def _load() -> _Tools:
    """jieba, OpenCC and Snowball, loaded once (the first call takes about a second)."""
    global _tools
    if _tools is None:
        with _tools_lock:
            if _tools is None:
                _tools = _build_tools()
    return _tools


def _build_tools() -> _Tools:
    try:
        import snowballstemmer
        from opencc import OpenCC

        jieba = _import_jieba()
    except ImportError as e:  # pragma: no cover - a broken install
        raise ImportError(
            "keyword search needs jieba, OpenCC and snowballstemmer - "
            "pip install jieba==0.42.1 opencc-python-reimplemented==0.1.7 snowballstemmer"
        ) from e
    jieba.setLogLevel(logging.ERROR)  # not "Building prefix dict..." on stderr
    segmenter = jieba.Tokenizer()
    segmenter.initialize()
    converter = OpenCC("t2s")  # reads its dictionaries now, not on the first convert
    stemmer = snowballstemmer.stemmer("english")
    stem_lock = threading.Lock()  # a Snowball stemmer keeps its working state on itself

    @functools.lru_cache(maxsize=100_000)
    def stem(word: str) -> str:
        with stem_lock:
            return str(stemmer.stemWord(word))

    return _Tools(segment=segmenter.cut_for_search, to_simplified=converter.convert, stem=stem)


def _import_jieba() -> Any:
    # On 2026-11-27 with jieba==0.42.1 (its last release), compiling jieba/__init__.py and
    # jieba/finalseg warns "invalid escape sequence" (DeprecationWarning; SyntaxWarning from
    # Python 3.12), which warnings-as-errors turns into a SyntaxError when no .pyc is cached.
    # https://github.com/fxsjy/jieba/issues/815
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "invalid escape sequence", DeprecationWarning)
        warnings.filterwarnings("ignore", "invalid escape sequence", SyntaxWarning)
        import jieba
    return jieba
