"""The raw model on the standard run: plain cosine of the main encoder, no calibration.

The baseline the search-quality targets are stated against ("same-language nDCG@10 not below
the raw model's"). It reads the library that ``bench/eval_retrieval.py --keep DIR`` built
(same documents, same chunks, the raw vectors stored in SQLite), indexes those vectors
uncentred in a flat FAISS index, embeds each standard query with the model's query prompt,
ranks papers by their best chunk and prints nDCG@10 / Recall@10 per direction and kind.

    .venv/bin/python bench/eval_retrieval.py --keep /tmp/evallib --modes dense
    .venv/bin/python bench/raw_baseline.py /tmp/evallib [--markdown docs/eval-raw.md]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from index.embedder import load_embedder
from index.vectors import VectorIndex
from kb.evaluate import ndcg_at, recall_at
from kb.settings import Settings
from kb.store import Store

HERE = Path(__file__).resolve().parent


def _eval_module() -> Any:
    spec = importlib.util.spec_from_file_location("eval_retrieval", HERE / "eval_retrieval.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("library", type=Path, help="the folder given to eval_retrieval --keep")
    parser.add_argument("--papers", type=int, default=493)
    parser.add_argument("--distractors", type=int, default=3000)
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    args = parser.parse_args()
    ev = _eval_module()
    lines = ev.build_qrels(
        ev._read(ev.SAFETY, args.papers), ev._read(ev.DISTRACTORS, args.distractors)
    )
    queries = [line for line in lines if "query" in line]
    settings = Settings.from_env().replace(data_dir=args.library)
    store = Store(settings.db_path)
    if store.papers.count() < args.papers + args.distractors:
        sys.exit(f"error: {args.library} holds {store.papers.count()} papers; build it first.")
    embedder = load_embedder(settings)
    index = VectorIndex(embedder.dim)
    for ids, vecs, langs in store.chunks.iter_vectors(embedder.dim):
        index.add(ids, vecs, langs)
    paper_of = store.chunks.paper_ids()
    keys = {p.id: (p.key, p.lang) for p in store.papers.select(limit=10**9)}
    lang_of = dict(keys.values())
    started = time.perf_counter()
    groups: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for q in queries:
        qvec = embedder.encode([q["query"]], kind="query")[0]
        best: dict[int, float] = {}
        for cid, score in index.search(qvec, 200):
            pid = paper_of[cid]
            best[pid] = max(best.get(pid, -1.0), score)
        ranked = [keys[pid][0] for pid in sorted(best, key=lambda p: -best[p])]
        target = lang_of[q["relevant"][0]]
        direction = f"{q['lang']}->{target}".upper()
        scores = (ndcg_at(ranked, q["relevant"], 10), recall_at(ranked, q["relevant"], 10))
        groups[direction, "all"].append(scores)
        groups[direction, q["kind"]].append(scores)
    took = time.perf_counter() - started
    table = _table(groups, embedder.name, len(queries), took)
    print(table, end="")
    if args.markdown:
        args.markdown.write_text(table, encoding="utf-8")


def _table(groups: dict[tuple[str, str], list[tuple[float, float]]], model: str, n: int,
           took: float) -> str:  # fmt: skip
    rows = [
        f"Raw model {model}: plain cosine, no language calibration, no second encoder, "
        f"no keywords; {n} queries in {took:.0f} s (bench/raw_baseline.py)",
        "",
        "| direction | kind | queries | nDCG@10 | R@10 |",
        "|---|---|---:|---:|---:|",
    ]
    order = sorted(groups, key=lambda g: (g[0].split("->")[0] != g[0].split("->")[1], g))
    for direction, kind in order:
        values = np.mean(groups[direction, kind], axis=0)
        n_q = len(groups[direction, kind])
        rows.append(f"| {direction} | {kind} | {n_q} | {values[0]:.3f} | {values[1]:.3f} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    main()
