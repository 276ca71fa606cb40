"""Make English and Chinese scores comparable.

A multilingual model puts each language in its own region of the space, so a query's
same-language neighbours outrank the true paper in the other language (measured on 160
AI-paper records half in each language, other-language title queries: Recall@10 0.16 raw).
Two corrections fix most of it, with no knowledge of the target language:

1. ``LanguageMeans``: subtract each language's mean vector, taken from a fixed bilingual
   reference sample (``reference_titles.jsonl``, 80 title pairs we wrote) embedded with the
   query prompt for queries and the passage prompt for documents; then re-normalise
   (same data: Recall@10 0.89).
2. ``LanguageStats``: z-score a query's scores within each document language before merging,
   with mean ``q.mu_l`` and std ``sqrt(q^T C_l q)`` from that language's centred vectors, so
   no scan of the library is needed (same data: Recall@10 0.96).

A query far from everything in the library (an off-topic query) has little spread of scores
in any language, and dividing by that small standard deviation turns its luckiest chunk into
a high z-score: "quantum chromodynamics" would score like a real match. So the standard
deviation never goes below ``SD_FLOOR_FACTOR`` times that of a typical AI-safety query (the
reference titles, embedded as queries, against the library's own chunks of that language):
an off-topic query's scores stay low, and a weak cross-language pair no longer amplifies
noise (docs/EVALUATION.md, the relevance floor).

A language with few chunks gives noisy statistics (a mean and covariance from 30 vectors in
384 dimensions), so each language's moments are shrunk toward those of the same reference
sample (its titles embedded as passages and centred): with ``n`` chunks the library counts for
``n / (n + PRIOR_CHUNKS)`` of them. A three-paper language then scores like a large one, and
one more paper barely moves anything (docs/EVALUATION.md, small libraries).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.embedder import Embedder

REFERENCE_FILE = Path(__file__).with_name("reference_titles.jsonl")
REFERENCE_LANGS = ("en", "zh")
MIN_CHUNKS_FOR_STATS = 8  # below this a language borrows the pooled statistics
# Weight of the reference sample's moments, in chunks: a language with this many chunks is
# half library, half reference (docs/EVALUATION.md, small libraries).
PRIOR_CHUNKS = 200
# Passages vary less than titles: on two large libraries (the full-text PDFs and the standard
# title+abstract set) the chunks' covariance had 0.61-0.68 times the trace of the reference
# titles' (both encoders, both languages), so the reference covariance is scaled by this.
REFERENCE_SPREAD = 0.65
# The lowest standard deviation a query's scores get, as a multiple of the median one of the
# reference titles used as queries (docs/EVALUATION.md, the relevance floor).
SD_FLOOR_FACTOR = 1.5
# A ranking's order is taken with a lower floor, that of a typical query's spread itself
# (the score shown keeps all of SD_FLOOR_FACTOR): measured on both evaluations, a floor of 1.5
# in the order cost the standard run's cross-language rows 0.02-0.04, and none at all cost the
# full text's ZH->EN 0.04 (docs/EVALUATION.md, "the floor in the order").
RANK_FLOOR_FACTOR = 1.0
RANK_FLOOR = RANK_FLOOR_FACTOR / SD_FLOOR_FACTOR  # the share of the floor, for ``zscore``
OUTER_BLOCK = 64  # columns (rows, when saved) of the running outer-product sums at a time


def _normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


@dataclass(frozen=True)
class LanguageMeans:
    """Per-language mean embeddings of the reference sample, for queries and for passages."""

    query: dict[str, np.ndarray]
    passage: dict[str, np.ndarray]
    # the reference titles embedded as passages and centred: each language's sample, whose
    # moments small languages are shrunk toward (``LanguageStats``)
    sample: dict[str, np.ndarray]
    # the same titles embedded as queries and centred: typical queries (the score floor)
    queries: dict[str, np.ndarray]

    @classmethod
    def compute(cls, embedder: Embedder) -> LanguageMeans:
        rows = [json.loads(line) for line in REFERENCE_FILE.read_text("utf-8").splitlines()]
        query, passage, raw, raw_q = {}, {}, {}, {}
        for lang in REFERENCE_LANGS:
            titles = [r[lang] for r in rows]
            raw_q[lang] = embedder.encode(titles, kind="query")
            query[lang] = raw_q[lang].mean(axis=0)
            raw[lang] = embedder.encode(titles, kind="passage")
            passage[lang] = raw[lang].mean(axis=0)
        means = cls(query=query, passage=passage, sample={}, queries={})
        for lang in REFERENCE_LANGS:
            langs = [lang] * len(rows)
            means.sample[lang] = means.center(raw[lang], langs, "passage")
            means.queries[lang] = means.center(raw_q[lang], langs, "query")
        return means

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {f"{kind}_{lang}": vec for kind in ("query", "passage", "sample", "queries")
                for lang, vec in getattr(self, kind).items()}  # fmt: skip

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> LanguageMeans | None:
        """The saved means, or None when the file predates a part (then compute again)."""
        out: dict[str, dict[str, np.ndarray]] = {
            "query": {}, "passage": {}, "sample": {}, "queries": {}
        }  # fmt: skip
        for name, vec in arrays.items():
            kind, lang = name.split("_", 1)
            if kind in out:
                out[kind][lang] = np.asarray(vec, dtype=np.float32)
        if any(set(part) != set(REFERENCE_LANGS) for part in out.values()):
            return None
        return cls(out["query"], out["passage"], out["sample"], out["queries"])

    def typical_queries(self) -> np.ndarray:
        """The centred reference queries of every language, one per row."""
        return np.concatenate([self.queries[lang] for lang in REFERENCE_LANGS])

    def reference_stats(self) -> LanguageStats:
        """Moments of the centred reference sample, per language (the shrinkage target); its
        covariance is scaled by ``REFERENCE_SPREAD``: titles are more varied than passages."""
        batches = [(vecs, [lang] * len(vecs)) for lang, vecs in self.sample.items()]
        stats = LanguageStats.from_batches(batches, batches[0][0].shape[1])
        cov = {lang: REFERENCE_SPREAD * c for lang, c in stats.cov.items()}
        return dataclasses.replace(stats, cov=cov)

    def center(self, vectors: np.ndarray, langs: list[str], kind: str) -> np.ndarray:
        """Subtract each row's language mean and re-normalise (other languages: the average)."""
        means = self.query if kind == "query" else self.passage
        fallback: np.ndarray = np.mean(list(means.values()), axis=0)
        shift = np.stack([means.get(lang, fallback) for lang in langs]) if langs else 0.0
        return _normalize(np.asarray(vectors, dtype=np.float32) - shift)


@dataclass(frozen=True)
class LanguageStats:
    """Mean and covariance of the centred chunk vectors of each document language."""

    mean: dict[str, np.ndarray]
    cov: dict[str, np.ndarray]
    counts: dict[str, int]
    shrunk_langs: frozenset[str] = frozenset()  # languages blended with reference moments
    sd_floor: dict[str, float] = field(default_factory=dict)  # lowest std per language

    @classmethod
    def from_batches(
        cls,
        batches: list[tuple[np.ndarray, list[str]]],
        dim: int,
        prior: LanguageStats | None = None,
        prior_chunks: int = PRIOR_CHUNKS,
        queries: np.ndarray | None = None,
    ) -> LanguageStats:
        """Moments of each language of the batches (and ``*``: all of them pooled).

        Args:
            prior: reference moments; a language it has is shrunk toward them, the library
                weighing ``n / (n + prior_chunks)`` with ``n`` chunks (a language it lacks,
                and ``*``, are the library's own).
            queries: typical queries (one per row): each language's standard deviation floor
                is ``SD_FLOOR_FACTOR`` times their median standard deviation over the
                library's own chunks of that language (the pooled one under
                ``MIN_CHUNKS_FOR_STATS`` chunks).
        """
        moments = Moments.empty(dim)
        for vecs, langs in batches:
            moments.add(vecs, langs)
        return moments.stats(prior, prior_chunks, queries)

    def shrunk(self, prior: LanguageStats, prior_chunks: int) -> LanguageStats:
        """These moments blended with ``prior``'s, language by language (see from_batches)."""
        mean, cov = dict(self.mean), dict(self.cov)
        for lang, n in self.counts.items():
            if lang == "*" or lang not in prior.mean:
                continue
            w = n / (n + prior_chunks)
            # the estimates are blended, not the populations: a library whose chunks of one
            # language are all on one topic would otherwise gain the gap between its mean and
            # the reference's as spread, in the very direction of a query on that topic
            mean[lang] = w * self.mean[lang] + (1 - w) * prior.mean[lang]
            cov[lang] = w * self.cov[lang] + (1 - w) * prior.cov[lang]
        langs = frozenset(lang for lang in self.counts if lang != "*" and lang in prior.mean)
        return LanguageStats(mean, cov, dict(self.counts), langs, dict(self.sd_floor))

    def sd_floors(self, queries: np.ndarray, factor: float = SD_FLOOR_FACTOR) -> dict[str, float]:
        """Per language: ``factor`` times the median standard deviation of the scores of
        ``queries`` (typical queries, one per row) over these chunks."""
        q = queries.astype(np.float64)
        floor = {}
        for lang, cov in self.cov.items():
            spread = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", q, cov, q), 0.0))
            floor[lang] = factor * float(np.median(spread))
        for lang, n in self.counts.items():
            if n < MIN_CHUNKS_FOR_STATS and "*" in floor:
                floor[lang] = floor["*"]
        return floor

    def zscore(
        self, query: np.ndarray, scores: np.ndarray, lang: str, *, floor: float = 1.0
    ) -> np.ndarray:
        """Scores of ``query`` against chunks of ``lang`` as z-scores within that language.

        ``floor``: how much of the language's standard-deviation floor the query's spread is
        raised to: all of it for the score a result shows, ``RANK_FLOOR`` for the order of a
        ranking (a floor that binds in one language only pushes its matches under the other's;
        docs/EVALUATION.md, the standard run), 0 for none.
        """
        own = lang in self.shrunk_langs or self.counts.get(lang, 0) >= MIN_CHUNKS_FOR_STATS
        key = lang if own else "*"
        if key not in self.mean:
            return scores
        q = query.astype(np.float64)
        mu = float(q @ self.mean[key])
        sd = float(np.sqrt(max(q @ self.cov[key] @ q, 1e-12)))
        return (scores - mu) / max(sd, floor * self.sd_floor.get(key, 0.0))


@dataclass
class Moments:
    """Running per-language sums of indexed chunk vectors (count, sum, sum of outer
    products): what ``LanguageStats`` is computed from, kept up to date as chunks are added
    and removed, so a growing library never reads every vector again."""

    dim: int
    counts: dict[str, int] = field(default_factory=dict)
    sums: dict[str, np.ndarray] = field(default_factory=dict)  # float64 [dim]
    outer: dict[str, np.ndarray] = field(default_factory=dict)  # float64 [dim, dim]

    @classmethod
    def empty(cls, dim: int) -> Moments:
        return cls(dim)

    def add(self, vecs: np.ndarray, langs: list[str], sign: int = 1) -> None:
        """Count ``vecs`` (indexed vectors of chunks in ``langs``) in, or out with sign -1."""
        lang_of = np.asarray(langs)
        for lang in set(langs):
            rows = np.asarray(vecs, dtype=np.float64)[lang_of == lang]
            dim = self.dim
            if lang not in self.sums:
                self.sums[lang], self.outer[lang] = np.zeros(dim), np.zeros((dim, dim))
            sums, outer = self.sums[lang], self.outer[lang]
            sums += sign * rows.sum(axis=0)
            # in place, a block of columns at a time: no dim x dim temporary (an import's
            # memory stays flat whatever the model's dimension)
            for at in range(0, dim, OUTER_BLOCK):
                outer[:, at : at + OUTER_BLOCK] += sign * (rows.T @ rows[:, at : at + OUTER_BLOCK])
            self.counts[lang] = self.counts.get(lang, 0) + sign * len(rows)
            if self.counts[lang] <= 0:  # the language's last chunk went
                del self.counts[lang], self.sums[lang], self.outer[lang]

    def remove(self, vecs: np.ndarray, langs: list[str]) -> None:
        self.add(vecs, langs, sign=-1)

    def raw(self) -> LanguageStats:
        """Mean and covariance of each language, and of all pooled (``*``)."""
        counts, sums, outer = dict(self.counts), dict(self.sums), dict(self.outer)
        total = sum(counts.values())
        if total:
            sums["*"] = sum(sums.values(), np.zeros(self.dim))
            outer["*"] = sum(outer.values(), np.zeros((self.dim, self.dim)))
            counts["*"] = total
        mean = {lang: sums[lang] / n for lang, n in counts.items()}
        cov = {
            lang: outer[lang] / n - np.outer(mean[lang], mean[lang]) for lang, n in counts.items()
        }
        return LanguageStats(mean=mean, cov=cov, counts=counts)

    def stats(
        self,
        prior: LanguageStats | None = None,
        prior_chunks: int = PRIOR_CHUNKS,
        queries: np.ndarray | None = None,
    ) -> LanguageStats:
        """The score statistics, as ``LanguageStats.from_batches`` of the same vectors."""
        own = self.raw()
        floor = own.sd_floors(queries) if queries is not None else {}
        stats = own if prior is None or prior_chunks <= 0 else own.shrunk(prior, prior_chunks)
        return dataclasses.replace(stats, sd_floor=floor)

    def to_arrays(self) -> dict[str, np.ndarray]:
        langs = sorted(self.counts)
        out = {"langs": np.asarray(json.dumps(langs)), "dim": np.asarray(self.dim)}
        for i, lang in enumerate(langs):
            out[f"count_{i}"] = np.asarray(self.counts[lang])
            out[f"sum_{i}"] = self.sums[lang]
            # in blocks of rows: numpy copies an array of over 16 MiB through a buffer of
            # that size when it writes one into an .npz (a 2048-dimension sum is 32 MiB)
            for b, at in enumerate(range(0, self.dim, OUTER_BLOCK)):
                out[f"outer_{i}_{b}"] = self.outer[lang][at : at + OUTER_BLOCK]
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Moments:
        out = cls(int(arrays["dim"]))
        for i, lang in enumerate(json.loads(str(arrays["langs"]))):
            out.counts[lang] = int(arrays[f"count_{i}"])
            out.sums[lang] = np.asarray(arrays[f"sum_{i}"], dtype=np.float64)
            blocks = range(-(-out.dim // OUTER_BLOCK))
            out.outer[lang] = np.concatenate([arrays[f"outer_{i}_{b}"] for b in blocks])
        return out
