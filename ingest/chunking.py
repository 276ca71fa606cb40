"""Split page texts into overlapping chunks of a bounded size, keeping exact page numbers.

Text is cut into sentences (and lines), which are packed greedily into chunks of at most
``max_tokens`` estimated model tokens; neighbouring chunks share about ``overlap`` tokens of
trailing sentences. Every chunk is a run of consecutive pieces of the source, re-joined with
a space for Latin text and nothing between Chinese characters, so it can always be found
again on its pages (ignoring whitespace).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import pairwise

from ingest.lang import CJK_CHARS, UNSPACED_CHARS, detect_lang, join_text
from kb.types import ChunkDraft

# Token estimate for multilingual-e5 (XLM-R SentencePiece): 1 per CJK character, and for
# each run of other non-space characters its length / 4, at least 1. On 300 records of
# ../shared/data/xling/safety_pairs_dev.jsonl against the real tokenizer (2026-11, e5-small
# tokenizer.json) estimate/actual was: English abstracts median 1.02 (p10 0.94, p90 1.11),
# Chinese abstracts median 1.33 (min 1.02). Chinese is over-estimated, the safe side for
# the model's 512-token limit.
_CHARS_PER_TOKEN = 4
_ATOM_RE = re.compile(f"[{CJK_CHARS}]|[^\\s{CJK_CHARS}]+")
_BOUNDARY_RE = re.compile(
    r"\n"  # line and paragraph breaks
    r"|(?<=[。！？；])"  # Chinese sentence ends
    r"|(?<=[.!?])(?=\s)"  # Latin sentence ends
    # NFKC turns ！？； into ASCII; in Chinese text no space follows them.
    f"|(?<=[!?;])(?=[{UNSPACED_CHARS}])"
)


@dataclass(frozen=True)
class _Piece:
    """A span ``source[start:end]`` of one page: a sentence, a line or part of one."""

    source: str
    start: int
    end: int
    page: int | None
    cost: float

    @property
    def text(self) -> str:
        return self.source[self.start : self.end]


def estimate_tokens(text: str) -> int:
    """A cheap estimate of the multilingual-e5 tokens of ``text`` (no special tokens).

    One per CJK character plus, per run of other non-space characters, its length / 4 but at
    least 1; so "Large language models are unsafe." is 8 (the tokenizer says 7) and
    "大语言模型" is 5 (the tokenizer says 3).
    """
    return math.ceil(_cost(text, 0, len(text)))


def chunk_pages(
    pages: dict[int, str], *, max_tokens: int, overlap: int, lang: str | None = None
) -> list[ChunkDraft]:
    """Chunk the text of a paged document; each chunk knows its first and last page.

    Args:
        pages: page text by 1-based page number; empty pages are skipped.
        max_tokens: the largest chunk, in estimated tokens (see estimate_tokens).
        overlap: estimated tokens of trailing text repeated at the start of the next chunk.
        lang: the document's language, if known: a chunk in its script takes it without
            detection (``detect_lang``'s prior).
    """
    _check(max_tokens, overlap)
    pieces = []
    for number in sorted(pages):
        pieces += _pieces(pages[number], number, max_tokens)
    return _chunks(pieces, max_tokens, overlap, first_ord=0, lang=lang)


def chunk_text(
    text: str, *, max_tokens: int, overlap: int, first_ord: int = 0, lang: str | None = None
) -> list[ChunkDraft]:
    """Chunk text that has no pages (page_start and page_end are None).

    Args:
        first_ord: the ``ord`` of the first chunk, to continue the numbering of earlier chunks.
        lang: the document's language, if known (see ``chunk_pages``).
    """
    _check(max_tokens, overlap)
    return _chunks(_pieces(text, None, max_tokens), max_tokens, overlap, first_ord, lang=lang)


def _check(max_tokens: int, overlap: int) -> None:
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, not {max_tokens}")
    if not 0 <= overlap < max_tokens:
        raise ValueError(f"overlap must be between 0 and max_tokens - 1, not {overlap}")


def _cost(text: str, start: int, end: int) -> float:
    """The unrounded token estimate of ``text[start:end]``; it is additive over pieces."""
    # A CJK atom is one character, so max(1, 1/4) gives it its 1 token too.
    return sum(
        max(1.0, (m.end() - m.start()) / _CHARS_PER_TOKEN) for m in _iter_atoms(text, start, end)
    )


def _iter_atoms(text: str, start: int, end: int) -> Iterator[re.Match[str]]:
    return _ATOM_RE.finditer(text, start, end)


def _pieces(text: str, page: int | None, max_tokens: int) -> list[_Piece]:
    """The sentences of ``text`` as spans, over-long ones split hard to fit ``max_tokens``."""
    cuts = [0, *(m.end() for m in _BOUNDARY_RE.finditer(text)), len(text)]
    pieces: list[_Piece] = []
    for a, b in pairwise(cuts):
        span = text[a:b]
        start = a + len(span) - len(span.lstrip())
        end = b - (len(span) - len(span.rstrip()))
        if start >= end:
            continue
        cost = _cost(text, start, end)
        if cost <= max_tokens:
            pieces.append(_Piece(text, start, end, page, cost))
        else:
            pieces += _split_hard(text, start, end, page, max_tokens)
    return pieces


def _split_hard(text: str, start: int, end: int, page: int | None, limit: int) -> list[_Piece]:
    """Cut one over-long sentence between words or CJK characters into pieces that fit."""
    pieces: list[_Piece] = []
    first, last_end, cost = start, start, 0.0
    for a, b in _atoms(text, start, end, limit):
        atom_cost = _cost(text, a, b)
        if cost + atom_cost > limit and cost > 0:
            pieces.append(_Piece(text, first, last_end, page, cost))
            first, cost = a, 0.0
        cost += atom_cost
        last_end = b
    pieces.append(_Piece(text, first, last_end, page, cost))
    return pieces


def _atoms(text: str, start: int, end: int, limit: int) -> Iterable[tuple[int, int]]:
    """Spans of CJK characters and words; a word longer than ``limit`` tokens is cut up."""
    width = limit * _CHARS_PER_TOKEN
    for match in _iter_atoms(text, start, end):
        for a in range(match.start(), match.end(), width):
            yield a, min(a + width, match.end())


def _chunks(
    pieces: list[_Piece], max_tokens: int, overlap: int, first_ord: int, lang: str | None
) -> list[ChunkDraft]:
    chunks: list[ChunkDraft] = []
    for group in _pack(pieces, max_tokens, overlap):
        text = _join(group)
        if not any(ch.isalnum() for ch in text):
            continue
        numbers = [p.page for p in group if p.page is not None]
        chunks.append(
            ChunkDraft(
                ord=first_ord + len(chunks),
                text=text,
                lang=detect_lang(text, prior=lang),
                page_start=min(numbers) if numbers else None,
                page_end=max(numbers) if numbers else None,
            )
        )
    return chunks


def _pack(pieces: list[_Piece], max_tokens: int, overlap: int) -> list[list[_Piece]]:
    """Group consecutive pieces into chunks; each starts with the previous chunk's tail."""
    groups: list[list[_Piece]] = []
    current: list[_Piece] = []
    cost = 0.0
    for piece in pieces:
        if current and cost + piece.cost > max_tokens:
            groups.append(current)
            current = _tail(current, min(overlap, max_tokens - piece.cost))
            cost = sum(p.cost for p in current)
        current.append(piece)
        cost += piece.cost
    if current:
        groups.append(current)
    return groups


def _tail(group: list[_Piece], budget: float) -> list[_Piece]:
    """The trailing pieces of ``group`` that fit in ``budget`` tokens.

    When even the last piece is too big, its trailing words (or CJK characters) are used.
    """
    tail: list[_Piece] = []
    used = 0.0
    for piece in reversed(group):
        if used + piece.cost > budget:
            break
        tail.insert(0, piece)
        used += piece.cost
    if tail or budget < 1:
        return tail
    last = group[-1]
    start, used = last.end, 0.0
    for a, b in reversed(list(_atoms(last.source, last.start, last.end, int(budget)))):
        cost = _cost(last.source, a, b)
        if used + cost > budget:
            break
        start, used = a, used + cost
    return [_Piece(last.source, start, last.end, last.page, used)] if used else []


def _join(group: list[_Piece]) -> str:
    text = group[0].text
    for prev, piece in pairwise(group):
        touching = prev.source is piece.source and prev.end == piece.start
        text = join_text(text, piece.text, gap=not touching)
    return text
