"""Embedding throughput of kb's ingest path next to a bare SentenceTransformer.encode.

Both embed the same passages (chunks of bilingual AI-paper records, title prepended as kb does)
in the same run; the script prints tokens/s for each and their ratio. kb's pipeline should lose
no more than 10 % to the bare call.

    .venv/bin/python bench/embed_throughput.py [--records N] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from index.embedder import load_embedder
from ingest.records import read_records
from kb.library.encoders import passage_text
from kb.settings import Settings

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=120, help="records to embed")
    parser.add_argument("--repeat", type=int, default=2, help="alternating timed runs of each")
    args = parser.parse_args()
    settings = Settings.from_env()
    embedder = load_embedder(settings)
    model = embedder.model
    texts = _passages(args.records, settings)
    prompt = model.prompts.get("document", "")
    tokens = sum(len(model.tokenizer(prompt + t, truncation=True, max_length=512)["input_ids"])
                 for t in texts)  # fmt: skip
    embedder.encode(texts[:8], kind="passage")  # warm up
    kb_s, bare_s = [], []
    for _ in range(args.repeat):  # alternate so drift hits both equally
        kb_s.append(_timed(lambda: embedder.encode(texts, kind="passage")))
        bare_s.append(_timed(lambda: model.encode(
            texts, prompt_name="document", batch_size=settings.batch_size,
            normalize_embeddings=True)))  # fmt: skip
    kb_best, bare_best = min(kb_s), min(bare_s)
    machine = f"{platform.machine()} {platform.processor() or ''}".strip()
    print(f"machine: {machine}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"model: {settings.model}; {len(texts)} passages, {tokens} tokens, best of {args.repeat}")
    print(f"kb ingest embedding : {tokens / kb_best:8.0f} tokens/s ({kb_best:.2f} s)")
    print(f"bare ST encode      : {tokens / bare_best:8.0f} tokens/s ({bare_best:.2f} s)")
    print(f"ratio kb / bare     : {bare_best / kb_best:8.3f}")


if __name__ == "__main__":
    main()
