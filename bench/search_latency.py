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
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from benchlib import bilingual_records, fill_random, latencies_ms

from kb.library.facade import Library
from kb.library.query import SearchQuery
from kb.settings import Settings


def _stats(ms: list[float]) -> str:
    a = np.asarray(ms)
    return (
        f"p50 {np.percentile(a, 50):6.1f}  p95 {np.percentile(a, 95):6.1f}  mean {a.mean():6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    records = bilingual_records(args.papers + args.queries)
    papers, queries = records[: args.papers], [r[1] for r in records[args.papers :]]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env().replace(data_dir=Path(tmp) / "kb")
        lib = Library(settings)
        lib.load()
        start = time.perf_counter()
        fill_random(lib, papers)
        lib.close()
        lib = Library(settings)  # reopen: the indexes are rebuilt from SQLite
        lib.load()
        print(f"built {len(papers)} papers, {lib.store.papers.stats()['chunks']} chunks "
              f"in {time.perf_counter() - start:.0f} s")  # fmt: skip
        for mode in ("dense", "hybrid", "keyword"):
            lib.search(SearchQuery.build(queries[0], mode=mode))  # warm caches (statistics, ids)
            took = latencies_ms(lambda q, m=mode: lib.search(SearchQuery.build(q, mode=m)), queries)
            print(f"kb search {mode:8}: {_stats(took)}")
        ids = [p.id for p in lib.papers(limit=args.queries)]
        print(f"kb related      : {_stats(latencies_ms(lambda i: lib.related(i), ids))}")
        main, k = lib.encoders()[0], settings.candidates
        qvecs = [main.embed_query(q, "en") for q in queries]
        took = latencies_ms(lambda v: main.vectors.index.search(v[None], k), qvecs)
        print(f"bare faiss top-{k}: {_stats(took)}")
        for side in lib.encoders():
            took = latencies_ms(lambda q, s=side: s.embed_query(q, "en"), queries)
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
