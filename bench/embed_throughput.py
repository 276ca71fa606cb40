"""Embedding throughput of kb's ingest path, per backend, next to a bare SentenceTransformer.encode.

Every backend (``KB_EMBED_BACKEND``: torch, onnx, onnx-int8, openvino, openvino-int8; those
whose runtime is installed; the others print why not) embeds the same passages (chunks of
bilingual AI-paper records, title prepended as kb does) in the same run, alternating, best
of ``--repeat``; the yardstick is a bare torch fp32 ``SentenceTransformer.encode`` of the
same texts. Printed per backend:
tokens/s, the ratio to the bare encode, query embedding latency (p50/p95 of single queries, the
shipped off-topic and sample queries), and the cosine of its passage vectors to torch's (min,
mean). Retrieval quality per backend is the standard evaluation's business
(``KB_EMBED_BACKEND=X bench/eval_retrieval.py``); docs/PERFORMANCE.md has both.

    .venv/bin/python bench/embed_throughput.py [--records N] [--repeat R] [--backends ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from index.embedder import Embedder, ExportedEmbedder, SentenceTransformerEmbedder, load_embedder
from ingest.records import read_records
from kb.errors import ModelError
from kb.library.encoders import passage_text
from kb.settings import EMBED_BACKENDS, Settings

ROOT = Path(__file__).resolve().parents[1]
DEV_SET = ROOT.parent / "shared" / "data" / "xling" / "safety_pairs_dev.jsonl"


def _passages(n: int, settings: Settings) -> list[str]:
    """Chunks of n records (half English, half Chinese) as kb would embed them."""
    lines = DEV_SET.read_text(encoding="utf-8").splitlines()[:n]
    with tempfile.TemporaryDirectory() as tmp:
        feed = Path(tmp) / "feed.jsonl"
        with feed.open("w", encoding="utf-8") as out:
            for i, line in enumerate(lines):
                r = json.loads(line)
                lang = "en" if i % 2 == 0 else "zh"
                title, abstract = r[f"{lang}_title"], r[lang]
                rec = {"key": r["id"], "title": title, "abstract": abstract, "lang": lang}
                out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        docs = read_records(feed, max_tokens=settings.chunk_tokens, overlap=settings.chunk_overlap)
    return [passage_text(d.meta.title, c.text) for d in docs if hasattr(d, "chunks")
            for c in d.chunks]  # fmt: skip


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _queries() -> list[str]:
    """Short real queries, English and Chinese: the off-topic list and the judged queries."""
    lines = (ROOT / "bench" / "offtopic_queries.txt").read_text(encoding="utf-8").splitlines()
    queries = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    judged = ROOT.parent / "shared" / "data" / "fulltext-qrels" / "queries.jsonl"
    if judged.is_file():
        queries += [json.loads(line)["query"] for line in judged.read_text("utf-8").splitlines()]
    return queries


def _latency_ms(embedder: Embedder, queries: list[str]) -> tuple[float, float]:
    times = []
    for q in queries:
        start = time.perf_counter()
        embedder.encode([q], kind="query")
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=120, help="records to embed")
    parser.add_argument("--repeat", type=int, default=2, help="alternating timed runs of each")
    parser.add_argument("--backends", nargs="+", default=list(EMBED_BACKENDS))
    args = parser.parse_args()
    settings = Settings.from_env()
    embedders: dict[str, SentenceTransformerEmbedder | ExportedEmbedder] = {}
    for backend in args.backends:
        try:  # a backend whose runtime is not installed says so and is skipped
            embedders[backend] = load_embedder(dataclasses.replace(settings, embed_backend=backend))
        except ModelError as e:
            print(f"{backend}: {e}")
    torch = embedders.get("torch") or load_embedder(
        dataclasses.replace(settings, embed_backend="torch")
    )
    assert isinstance(torch, SentenceTransformerEmbedder)
    model = torch.model
    texts = _passages(args.records, settings)
    queries = _queries()
    prompt = model.prompts.get("document", "")
    tokens = sum(len(model.tokenizer(prompt + t, truncation=True, max_length=512)["input_ids"])
                 for t in texts)  # fmt: skip
    for embedder in embedders.values():
        embedder.encode(texts[:8], kind="passage")  # warm up
    seconds: dict[str, list[float]] = {name: [] for name in [*embedders, "bare"]}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(args.repeat):  # alternate so drift hits all alike
        for name, embedder in embedders.items():
            start = time.perf_counter()
            vectors[name] = embedder.encode(texts, kind="passage")
            seconds[name].append(time.perf_counter() - start)
        seconds["bare"].append(_timed(lambda: model.encode(
            texts, prompt_name="document", batch_size=settings.batch_size,
            normalize_embeddings=True)))  # fmt: skip
    reference = torch.encode(texts, kind="passage")
    bare = min(seconds["bare"])
    machine = f"{platform.machine()} {platform.processor() or ''}".strip()
    print(f"machine: {machine}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"model: {settings.model}; {len(texts)} passages, {tokens} tokens, best of {args.repeat}")
    print(f"{len(queries)} single queries for the latency")
    print(f"bare ST encode (torch fp32): {tokens / bare:8.0f} tokens/s ({bare:.2f} s)")
    for name, embedder in embedders.items():
        best = min(seconds[name])
        p50, p95 = _latency_ms(embedder, queries)
        cosine = (vectors[name] * reference).sum(axis=1)
        print(
            f"backend: {name:14s} tokens_s={tokens / best:6.0f} ratio={bare / best:5.2f} "
            f"query_p50_ms={p50:5.1f} query_p95_ms={p95:5.1f} "
            f"cos_min={cosine.min():.4f} cos_mean={cosine.mean():.5f}"
        )


if __name__ == "__main__":
    main()
