"""Cross-language retrieval with raw cosine vs kb's calibration (index/calibration.py).

Indexes N bilingual safety-paper records from ../shared/data/xling, even ones in English and odd
ones in Chinese (title + abstract), queries each with its title in the other language, and
prints Recall@10 and MRR@10 for: raw cosine, language-mean centring, centring + per-language
z-scores (what kb search does).

    .venv/bin/python bench/cross_language.py [--records 160]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from index.calibration import LanguageMeans, LanguageStats
from index.embedder import load_embedder
from kb.settings import Settings

DEV_SET = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "xling" / "safety_pairs_dev.jsonl"
)


def _metrics(scores: np.ndarray) -> tuple[float, float]:
    """Recall@10 and MRR@10 when query i's relevant document is document i."""
    ranks = np.asarray([int((row > row[i]).sum()) for i, row in enumerate(scores)])
    return float((ranks < 10).mean()), float(np.where(ranks < 10, 1 / (ranks + 1), 0).mean())


def _zscored(q: np.ndarray, d: np.ndarray, d_langs: list[str]) -> np.ndarray:
    stats = LanguageStats.from_batches([(d, d_langs)], d.shape[1])
    out = q @ d.T
    for lang in set(d_langs):
        cols = np.asarray(d_langs) == lang
        for i in range(len(q)):
            out[i, cols] = stats.zscore(q[i], out[i, cols], lang)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=160)
    args = parser.parse_args()
    lines = DEV_SET.read_text(encoding="utf-8").splitlines()[: args.records]
    recs = [json.loads(line) for line in lines]
    d_langs = ["en" if i % 2 == 0 else "zh" for i in range(len(recs))]
    q_langs = ["zh" if lang == "en" else "en" for lang in d_langs]
    embedder = load_embedder(Settings.from_env())
    docs = [f"{r[f'{lg}_title']}\n{r[lg][:600]}" for r, lg in zip(recs, d_langs, strict=True)]
    queries = [r[f"{lg}_title"] for r, lg in zip(recs, q_langs, strict=True)]
    d = embedder.encode(docs, kind="passage")
    q = embedder.encode(queries, kind="query")
    means = LanguageMeans.compute(embedder)
    dc, qc = means.center(d, d_langs, "passage"), means.center(q, q_langs, "query")
    print(f"{len(recs)} records, other-language title queries, model {embedder.name}")
    for name, scores in (
        ("raw cosine", q @ d.T),
        ("language-mean centring", qc @ dc.T),
        ("centring + per-language z (kb)", _zscored(qc, dc, d_langs)),
    ):
        recall, mrr = _metrics(scores)
        print(f"{name:32} Recall@10 {recall:.3f}  MRR@10 {mrr:.3f}")


if __name__ == "__main__":
    main()
