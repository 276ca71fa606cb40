"""Embedding, FAISS indexes, per-language calibration, and ranking over what they are given.

``index`` reads no store. What the vector indexes read and record there is the
``VectorSource`` protocol, which ``kb.store.Store`` satisfies; a search reads chunks through
the function its ``SearchContext`` carries. torch, sentence-transformers and faiss are
imported when first used, so importing ``index`` stays cheap.
"""

from index.calibration import LanguageMeans, LanguageStats
from index.dense import DenseIndex
from index.embedder import Embedder, Kind, load_embedder
from index.keywords import analyze, fts_document, fts_query, highlight_spans
from index.linker import Link, find_translations
from index.search import EncoderQuery, SearchContext
from index.vectors import ModelIdentity, VectorIndex, VectorSource

__all__ = [
    "DenseIndex",
    "Embedder",
    "EncoderQuery",
    "Kind",
    "LanguageMeans",
    "LanguageStats",
    "Link",
    "ModelIdentity",
    "SearchContext",
    "VectorIndex",
    "VectorSource",
    "analyze",
    "find_translations",
    "fts_document",
    "fts_query",
    "highlight_spans",
    "load_embedder",
]
