"""What each encoder is given: a chunk's passage text and keyword row; the second encoder."""

from __future__ import annotations

from index.embedder import Embedder
from index.keywords import fts_document
from kb.settings import Settings
from kb.types import ParsedDocument


def passage_text(title: str, text: str) -> str:
    """What is embedded for a chunk: its text, preceded by the paper title when missing."""
    if not title or text.startswith(title):
        return text
    return f"{title}\n{text}"


def passage_texts(docs: list[ParsedDocument]) -> list[str]:
    """What is embedded for every chunk of ``docs``, in order (``passage_text``)."""
    return [passage_text(d.meta.title, c.text) for d in docs for c in d.chunks]


def keyword_text(title: str, text: str) -> str:
    """A chunk's keyword-index row: the same text that is embedded (title first)."""
    return fts_document(passage_text(title, text))


def second_encoder(settings: Settings) -> Embedder | None:
    """The second dense encoder of ``settings`` (loaded now), or None."""
    if settings.second_encoder == "none":
        return None
    from index.muse import MuseEmbedder

    return MuseEmbedder()
