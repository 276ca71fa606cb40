"""Helpers shared by the benchmark scripts: the machine line, the bare-pypdf yardstick, and
libraries of shared bilingual records with random vectors (search at scale)."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import platform
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pypdf import PdfReader

if TYPE_CHECKING:
    from kb.library.facade import Library

XLING_ALL = Path(__file__).resolve().parents[2] / "shared" / "data" / "xling"
XLING_ALL = XLING_ALL / "llm_papers_all.jsonl.gz"
Record = tuple[str, str, str, str]  # key, title, abstract, language


def machine() -> str:
    cpu = platform.processor() or platform.machine() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def bare_pypdf_pages(path: Path) -> list[str]:
    """pypdf's raw text of every page ("" where it fails, as kb keeps): the yardstick."""
    reader = PdfReader(path, strict=False)
    if reader.is_encrypted:
        reader.decrypt("")
    texts = []
    for page in reader.pages:
        try:
            texts.append(page.extract_text() or "")
        except Exception:  # a failed page gives "", as in kb
            texts.append("")
    return texts


def bilingual_records(n: int, *, cycle: bool = False) -> list[Record]:
    """``n`` papers from the shared bilingual records, English and Chinese alternating (title
    and abstract in one language each). ``cycle``: past the 27,487 records, go round again
    with new keys (the same texts: enough for timing searches, not for judging them)."""
    base: list[Record] = []
    with gzip.open(XLING_ALL, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if len(base) >= n:
                break
            r = json.loads(line)
            lang = "en" if i % 2 == 0 else "zh"
            title, abstract = r.get(f"{lang}_title"), r.get(lang)
            if title and abstract:
                base.append((r["id"], title, abstract, lang))
    if not cycle or len(base) >= n:
        return base[:n]
    rounds = itertools.count()
    out: list[Record] = []
    while len(out) < n:
        r = next(rounds)
        out += [(f"{key}#{r}" if r else key, t, a, lang) for key, t, a, lang in base]
    return out[:n]


def fill_random(
    lib: Library,
    records: list[Record],
    *,
    seed: int = 0,
    batch: int = 500,
    centres: dict[str | None, np.ndarray] | None = None,
    spread: float = 0.5,
) -> int:
    """Store ``records`` as kb does (chunked title + abstract, real keyword rows), with random
    unit vectors for every encoder instead of embeddings (embedding a million chunks would take
    days here and does not change how long a search takes). One transaction per ``batch``
    papers; the chunks and keyword rows of a repeated text are computed once. Returns the
    number of chunks stored.

    Args:
        centres: per encoder slot, real embeddings (one per row) that each paper's vectors
            scatter around (one drawn per paper, Gaussian noise of norm about ``spread``
            added): a library with the neighbourhoods real text has, on which an
            approximate index's recall means something. None: uniform random vectors.
    """
    from index.keywords import fts_document
    from ingest.chunking import chunk_text
    from kb.library.encoders import passage_text
    from kb.types import PaperMeta, ParsedDocument

    rng = np.random.default_rng(seed)
    dims = {side.slot: side.identity.dim for side in lib.encoders()}
    made: dict[tuple[str, str], tuple[list, list[str]]] = {}
    stored = 0
    for start in range(0, len(records), batch):
        with lib.store.transaction():
            for key, title, abstract, lang in records[start : start + batch]:
                if (title, abstract) not in made:
                    chunks = chunk_text(f"{title}\n{abstract}", max_tokens=200, overlap=30)
                    rows = [fts_document(passage_text(title, c.text)) for c in chunks]
                    made[(title, abstract)] = (chunks, rows)
                chunks, rows = made[(title, abstract)]
                meta = PaperMeta(title=title, abstract=abstract, lang=lang, year=2024)
                doc = ParsedDocument(key, f"bench#{key}", "record", key, meta, chunks)
                vecs = {}
                for slot, dim in dims.items():
                    v = rng.standard_normal((len(chunks), dim)).astype(np.float32)
                    if centres is not None:
                        topic = centres[slot][rng.integers(len(centres[slot]))]
                        v = topic / np.linalg.norm(topic) + v * (spread / np.sqrt(dim))
                    vecs[slot] = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
                extra = {slot: v for slot, v in vecs.items() if slot is not None}
                lib.store.papers.add(doc, vecs[None], keyword_texts=rows, extra_vectors=extra)
                stored += len(chunks)
    return stored


def latencies_ms(fn: Callable[[Any], object], items: Iterable[Any]) -> list[float]:
    """Wall milliseconds of ``fn(item)`` for each item, one call after another."""
    out = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - start) * 1000)
    return out
