"""Translation links on the shared bilingual safety papers: precision and recall of index/linker.

Each of N safety papers (../shared/data/xling/safety_pairs_dev.jsonl, read in place) is a paper
in English AND a paper in Chinese (title + abstract): N known translation pairs. M distractor
papers (general_distractors_3000.jsonl) are added in one language only, alternating English and
Chinese: they have no translation, so any link to one is a false positive. Papers are chunked
and embedded as passages exactly as ingest does (``chunk_text`` + ``passage_text``, by the main
model and by mUSE); a paper's vector is the normalised mean of its chunk vectors
(``index.linker.paper_vector``). No identifiers are given: every link comes from embeddings.

Prints precision and recall of the linker (both encoders, and each alone) at several margin
thresholds, and of raw-cosine mutual nearest neighbours for comparison; then the linker's time
on 10,000 random papers. Settings (KB_MODEL, KB_MODEL_DIR, chunking) come from the environment.

    .venv/bin/python bench/translation_links.py [--papers 493] [--distractors 3000]
        [--thresholds 0.5 1 1.5 2 3] [--cache FILE.npz] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from benchlib import machine

from index.linker import LINK_THRESHOLD, Link, find_translations, paper_vector
from kb.settings import Settings

XLING = Path(__file__).resolve().parents[2] / "shared" / "data" / "xling"
SAFETY = XLING / "safety_pairs_dev.jsonl"
DISTRACTORS = XLING / "general_distractors_3000.jsonl"
THRESHOLDS = (0.5, 1.0, 1.5, 2.0, 3.0)
ENCODERS = ("main", "muse")
SMALL_SIZES = ((8, 0), (20, 20), (50, 50), (100, 200))  # (translated pairs, distractors)


@dataclass(frozen=True)
class Paper:
    key: str
    lang: str
    title: str
    abstract: str


@dataclass(frozen=True)
class Score:
    """One configuration's links against the known pairs."""

    name: str
    links: int
    correct: int
    to_distractor: int  # links that touch a paper without a translation
    pairs: int

    @property
    def precision(self) -> float:
        return self.correct / self.links if self.links else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.pairs if self.pairs else 0.0

    def row(self) -> str:
        wrong = self.links - self.correct
        return (
            f"| {self.name} | {self.links} | {self.correct} | {wrong} | {self.to_distractor} | "
            f"{self.precision:.3f} | {self.recall:.3f} |"
        )


def _read(path: Path, n: int) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()[:n]
    return [json.loads(line) for line in lines]


def build_papers(n_papers: int, n_distractors: int) -> tuple[list[Paper], set[tuple[int, int]]]:
    """Papers (each safety record in both languages, then the distractors) and the true pairs."""
    safety = _read(SAFETY, n_papers)
    papers = [
        Paper(r["id"], lang, r[f"{lang}_title"], r[lang]) for lang in ("en", "zh") for r in safety
    ]
    for i, r in enumerate(_read(DISTRACTORS, n_distractors)):
        lang = "en" if i % 2 == 0 else "zh"
        papers.append(Paper(r["id"], lang, r[f"{lang}_title"], r[lang]))
    truth = {(i, i + len(safety)) for i in range(len(safety))}
    return papers, truth


def embed_papers(papers: list[Paper], embedder: Any, settings: Settings) -> np.ndarray:
    """One vector per paper: the normalised mean of its chunks' passage vectors, as ingested."""
    from ingest.chunking import chunk_text
    from kb.library.encoders import passage_text

    texts: list[str] = []
    owner: list[int] = []
    for p, paper in enumerate(papers):
        body = f"{paper.title}\n{paper.abstract}"
        for chunk in chunk_text(
            body, max_tokens=settings.chunk_tokens, overlap=settings.chunk_overlap
        ):
            texts.append(passage_text(paper.title, chunk.text))
            owner.append(p)
    vecs = embedder.encode(texts, kind="passage", progress=True)
    rows = np.asarray(owner)
    return np.stack([paper_vector(vecs[rows == p]) for p in range(len(papers))])


def load_vectors(
    papers: list[Paper], settings: Settings, cache: Path | None
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Paper vectors per encoder; with ``cache``, only papers not embedded before are embedded."""
    from index.embedder import load_embedder
    from index.muse import MuseEmbedder

    makers: dict[str, Callable[[], Any]] = {
        "main": lambda: load_embedder(settings),
        "muse": MuseEmbedder,
    }
    vectors, names = {}, {}
    for enc in ENCODERS:
        embedder = makers[enc]()
        names[enc] = embedder.name
        setup = f"{embedder.fingerprint}|{settings.chunk_tokens}|{settings.chunk_overlap}"
        keys = [f"{setup}|{p.key}|{p.lang}" for p in papers]
        known = _read_cache(cache, enc)
        missing = [i for i, key in enumerate(keys) if key not in known]
        if missing:
            started = time.perf_counter()
            fresh = embed_papers([papers[i] for i in missing], embedder, settings)
            print(f"{embedder.name}: {len(missing)} papers, {time.perf_counter() - started:.0f} s")
            known.update({keys[i]: vec for i, vec in zip(missing, fresh, strict=True)})
            _write_cache(cache, enc, known)
        vectors[enc] = np.stack([known[key] for key in keys])
    return vectors, names


def _read_cache(cache: Path | None, enc: str) -> dict[str, np.ndarray]:
    if cache is None or not cache.exists():
        return {}
    with np.load(cache) as data:
        if f"{enc}_keys" not in data:
            return {}
        return dict(zip(data[f"{enc}_keys"].tolist(), data[enc], strict=True))


def _write_cache(cache: Path | None, enc: str, known: dict[str, np.ndarray]) -> None:
    if cache is None:
        return
    arrays: dict[str, np.ndarray] = {}
    if cache.exists():
        with np.load(cache) as data:
            arrays = {name: data[name] for name in data.files}
    arrays[f"{enc}_keys"] = np.asarray(list(known))
    arrays[enc] = np.stack(list(known.values()))
    with cache.open("wb") as f:
        np.savez(f, **arrays)


def score(
    name: str, links: list[tuple[int, int]], truth: set[tuple[int, int]], n_pairs: int
) -> Score:
    """Links (a < b) against the true pairs; papers from ``2 * n_pairs`` on are distractors."""
    got = set(links)
    first = 2 * n_pairs
    loose = sum(1 for a, b in got if a >= first or b >= first)
    return Score(name, len(got), len(got & truth), loose, len(truth))


def mutual_best(sims: np.ndarray, en: np.ndarray, zh: np.ndarray) -> list[tuple[int, int, float]]:
    """(a, b, similarity), a < b, of the English/Chinese pairs that are each other's best."""
    best_zh, best_en = sims.argmax(axis=1), sims.argmax(axis=0)
    rows = np.flatnonzero(best_en[best_zh] == np.arange(len(en)))
    return [
        (min(en[i], zh[best_zh[i]]), max(en[i], zh[best_zh[i]]), float(sims[i, best_zh[i]]))
        for i in rows.tolist()
    ]


def raw_mutual_nn(vecs: np.ndarray, langs: list[str]) -> list[tuple[int, int]]:
    """English/Chinese pairs that are each other's nearest neighbour by raw cosine."""
    en, zh = (np.flatnonzero(np.asarray(langs) == lang) for lang in ("en", "zh"))
    return [(a, b) for a, b, _ in mutual_best(vecs[en] @ vecs[zh].T, en, zh)]


def ranking_quality(
    scored: list[tuple[int, int, float]], truth: set[tuple[int, int]]
) -> tuple[float, float]:
    """Best F1 over all thresholds, and recall at precision >= 0.99, of links ranked by score."""
    ordered = sorted(scored, key=lambda t: -t[2])
    ok = np.asarray([(a, b) in truth for a, b, _ in ordered], dtype=np.float64)
    if not len(ok):
        return 0.0, 0.0
    tp = np.cumsum(ok)
    precision, recall = tp / np.arange(1, len(ok) + 1), tp / len(truth)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    sure = recall[precision >= 0.99]
    return float(f1.max()), float(sure.max()) if len(sure) else 0.0


def ablations(
    vectors: dict[str, np.ndarray], langs: list[str], truth: set[tuple[int, int]]
) -> list[tuple[str, float, float]]:
    """(method, best F1, recall at precision >= 0.99): what each step of the linker buys."""
    en, zh = (np.flatnonzero(np.asarray(langs) == lang) for lang in ("en", "zh"))

    def zsum(centre: bool) -> np.ndarray:
        total = np.zeros((len(en), len(zh)))
        for v in vectors.values():
            x = v.astype(np.float64)
            if centre:
                x[en] -= x[en].mean(axis=0)
                x[zh] -= x[zh].mean(axis=0)
                x /= np.linalg.norm(x, axis=1, keepdims=True)
            sims = x[en] @ x[zh].T
            total += (sims - sims.mean()) / sims.std()
        return total

    main = vectors["main"]
    links = find_translations(list(vectors.values()), langs, threshold=-1e9)
    rows = {
        "raw cosine, main model": mutual_best(main[en] @ main[zh].T, en, zh),
        "raw cosines z-summed, both encoders": mutual_best(zsum(False), en, zh),
        "+ language centring (no margin)": mutual_best(zsum(True), en, zh),
        "+ margin: the linker": [(link.a, link.b, link.score) for link in links],
    }
    return [(name, *ranking_quality(scored, truth)) for name, scored in rows.items()]


def evaluate(
    vectors: dict[str, np.ndarray],
    names: dict[str, str],
    langs: list[str],
    truth: set[tuple[int, int]],
    thresholds: list[float],
) -> tuple[list[Score], dict[str, float]]:
    """Scores of raw cosine and of the linker per encoder set and threshold; linker seconds."""
    n_pairs = len(truth)
    scores = [
        score(
            f"raw cosine, mutual NN, {names[enc]}",
            raw_mutual_nn(vectors[enc], langs),
            truth,
            n_pairs,
        )
        for enc in ENCODERS
    ]
    timing: dict[str, float] = {}
    for encs in (ENCODERS, ("main",), ("muse",)):
        label = " + ".join(names[e] for e in encs)
        started = time.perf_counter()
        links: list[Link] = find_translations([vectors[e] for e in encs], langs, threshold=-1e9)
        timing[label] = time.perf_counter() - started
        for t in thresholds:
            kept = [(link.a, link.b) for link in links if link.score >= t]
            mark = " (default)" if t == LINK_THRESHOLD else ""
            scores.append(score(f"linker, {label}, margin >= {t:g}{mark}", kept, truth, n_pairs))
    return scores, timing


def small_libraries(
    vectors: dict[str, np.ndarray], langs: list[str], n_pairs: int, reps: int = 30
) -> list[tuple[int, int, float, float]]:
    """(pairs, distractors, precision, recall) at the default threshold, both encoders, over
    ``reps`` random libraries of each size drawn from the papers (seed 0)."""
    rng = np.random.default_rng(0)
    n_distractors = len(langs) - 2 * n_pairs
    out = []
    for pairs, others in SMALL_SIZES:
        if pairs > n_pairs or others > n_distractors:
            continue
        links = correct = 0
        for _ in range(reps):
            chosen = rng.choice(n_pairs, pairs, replace=False)
            extra = 2 * n_pairs + rng.choice(n_distractors, others, replace=False)
            rows = np.concatenate([chosen, chosen + n_pairs, extra])
            found = find_translations([v[rows] for v in vectors.values()], [langs[r] for r in rows])
            links += len(found)
            correct += sum(
                rows[link.a] < n_pairs and rows[link.b] == rows[link.a] + n_pairs for link in found
            )
        out.append((pairs, others, correct / max(links, 1), correct / (pairs * reps)))
    return out


def time_at_scale(n: int, dims: list[int]) -> float:
    """Seconds the linker takes for ``n`` random papers, half English, half Chinese."""
    rng = np.random.default_rng(0)
    vecs = [rng.normal(size=(n, d)).astype(np.float32) for d in dims]
    vecs = [v / np.linalg.norm(v, axis=1, keepdims=True) for v in vecs]
    langs = ["en" if i % 2 == 0 else "zh" for i in range(n)]
    started = time.perf_counter()
    find_translations(vecs, langs)
    return time.perf_counter() - started


def report(
    scores: list[Score],
    steps: list[tuple[str, float, float]],
    small: list[tuple[int, int, float, float]],
    timing: dict[str, float],
    scale: tuple[int, float],
    n: int,
) -> str:
    lines = [
        f"{n} papers; every link is to one known translation or a false positive.\n",
        "| method | links | correct | wrong | wrong, to a distractor | precision | recall |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(s.row() for s in scores),
        "",
        "Threshold-free: mutual best pairs ranked by each method's score (best F1 over all",
        "thresholds; recall while precision >= 0.99).\n",
        "| method | best F1 | recall at precision >= 0.99 |",
        "|---|---:|---:|",
        *(f"| {name} | {f1:.3f} | {recall:.3f} |" for name, f1, recall in steps),
        "",
        "Small libraries: 30 random draws of each size, both encoders, default threshold.\n",
        "| translated pairs | papers without translation | precision | recall |",
        "|---:|---:|---:|---:|",
        *(f"| {p} | {d} | {prec:.3f} | {rec:.3f} |" for p, d, prec, rec in small),
        "",
        *(f"- linker time, {label}: {sec:.2f} s" for label, sec in timing.items()),
        f"- linker time, {scale[0]:,} random papers (both encoders' dimensions): {scale[1]:.2f} s",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=493, help="safety papers (max 493)")
    parser.add_argument("--distractors", type=int, default=3000, help="distractors (max 3000)")
    parser.add_argument("--thresholds", type=float, nargs="+", default=list(THRESHOLDS))
    parser.add_argument("--cache", type=Path, help="keep paper vectors in this .npz file")
    parser.add_argument("--scale", type=int, default=10_000, help="papers for the timing run")
    parser.add_argument("--markdown", type=Path, help="also write the table and setup here")
    args = parser.parse_args()
    settings = Settings.from_env()
    started = time.perf_counter()
    papers, truth = build_papers(args.papers, args.distractors)
    vectors, names = load_vectors(papers, settings, args.cache)
    langs = [p.lang for p in papers]
    scores, timing = evaluate(vectors, names, langs, truth, args.thresholds)
    dims = [v.shape[1] for v in vectors.values()]
    steps = ablations(vectors, langs, truth)
    small = small_libraries(vectors, langs, len(truth))
    scale = (args.scale, time_at_scale(args.scale, dims))
    text = report(scores, steps, small, timing, scale, len(papers))
    wall_s = time.perf_counter() - started
    print(text, end="")
    if args.markdown:
        args.markdown.write_text(
            "# Translation links (bench/translation_links.py)\n\n"
            f"- command: `{shlex.join(['python', *sys.argv])}`\n"
            f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}\n"
            f"- machine: {machine()}\n"
            f"- encoders: {', '.join(names.values())}; KB_CHUNK_TOKENS={settings.chunk_tokens}\n"
            f"- wall time: {wall_s:.0f} s\n\n{text}",
            encoding="utf-8",
        )


if __name__ == "__main__":
    main()
