"""Search latency at library scale, next to a bare FAISS search of the same vectors.

Builds a temporary library of N papers (default 10,000) from the shared bilingual records
(``llm_papers_all.jsonl.gz``, alternating English and Chinese, title + abstract chunked as
kb does, with real keyword rows). Embedding 10,000 papers for real would take most of an hour
on 2 cores and does not change how long a search takes, so their vectors are random unit
vectors; queries are real titles embedded by the real encoders. Prints p50/p95/mean latency of
``Library.search`` per mode, of ``Library.related``, and of a bare ``faiss`` search of the main
encoder's index for the same query vectors.

    .venv/bin/python bench/search_latency.py [--papers 10000] [--queries 200]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from index.keywords import fts_document
from ingest.chunking import chunk_text
from kb.library.encoders import passage_text
from kb.library.facade import Library
from kb.library.query import SearchQuery
from kb.settings import Settings
from kb.types import PaperMeta, ParsedDocument

ALL = Path(__file__).resolve().parents[2] / "shared" / "data" / "xling" / "llm_papers_all.jsonl.gz"


def _records(n: int) -> list[tuple[str, str, str, str]]:
    out = []
    with gzip.open(ALL, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if len(out) >= n:
                break
            r = json.loads(line)
            lang = "en" if i % 2 == 0 else "zh"
            title, abstract = r.get(f"{lang}_title"), r.get(lang)
            if title and abstract:
                out.append((r["id"], title, abstract, lang))
    return out


def _fill(lib: Library, records: list[tuple[str, str, str, str]], seed: int = 0) -> None:
    """Store the papers with random unit vectors for every encoder (no embedding)."""
    rng = np.random.default_rng(seed)
    dims = {side.slot: side.identity.dim for side in lib.encoders()}
    for key, title, abstract, lang in records:
        chunks = chunk_text(f"{title}\n{abstract}", max_tokens=200, overlap=30)
        meta = PaperMeta(title=title, abstract=abstract, lang=lang, year=2024)
        doc = ParsedDocument(key, f"bench#{key}", "record", key, meta, chunks)
        vecs = {slot: rng.standard_normal((len(chunks), dim)).astype(np.float32)
                for slot, dim in dims.items()}  # fmt: skip
        for v in vecs.values():
            v /= np.linalg.norm(v, axis=1, keepdims=True)
        texts = [fts_document(passage_text(title, c.text)) for c in chunks]
        extra = {slot: v for slot, v in vecs.items() if slot is not None}
        lib.store.papers.add(doc, vecs[None], keyword_texts=texts, extra_vectors=extra)


def _stats(ms: list[float]) -> str:
    a = np.asarray(ms)
    return (
        f"p50 {np.percentile(a, 50):6.1f}  p95 {np.percentile(a, 95):6.1f}  mean {a.mean():6.1f} ms"
    )


def _time(fn, items) -> list[float]:
    out = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    records = _records(args.papers + args.queries)
    papers, queries = records[: args.papers], [r[1] for r in records[args.papers :]]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env().replace(data_dir=Path(tmp) / "kb")
        lib = Library(settings)
        lib.load()
        start = time.perf_counter()
        _fill(lib, papers)
        lib.close()
        lib = Library(settings)  # reopen: the indexes are rebuilt from SQLite
        lib.load()
        print(f"built {len(papers)} papers, {lib.store.papers.stats()['chunks']} chunks "
              f"in {time.perf_counter() - start:.0f} s")  # fmt: skip
        for mode in ("dense", "hybrid", "keyword"):
            lib.search(SearchQuery.build(queries[0], mode=mode))  # warm caches (statistics, ids)
            took = _time(lambda q, m=mode: lib.search(SearchQuery.build(q, mode=m)), queries)
            print(f"kb search {mode:8}: {_stats(took)}")
        ids = [p.id for p in lib.papers(limit=args.queries)]
        print(f"kb related      : {_stats(_time(lambda i: lib.related(i), ids))}")
        main, k = lib.encoders()[0], settings.candidates
        qvecs = [main.embed_query(q, "en") for q in queries]
        took = _time(lambda v: main.vectors.index.search(v[None], k), qvecs)
        print(f"bare faiss top-{k}: {_stats(took)}")
        for side in lib.encoders():
            took = _time(lambda q, s=side: s.embed_query(q, "en"), queries)
            print(f"embed query {side.embedder.name[:12]:12}: {_stats(took)}")
        for side in lib.encoders():
            mib = side.vectors.size * side.identity.dim * 4 / 2**20
            print(f"index {side.embedder.name}: {side.vectors.size} vectors, {mib:.0f} MiB")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak memory of this process: {rss:.0f} MiB")
        lib.close()
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"model {settings.model} + {settings.second_encoder}")  # fmt: skip


if __name__ == "__main__":
    main()
