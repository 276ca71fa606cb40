"""Search at scale: libraries of 10k, 100k and 1M chunks, built, reopened and searched.

Each library holds the shared bilingual records (``llm_papers_all.jsonl.gz``, English and
Chinese alternating, title + abstract chunked as kb does, real keyword rows), gone round again
with new keys past its 27,487 records; the vectors are random unit vectors (embedding a million
chunks would take days on 2 cores and does not change how long a search takes), the queries
are real titles embedded by the real encoders. For each size it prints:

- build: storing the chunks, then the first open, which builds the FAISS indexes from SQLite;
- disk: the data folder (SQLite with every vector, the saved indexes);
- cold start: a new process opening the library, loading the models and answering one search
  (``start_s``), its peak memory (``rss_mb``), and the same for an empty library (the models
  alone) for comparison;
- p50 / p95 latency of dense, hybrid and keyword search and of related papers (warm, in
  this process, query embedding included);
- recall@10 of the index against an exact (flat) search: 1.0 while every index is flat.

It ends with one line per size that a script can read (one line here, wrapped):

    scale: chunks=N dense_p95_ms=X hybrid_p95_ms=X related_p95_ms=X rss_mb=X start_s=X
        recall_at_10=X

    .venv/bin/python bench/scale.py [--chunks 10000 100000 1000000] [--queries 100]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from benchlib import bilingual_records, fill_random, latencies_ms, machine

from kb.library.facade import Library
from kb.library.query import SearchQuery
from kb.settings import Settings

# A new process: open the library, load models and indexes, answer one search; print JSON.
_COLD = """
import json, resource, sys, time
start = time.perf_counter()
from kb.library.facade import Library
from kb.library.query import SearchQuery
from kb.settings import Settings
lib = Library(Settings.from_env().replace(data_dir=sys.argv[1]))
lib.search(SearchQuery.build(sys.argv[2], k=10))
took = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
lib.close()
print(json.dumps({"start_s": took, "rss_mb": rss}))
"""


def _percentiles(ms: list[float]) -> tuple[float, float]:
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def _cold(folder: Path, query: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _COLD, str(folder), query], capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def _disk_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def _chunks_per_record() -> float:
    sample = bilingual_records(2000)
    from ingest.chunking import chunk_text

    n = sum(len(chunk_text(f"{t}\n{a}", max_tokens=200, overlap=30)) for _, t, a, _ in sample)
    return n / len(sample)


def run_size(target: int, queries: list[str], tmp: Path, per_record: float) -> dict[str, float]:
    """Build a library of about ``target`` chunks in ``tmp``, measure it, and remove it."""
    folder = tmp / f"kb-{target}"
    settings = Settings.from_env().replace(data_dir=folder)
    records = bilingual_records(math.ceil(target / per_record), cycle=True)
    started = time.perf_counter()
    lib = Library(settings)
    lib.load()
    chunks = fill_random(lib, records)
    lib.close()
    lib = Library(settings)
    lib.load()  # the indexes are built from SQLite here
    build_s = time.perf_counter() - started
    lib.close()  # saves the indexes: the cold start below finds them healthy
    out: dict[str, float] = {"chunks": chunks, "papers": len(records), "build_s": build_s}
    out["disk_mb"] = _disk_mb(folder)
    out.update(_cold(folder, queries[0]))
    lib = Library(settings)
    lib.load()
    for mode in ("dense", "hybrid", "keyword"):
        lib.search(SearchQuery.build(queries[0], mode=mode))  # warm: statistics, id lists
        took = latencies_ms(lambda q, m=mode: lib.search(SearchQuery.build(q, mode=m)), queries)
        out[f"{mode}_p50_ms"], out[f"{mode}_p95_ms"] = _percentiles(took)
    ids = [p.id for p in lib.papers(limit=len(queries))]
    took = latencies_ms(lambda i: lib.related(i), ids)
    out["related_p50_ms"], out["related_p95_ms"] = _percentiles(took)
    kinds = {type(side.vectors.index).__name__ for side in lib.encoders()}
    out["recall_at_10"] = 1.0 if kinds <= {"IndexIDMap", "IndexIDMap2", "IndexFlatIP"} else -1.0
    lib.close()
    shutil.rmtree(folder)
    return out


def _line(r: dict[str, float]) -> str:
    ms = ", ".join(
        f"{name} {r[f'{name}_p50_ms']:.0f}/{r[f'{name}_p95_ms']:.0f}"
        for name in ("dense", "hybrid", "keyword", "related")
    )
    return (
        f"{r['chunks']:,.0f} chunks ({r['papers']:,.0f} papers): build {r['build_s']:.0f} s, "
        f"disk {r['disk_mb']:,.0f} MiB, cold start {r['start_s']:.1f} s, "
        f"rss {r['rss_mb']:,.0f} MiB; p50/p95 ms: {ms}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=100, help="queries per mode and size")
    parser.add_argument("--tmp", type=Path, help="where to build (default: a temporary folder)")
    args = parser.parse_args()
    queries = [t for _, t, _, _ in bilingual_records(27_487)[-args.queries :]]
    per_record = _chunks_per_record()
    print(f"machine: {machine()}; {per_record:.2f} chunks per record", flush=True)
    with tempfile.TemporaryDirectory(prefix="kb-scale-", dir=args.tmp) as tmp:
        empty = Path(tmp) / "kb-empty"
        Library(Settings.from_env().replace(data_dir=empty)).close()
        models = _cold(empty, queries[0])
        print(f"cold start of an empty library (the models alone): {models['start_s']:.1f} s, "
              f"{models['rss_mb']:.0f} MiB", flush=True)  # fmt: skip
        results = []
        for target in args.chunks:
            r = run_size(target, queries, Path(tmp), per_record)
            results.append(r)
            print(_line(r), flush=True)
    for r in results:
        print(
            f"scale: chunks={r['chunks']:.0f} dense_p95_ms={r['dense_p95_ms']:.1f}"
            f" hybrid_p95_ms={r['hybrid_p95_ms']:.1f} related_p95_ms={r['related_p95_ms']:.1f}"
            f" rss_mb={r['rss_mb']:.0f} start_s={r['start_s']:.2f}"
            f" recall_at_10={r['recall_at_10']:.2f}"
        )


if __name__ == "__main__":
    main()
