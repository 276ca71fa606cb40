"""Fit the cross-language alignments shipped in index/alignment_data/ (index/alignment.py).

Training pairs: ../shared/data/xling/llm_papers_all.jsonl.gz (27,487 papers, English and
Chinese title + abstract each), read in place, WITHOUT every id of the standard evaluation
(safety_pairs_dev.jsonl: its targets; general_distractors_3000.jsonl: its distractors), so the
standard evaluation never sees a fitted pair, nor the full-text evaluation's papers
(``fulltext_ids``: two of its 56 PDFs are records there). The rest is shuffled (seed 0) and
split: the first ``--heldout`` pairs are a test split no one tunes on, the next ones train.

Each pair is embedded as kb embeds a record (title + abstract as a passage), centred on kb's
reference language means, then:

- multilingual-e5-small: orthogonal Procrustes map zh -> en (``--e5-pairs`` pairs);
- muse-v3: the top ``--muse-k`` principal directions of the paired zh - en differences are
  removed from every vector (``--muse-pairs`` pairs).

On the held-out split (documents: even pairs in English, odd ones in Chinese; queries: every
pair's title in both languages, embedded as queries) it prints title nDCG@10 and Recall@10
per direction, before and after, per encoder and summed (kb adds the two encoders'
per-language z-scores), with a paired bootstrap 95 % interval of the change, then writes
index/alignment_data/<encoder>.npz (``--dry-run``: nothing written).

    .venv/bin/python bench/fit_alignment.py [--e5-pairs 3000] [--muse-pairs 500]
        [--heldout 1000] [--cache /tmp/kb-align-cache] [--dry-run]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from index.alignment import ALIGNMENT_DIR, Alignment, fit_procrustes, fit_projection
from index.calibration import LanguageMeans, LanguageStats
from index.dense import aligned_means
from index.embedder import Embedder, load_embedder
from index.muse import MuseEmbedder
from kb.library.encoders import passage_text
from kb.settings import Settings

XLING = Path(__file__).resolve().parents[2] / "shared" / "data" / "xling"
ALL_PAIRS = XLING / "llm_papers_all.jsonl.gz"
EVAL_FILES = (XLING / "safety_pairs_dev.jsonl", XLING / "general_distractors_3000.jsonl")
PDF_SOURCES = tuple(XLING.parent / f / "SOURCES.tsv" for f in ("pdfs", "pdfs-dev"))
# Papers of the full-text evaluation that are also records of ALL_PAIRS, found by matching
# the titles of its 56 PDFs (2026-12-06): pdfs/en_garak_llm_vulnerability_scanner_paper.pdf
# and pdfs-dev/en_jailbreakbench_2024.pdf (also a dev target). Dropped like the others.
FULLTEXT_IDS = frozenset({"arxiv:2406.11036", "arxiv:2404.01318"})
ARXIV_ID = re.compile(r"(?<![\d.])(\d{4}\.\d{4,5})(?:v\d+)?(?![\d])")
LANGS = ("en", "zh")
FIELDS = ("id", "en_title", "zh_title", "en", "zh")


def fulltext_ids() -> set[str]:
    """Ids of the full-text evaluation's PDFs: FULLTEXT_IDS and every arXiv id named in the
    PDFs' SOURCES.tsv (their file paths often carry it)."""
    found = set(FULLTEXT_IDS)
    for path in PDF_SOURCES:
        if path.is_file():
            found |= {f"arxiv:{m}" for m in ARXIV_ID.findall(path.read_text(encoding="utf-8"))}
    return found


def read_pairs() -> tuple[list[dict[str, Any]], int]:
    """Usable pairs of ALL_PAIRS minus every id of both evaluations, shuffled (seed 0), and
    how many were dropped as evaluation ids."""
    standard = {
        json.loads(line)["id"]
        for path in EVAL_FILES
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    }
    with gzip.open(ALL_PAIRS, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    usable = [r for r in rows if all(str(r.get(k) or "").strip() for k in FIELDS)]
    kept = [r for r in usable if r["id"] not in standard]
    random.Random(0).shuffle(kept)
    fulltext = fulltext_ids()  # dropped after the shuffle: the others keep their order
    kept = [r for r in kept if r["id"] not in fulltext]
    return kept, len(usable) - len(kept)


def _embed(
    embedder: Embedder, texts: list[str], kind: str, cache: Path | None, key: str
) -> np.ndarray:
    path = None if cache is None else cache / f"{embedder.name}-{embedder.fingerprint}-{key}.npy"
    if path is not None and path.is_file():
        vecs = np.load(path)
        if len(vecs) == len(texts):
            return vecs
    vecs = embedder.encode(texts, kind=kind)  # type: ignore[arg-type]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vecs)
    return vecs


def embed_pairs(
    embedder: Embedder, pairs: list[dict[str, Any]], cache: Path | None, key: str
) -> dict[str, np.ndarray]:
    """Raw passage vectors (title + abstract) of each pair, per language."""
    return {
        lang: _embed(
            embedder,
            [passage_text(r[f"{lang}_title"], r[lang]) for r in pairs],
            "passage",
            cache,
            f"{key}-{lang}",
        )
        for lang in LANGS
    }


def fit(
    embedder: Embedder, kind: str, train: dict[str, np.ndarray], means: LanguageMeans, k: int
) -> Alignment:
    n = len(train["en"])
    x = {lang: means.center(train[lang], [lang] * n, "passage") for lang in LANGS}
    if kind == "procrustes":
        matrix = fit_procrustes(x["zh"], x["en"])
    else:
        matrix = fit_projection(x["zh"], x["en"], k)
    return Alignment(kind, matrix, embedder.fingerprint)


def zscores(
    means: LanguageMeans,
    docs: np.ndarray,
    d_langs: list[str],
    queries: np.ndarray,
    q_langs: list[str],
    alignment: Alignment | None,
) -> np.ndarray:
    """[queries x docs] per-language z-scores, as kb computes them (centring, the alignment
    when given, statistics shrunk toward the reference sample, the sd floor)."""
    d = means.center(docs, d_langs, "passage")
    q = means.center(queries, q_langs, "query")
    if alignment is not None:
        d, q = alignment.apply(d, d_langs), alignment.apply(q, q_langs)
        means = aligned_means(means, alignment)
    stats = LanguageStats.from_batches(
        [(d, d_langs)], d.shape[1], means.reference_stats(), queries=means.typical_queries()
    )
    out = (q @ d.T).astype(np.float64)
    for lang in set(d_langs):
        cols = np.asarray(d_langs) == lang
        for i in range(len(q)):
            out[i, cols] = stats.zscore(q[i], out[i, cols], lang)
    return out


def per_query(scores: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """nDCG@10 (one relevant document) and Recall@10 of each query."""
    own = scores[np.arange(len(scores)), target]
    ranks = (scores > own[:, None]).sum(axis=1)
    ndcg = np.where(ranks < 10, 1.0 / np.log2(ranks + 2.0), 0.0)
    return ndcg, (ranks < 10).astype(float)


def interval(delta: np.ndarray, rounds: int = 2000) -> tuple[float, float]:
    """Paired bootstrap 95 % interval of the mean of ``delta`` (seed 0)."""
    rng = np.random.default_rng(0)
    means = rng.choice(delta, size=(rounds, len(delta)), replace=True).mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def report(label: str, before: np.ndarray, after: np.ndarray, heldout: list[dict]) -> None:
    """Print nDCG@10 / Recall@10 per direction, before -> after, with the change's interval."""
    n = len(heldout)
    d_langs = ["en" if i % 2 == 0 else "zh" for i in range(n)]
    print(f"\n{label}: held-out title queries over {n} title+abstract documents")
    print("| direction | queries | nDCG@10 before | after | change (95 % CI) | R@10 | after |")
    print("|---|---|---|---|---|---|---|")
    for q_lang in LANGS:
        for d_lang in LANGS:
            rows = np.asarray([d == d_lang for d in d_langs])
            idx = np.flatnonzero(rows)
            span = slice(0, n) if q_lang == "en" else slice(n, 2 * n)
            b_n, b_r = per_query(before[span][idx], idx)
            a_n, a_r = per_query(after[span][idx], idx)
            lo, hi = interval(a_n - b_n)
            name = f"{q_lang.upper()}->{d_lang.upper()}"
            print(
                f"| {name} | {len(idx)} | {b_n.mean():.3f} | {a_n.mean():.3f} | "
                f"{a_n.mean() - b_n.mean():+.3f} ({lo:+.3f}, {hi:+.3f}) | "
                f"{b_r.mean():.3f} | {a_r.mean():.3f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--e5-pairs", type=int, default=3000, help="training pairs for e5")
    parser.add_argument("--muse-pairs", type=int, default=500, help="training pairs for mUSE")
    parser.add_argument("--muse-k", type=int, default=8, help="directions removed for mUSE")
    parser.add_argument("--heldout", type=int, default=1000, help="held-out test pairs")
    parser.add_argument("--cache", type=Path, help="keep the embeddings here between runs")
    parser.add_argument("--dry-run", action="store_true", help="fit and report, write nothing")
    args = parser.parse_args()
    pairs, dropped = read_pairs()
    heldout, train = pairs[: args.heldout], pairs[args.heldout :]
    print(f"{len(pairs)} usable pairs after dropping {dropped} evaluation ids; "
          f"{len(heldout)} held out")  # fmt: skip
    settings = Settings.from_env()
    encoders: list[tuple[Embedder, str, int]] = [
        (load_embedder(settings), "procrustes", args.e5_pairs),
        (MuseEmbedder(), "project-out", args.muse_pairs),
    ]
    d_langs = ["en" if i % 2 == 0 else "zh" for i in range(len(heldout))]
    q_langs = ["en"] * len(heldout) + ["zh"] * len(heldout)
    q_texts = [r["en_title"] for r in heldout] + [r["zh_title"] for r in heldout]
    summed = [np.zeros((len(q_texts), len(heldout))) for _ in range(2)]
    for embedder, kind, n_train in encoders:
        started = time.perf_counter()
        means = LanguageMeans.compute(embedder)
        vecs = embed_pairs(embedder, train[:n_train], args.cache, f"train{n_train}")
        embedded = time.perf_counter() - started
        alignment = fit(embedder, kind, vecs, means, args.muse_k)
        fitted = time.perf_counter() - started - embedded
        doc_texts = [
            passage_text(r[f"{g}_title"], r[g]) for r, g in zip(heldout, d_langs, strict=True)
        ]
        docs = _embed(embedder, doc_texts, "passage", args.cache, f"docs{len(heldout)}")
        queries = _embed(embedder, q_texts, "query", args.cache, f"titles{len(heldout)}")
        before = zscores(means, docs, d_langs, queries, q_langs, None)
        after = zscores(means, docs, d_langs, queries, q_langs, alignment)
        summed[0] += before
        summed[1] += after
        print(f"\n{embedder.name}: {kind} on {n_train} pairs (embedding {embedded:.0f} s, "
              f"fitting {fitted:.2f} s), {alignment.fingerprint}")  # fmt: skip
        report(embedder.name, before, after, heldout)
        if not args.dry_run:
            path = ALIGNMENT_DIR / f"{embedder.name}.npz"
            alignment.save(path)
            print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    report("summed (both encoders, as kb ranks)", summed[0], summed[1], heldout)


if __name__ == "__main__":
    main()
