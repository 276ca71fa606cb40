"""Search at scale: libraries of 10k, 100k and 1M chunks, built, reopened and searched.

Each library holds the shared bilingual records (``llm_papers_all.jsonl.gz``, English and
Chinese alternating, title + abstract chunked as kb does, real keyword rows), gone round again
with new keys past its 27,487 records. The vectors are synthetic (embedding a million chunks
would take days on 2 cores and does not change how long a search takes): each paper's chunks
scatter around one of ``--topics`` real titles embedded by each encoder, so the library has
the neighbourhoods of real text and an approximate index's recall means something (uniform
random vectors have none: ``--topics 0``). The queries are other real titles embedded by the
real encoders. For each size it prints:

- build: storing the chunks, then the first open, which builds the FAISS indexes from SQLite;
- disk: the data folder (SQLite with every vector, the saved indexes);
- cold start: a new process opening the library, loading the models and answering one search
  (``start_s``), its peak memory (``rss_mb``), and the same for an empty library (the models
  alone) for comparison;
- p50 / p95 latency of dense, hybrid and keyword search and of related papers (warm, in
  this process, query embedding included);
- the index kind, and its recall against an exact (flat) search of the same vectors, per
  encoder and document language: ``recall_at_10``, of the 10 best chunks once the
  candidates are scored as a search scores them (``VectorIndex.scores_of``: the best by
  their 8-bit scores again exactly), and ``recall_at_200``, of the 200
  candidates themselves (1.0 while an index is flat);
- the keyword index searched (``KB_KEYWORD_INDEX``: SQLite's FTS5 table, or tantivy past
  its threshold) and, for tantivy, how many of FTS5's 10 best chunks it also found.

It ends with one line per size that a script can read (one line here, wrapped):

    scale: chunks=N dense_p95_ms=X hybrid_p95_ms=X related_p95_ms=X rss_mb=X start_s=X
        recall_at_10=X

    .venv/bin/python bench/scale.py [--chunks 10000 100000 1000000] [--queries 100]
        [--index auto|flat|ivf] [--topics 2000] [--tmp DIR [--keep]] [--reuse DIR/kb-N]

``--keep`` leaves each library built in ``--tmp``; ``--reuse`` measures a kept one again (a
new setting such as ``--index flat`` rebuilds its indexes first; build time is then ``nan``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from benchlib import bilingual_records, fill_random, latencies_ms, machine

from index.vectors import FLAT, IndexPlan, VectorIndex
from kb.library.facade import Library
from kb.library.query import SearchQuery
from kb.library.search import keyword_search
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
try:  # this process's own peak: ru_maxrss keeps the parent's size from before exec
    rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
except (OSError, StopIteration):  # not Linux
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


def run_size(
    target: int,
    queries: list[str],
    tmp: Path,
    per_record: float,
    topics: list[str],
    reuse: Path | None = None,
    keep: bool = False,
) -> dict[str, Any]:
    """Build a library of about ``target`` chunks in ``tmp``, measure it, and remove it
    unless ``keep`` (``reuse``: measure the library already there instead, and keep it)."""
    folder = reuse or tmp / f"kb-{target}"
    settings = Settings.from_env().replace(data_dir=folder)
    started = time.perf_counter()
    if reuse is None:
        records = bilingual_records(math.ceil(target / per_record), cycle=True)
        lib = Library(settings)
        centres = None
        if topics:
            centres = {s.slot: s.embedder.encode(topics, kind="passage") for s in lib.load()}
        fill_random(lib, records, centres=centres)
        lib.close()
    lib = Library(settings)
    lib.load()  # the indexes are built from SQLite here (or rebuilt if another kind is set)
    build_s = time.perf_counter() - started if reuse is None else float("nan")
    stats = lib.store.papers.stats()
    lib.close()  # saves the indexes: the cold start below finds them healthy
    out: dict[str, Any] = {"chunks": stats["chunks"], "papers": stats["papers"]}
    out["build_s"] = build_s
    out["disk_mb"] = _disk_mb(folder)
    out.update(_cold(folder, queries[0]))
    lib = Library(settings)
    lib.load()
    for mode in ("dense", "hybrid", "keyword"):
        lib.search(SearchQuery.build(queries[0], mode=mode))  # warm: statistics, id lists
        took = latencies_ms(lambda q, m=mode: lib.search(SearchQuery.build(q, mode=m)), queries)
        out[f"{mode}_p50_ms"], out[f"{mode}_p95_ms"] = _percentiles(took)
    ids = [p.id for p in lib.papers(limit=len(queries))]
    lib.related(ids[-1])  # warm, as the modes above are
    took = latencies_ms(lambda i: lib.related(i), ids)
    out["related_p50_ms"], out["related_p95_ms"] = _percentiles(took)
    out.update(_recall(lib, queries))
    out.update(_keyword_agreement(lib, queries))
    lib.close()
    if reuse is None and not keep:
        shutil.rmtree(folder)
    return out


def _recall(lib: Library, queries: list[str], deep: int = 200) -> dict[str, Any]:
    """The index kinds, and their recall@10 (scored as a search scores) and recall@200 (of the
    candidates) against a flat index of the same vectors, averaged over encoders, document
    languages and queries."""
    sides = lib.encoders()
    ids_by_lang = lib.store.chunks.ids_by_lang()
    at10, at200 = [], []
    for side in sides:
        if side.vectors.kind == FLAT:
            at10.append(1.0)
            at200.append(1.0)
            continue
        dim = side.identity.dim
        flat = VectorIndex.rebuild(lib.store, dim, side.to_index, side.slot, IndexPlan("flat"))
        for text in queries:
            qvec = side.embed_query(text, "und")
            for lang, only in ids_by_lang.items():
                exact = [cid for cid, _ in flat.search(qvec, deep, only=only)]
                hits = side.vectors.search(qvec, deep, only=only, lang=lang)
                found = np.asarray([cid for cid, _ in hits])
                rescored = found[np.argsort(-side.vectors.scores_of(found, qvec, lang))]
                top = set(exact[:10])
                at10.append(len(set(rescored[:10].tolist()) & top) / max(len(top), 1))
                at200.append(len(set(found.tolist()) & set(exact)) / max(len(exact), 1))
        del flat
    kinds = "+".join(
        f"{s.vectors.kind}" + (f"({s.vectors.index.nlist} lists)" if s.vectors.kind != FLAT else "")
        for s in sides
    )  # fmt: skip
    return {"kind": kinds, "recall_at_10": float(np.mean(at10)),
            "recall_at_200": float(np.mean(at200))}  # fmt: skip


def _keyword_agreement(lib: Library, queries: list[str], k: int = 10) -> dict[str, Any]:
    """Which keyword index searched (``KB_KEYWORD_INDEX``), and, for the tantivy one, the
    share of FTS5's ``k`` best chunks it also found, compared by text (the libraries repeat
    their records, so equal texts tie and either copy is as good)."""
    with lib.core.lock:
        terms = lib.core.terms()
    if terms is None:
        return {"keyword_index": "sqlite", "keyword_agree_at_10": 1.0}
    fts, tantivy = keyword_search(lib.store), keyword_search(lib.store, terms)
    shares = []
    for text in queries:
        a = [cid for cid, _ in fts(text, k)]
        b = [cid for cid, _ in tantivy(text, k)]
        chunks = lib.store.chunks.by_ids(a + b)
        ca = Counter(chunks[c].text for c in a if c in chunks)
        cb = Counter(chunks[c].text for c in b if c in chunks)
        shares.append(sum((ca & cb).values()) / max(len(a), 1))
    return {"keyword_index": "tantivy", "keyword_agree_at_10": float(np.mean(shares))}


def _line(r: dict[str, Any]) -> str:
    ms = ", ".join(
        f"{name} {r[f'{name}_p50_ms']:.0f}/{r[f'{name}_p95_ms']:.0f}"
        for name in ("dense", "hybrid", "keyword", "related")
    )
    return (
        f"{r['chunks']:,.0f} chunks ({r['papers']:,.0f} papers): build {r['build_s']:.0f} s, "
        f"disk {r['disk_mb']:,.0f} MiB, cold start {r['start_s']:.1f} s, "
        f"rss {r['rss_mb']:,.0f} MiB; p50/p95 ms: {ms}; index {r['kind']}, "
        f"recall@10 {r['recall_at_10']:.3f}, recall@200 {r['recall_at_200']:.3f}; keywords "
        f"{r['keyword_index']}, agreement@10 with FTS5 {r['keyword_agree_at_10']:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=100, help="queries per mode and size")
    parser.add_argument("--tmp", type=Path, help="where to build (default: a temporary folder)")
    parser.add_argument("--index", choices=["auto", "flat", "ivf"], help="KB_INDEX for all")
    parser.add_argument(
        "--reuse",
        type=Path,
        help="measure this library (one an earlier run "
        "kept) instead of building one; --chunks is then ignored",
    )
    parser.add_argument("--keep", action="store_true", help="keep the libraries built, in "
                        "--tmp (for --reuse)")  # fmt: skip
    parser.add_argument("--topics", type=int, default=2000, help="real titles vectors scatter "
                        "around (0: uniform random vectors)")  # fmt: skip
    args = parser.parse_args()
    if args.index:
        os.environ["KB_INDEX"] = args.index  # the cold-start processes read it too
    every = bilingual_records(27_487)
    queries = [t for _, t, _, _ in every[-args.queries :]]
    topics = [t for _, t, _, _ in every[-(args.queries + args.topics) : -args.queries]]
    topics = topics if args.topics else []
    per_record = _chunks_per_record()
    print(f"machine: {machine()}; {per_record:.2f} chunks per record", flush=True)
    if args.keep and not args.tmp:
        parser.error("--keep needs --tmp (where the libraries stay)")
    with tempfile.TemporaryDirectory(prefix="kb-scale-", dir=args.tmp) as tmp:
        work = args.tmp if args.keep else Path(tmp)
        empty = Path(tmp) / "kb-empty"
        Library(Settings.from_env().replace(data_dir=empty)).close()
        models = _cold(empty, queries[0])
        print(f"cold start of an empty library (the models alone): {models['start_s']:.1f} s, "
              f"{models['rss_mb']:.0f} MiB", flush=True)  # fmt: skip
        results = []
        for target in [0] if args.reuse else args.chunks:
            r = run_size(target, queries, work, per_record, topics, args.reuse, args.keep)
            results.append(r)
            print(_line(r), flush=True)
    for r in results:
        print(
            f"scale: chunks={r['chunks']:.0f} dense_p95_ms={r['dense_p95_ms']:.1f}"
            f" hybrid_p95_ms={r['hybrid_p95_ms']:.1f} related_p95_ms={r['related_p95_ms']:.1f}"
            f" rss_mb={r['rss_mb']:.0f} start_s={r['start_s']:.2f}"
            f" recall_at_10={r['recall_at_10']:.3f}"
        )


if __name__ == "__main__":
    main()
