"""Retrieval evaluation: build a throwaway library from a QRELS file, run its queries, score.

The QRELS file is JSONL. Each non-blank line is one JSON object, either a document::

    {"doc": {"key": "arxiv:2306.05499", "title": "...", "abstract": "...", "lang": "en"}}

(the inner object is a record exactly as ``kb ingest`` reads it, see ``ingest/records.py``)
or a query::

    {"query": "prompt injection attacks", "lang": "en", "relevant": ["arxiv:2306.05499"],
     "kind": "cross-title"}

``lang`` is the query's language (``en`` or ``zh``); ``relevant`` lists the keys of the
documents that answer it (at least one, each a document of the file); ``kind`` is an optional
label (e.g. ``same-title``, ``cross-abstract``) that gets its own rows in the report.

``evaluate`` ingests the documents into a fresh library in a temporary folder (the caller's
store is never touched; the model settings are kept), runs every query in every search mode
and scores the ranked paper keys with binary relevance: Recall@1, Recall@k, MRR@k and nDCG@k
(log2 discount, ideal DCG over min(|relevant|, k)). Scores are averaged per direction
(``EN->ZH``: the query's language, then the relevant documents' language as stored; several
languages are joined with ``+``), per direction and kind, and macro-averaged over directions.
Latency is timed around ``Library.search``; the first search of each mode is an untimed
warm-up, and a mode the library refuses (``InvalidInput``) is reported as unavailable.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from math import log2
from pathlib import Path
from typing import Any

import numpy as np

from index.embedder import Embedder
from kb.errors import IngestError, InvalidInput
from kb.library.facade import Library
from kb.library.query import SearchQuery, check_text
from kb.settings import Settings
from kb.types import SearchResponse

QUERY_FIELDS = {"query", "lang", "relevant", "kind"}
QUERY_LANGS = ("en", "zh")
MACRO = "macro"
ALL_KINDS = "all"

# -- metrics (binary relevance; ``ranked`` is best first, keys are unique)


def recall_at(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the relevant keys found in the first ``k`` results."""
    return len(set(ranked[:k]) & set(relevant)) / _size(relevant)


def mrr_at(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """1 / rank of the first relevant key within the first ``k`` results, else 0."""
    _size(relevant)
    return next((1 / rank for rank, key in enumerate(ranked[:k], 1) if key in relevant), 0.0)


def ndcg_at(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """DCG of the first ``k`` results (gain 1 / log2(rank + 1)) over the ideal DCG."""
    dcg = sum(1 / log2(rank + 1) for rank, key in enumerate(ranked[:k], 1) if key in relevant)
    ideal = sum(1 / log2(rank + 1) for rank in range(1, min(_size(relevant), k) + 1))
    return dcg / ideal


def _size(relevant: Collection[str]) -> int:
    if not relevant:
        raise ValueError("relevant is empty: a query needs at least one relevant key")
    return len(relevant)


# -- the QRELS file


@dataclass(frozen=True)
class Query:
    text: str
    lang: str
    relevant: tuple[str, ...]
    kind: str | None
    line: int


@dataclass(frozen=True)
class Qrels:
    """A parsed QRELS file: documents (with their line numbers) and queries."""

    path: Path
    docs: list[dict[str, Any]]
    doc_lines: list[int]
    queries: list[Query]


def read_qrels(path: Path) -> Qrels:
    """Parse a QRELS file; raise InvalidInput naming the first bad line."""
    try:
        raw_lines = path.read_bytes().splitlines()
    except OSError as e:
        raise InvalidInput(f"Cannot read QRELS file {str(path)!r}: {e.strerror or e}.") from e
    docs: list[dict[str, Any]] = []
    doc_lines: list[int] = []
    queries: list[Query] = []
    keys: set[str] = set()
    for number, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        try:
            doc, query = _parse_line(raw)
            if doc is not None and doc["key"] in keys:
                raise InvalidInput(f"duplicate doc key {doc['key']!r}; keys must be unique.")
        except InvalidInput as e:
            raise InvalidInput(f"{path.name} line {number}: {e}") from None
        if doc is not None:
            keys.add(doc["key"])
            docs.append(doc)
            doc_lines.append(number)
        else:
            queries.append(Query(**query, line=number))
    _check_complete(path, keys, queries)
    return Qrels(path=path, docs=docs, doc_lines=doc_lines, queries=queries)


def _parse_line(raw: bytes) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(doc record, {}) for a doc line, (None, Query fields without ``line``) for a query."""
    try:
        obj = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidInput(f"not a valid UTF-8 JSON line ({e}).") from None
    if not isinstance(obj, dict) or ("doc" in obj) == ("query" in obj):
        raise InvalidInput('expected a JSON object with either "doc" or "query".')
    if "query" in obj:
        return None, _query_fields(obj)
    doc = obj["doc"]
    if set(obj) != {"doc"} or not isinstance(doc, dict):
        raise InvalidInput('a doc line is {"doc": {record}} and nothing else.')
    if not isinstance(doc.get("key"), str) or not doc["key"].strip():
        raise InvalidInput('the doc has no "key" (a non-empty string).')
    return {**doc, "key": doc["key"].strip()}, {}


def _query_fields(obj: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(obj) - QUERY_FIELDS)
    if unknown:
        known = ", ".join(sorted(QUERY_FIELDS))
        raise InvalidInput(f"unknown query field(s) {', '.join(unknown)}; known: {known}.")
    text = obj["query"]
    if not isinstance(text, str):
        raise InvalidInput('"query" must be a string.')
    check_text(text)  # the library's own limits (empty, too long), caught here with a line
    if obj.get("lang") not in QUERY_LANGS:
        raise InvalidInput(f'"lang" must be "en" or "zh", not {obj.get("lang")!r}.')
    relevant = obj.get("relevant")
    if (
        not isinstance(relevant, list)
        or not relevant
        or not all(isinstance(r, str) and r.strip() for r in relevant)
    ):
        raise InvalidInput('"relevant" must be a non-empty list of doc keys (strings).')
    kind = obj.get("kind")
    if kind is not None and (not isinstance(kind, str) or not kind.strip()):
        raise InvalidInput('"kind" must be a non-empty string when given.')
    if kind is not None and kind.strip() == ALL_KINDS:
        raise InvalidInput(f'"kind" {ALL_KINDS!r} is reserved for the rows over every kind.')
    return {
        "text": text.strip(),
        "lang": obj["lang"],
        "relevant": tuple(dict.fromkeys(r.strip() for r in relevant)),
        "kind": kind.strip() if kind else None,
    }


def _check_complete(path: Path, keys: set[str], queries: list[Query]) -> None:
    if not keys or not queries:
        raise InvalidInput(
            f"{path.name} has {len(keys)} docs and {len(queries)} queries; "
            "an evaluation needs both."
        )
    for q in queries:
        missing = [r for r in q.relevant if r not in keys]
        if missing:
            raise InvalidInput(
                f"{path.name} line {q.line}: relevant key {missing[0]!r} is not the key of "
                "any doc in the file."
            )


# -- the report


@dataclass(frozen=True)
class Row:
    """Mean scores of one group of queries in one mode."""

    direction: str  # "EN->ZH" (query language -> relevant documents' language), or "macro"
    kind: str  # a query kind, or "all"
    n: int  # queries; for "macro", the queries of the directions averaged
    recall_1: float
    recall_k: float
    mrr: float
    ndcg: float
    # cross-language queries: share whose relevant paper is beaten only by papers in the
    # query's own language (the language-bias failure); not meaningful for same-language rows
    crowded: float | None = None


@dataclass(frozen=True)
class ModeReport:
    """One search mode: its rows and latency, or why the library refused it."""

    mode: str
    available: bool
    reason: str = ""
    rows: list[Row] = field(default_factory=list)
    latency_mean_ms: float | None = None
    latency_p95_ms: float | None = None


@dataclass(frozen=True)
class EvalReport:
    """What ``evaluate`` measured; ``to_dict`` for JSON, ``to_markdown`` for people."""

    qrels: str
    model: str
    k: int
    n_docs: int
    n_queries: int
    ingest_s: float
    modes: list[ModeReport]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_markdown(self) -> str:
        """A table (rows: mode x direction x kind, then macro) and one latency line per mode."""
        k = self.k
        lines = [
            f"{self.n_queries} queries over {self.n_docs} documents ({Path(self.qrels).name}), "
            f"model {self.model}, k={k}, ingest {self.ingest_s:.1f} s",
            "",
            f"| mode | direction | kind | queries | R@1 | R@{k} | MRR@{k} | nDCG@{k} | crowded |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for m in self.modes:
            for r in m.rows:
                if not _redundant(r, m.rows):
                    scores = (r.recall_1, r.recall_k, r.mrr, r.ndcg)
                    cells = [m.mode, r.direction, r.kind, str(r.n), *(f"{x:.3f}" for x in scores)]
                    cells.append("-" if r.crowded is None else f"{r.crowded:.3f}")
                    lines.append(f"| {' | '.join(cells)} |")
        lines.append("")
        for m in self.modes:
            if m.available:
                lines.append(
                    f"- {m.mode}: latency per query mean {m.latency_mean_ms:.1f} ms, "
                    f"p95 {m.latency_p95_ms:.1f} ms"
                )
            else:
                lines.append(f"- {m.mode}: unavailable ({m.reason})")
        return "\n".join(lines) + "\n"


def _redundant(row: Row, rows: list[Row]) -> bool:
    """An "all" row equal to the direction's only kind row (e.g. EN->EN has only same-title)."""
    kinds = [r for r in rows if r.direction == row.direction and r.kind != ALL_KINDS]
    return row.kind == ALL_KINDS and len(kinds) == 1 and kinds[0].n == row.n


# -- evaluate


def evaluate(
    qrels_path: Path,
    settings: Settings,
    *,
    modes: list[str],
    k: int = 10,
    embedder: Embedder | None = None,
    progress: bool = False,
    keep: Path | None = None,
) -> EvalReport:
    """Ingest the QRELS documents into a temporary library, run every query in every mode.

    Args:
        settings: model settings to evaluate; ``data_dir`` is replaced by a temporary folder.
        modes: search modes (``dense``, ``keyword``, ``hybrid``); one the library refuses is
            reported as unavailable.
        k: papers fetched per query, and the cutoff of Recall, MRR and nDCG.
        embedder: use this embedder instead of loading ``settings.model`` (tests).
        progress: show progress bars on stderr (when it is a terminal).
        keep: build the library in this folder and keep it; a later run with the same folder
            and documents skips the embedding (for trying search settings quickly).
    """
    if k < 1:
        raise InvalidInput(f"k must be at least 1, not {k}.")
    if not modes:
        raise InvalidInput("Name at least one search mode: dense, keyword or hybrid.")
    qrels = read_qrels(qrels_path)
    with tempfile.TemporaryDirectory(prefix="kb-eval-") as tmp:
        lib = Library(settings.replace(data_dir=keep or Path(tmp) / "kb-data"), embedder=embedder)
        try:
            lib.load()  # load the model first, so ingest_s is ingest only
            started = time.perf_counter()
            _ingest(lib, qrels, Path(tmp), progress)
            ingest_s = time.perf_counter() - started
            langs = {p.key: p.lang for p in lib.papers(limit=len(qrels.docs))}
            reports = [
                _run_mode(lib, qrels, mode, k, langs, progress) for mode in dict.fromkeys(modes)
            ]
            model = " + ".join(side.embedder.name for side in lib.encoders())
        finally:
            lib.close()
    return EvalReport(
        qrels=str(qrels_path),
        model=model,
        k=k,
        n_docs=len(qrels.docs),
        n_queries=len(qrels.queries),
        ingest_s=ingest_s,
        modes=reports,
    )


def _ingest(lib: Library, qrels: Qrels, folder: Path, progress: bool) -> None:
    """Ingest the docs from a records file that keeps the QRELS line numbers (for errors)."""
    name = qrels.path.stem + ".jsonl"
    lines = [""] * qrels.doc_lines[-1]
    for doc, number in zip(qrels.docs, qrels.doc_lines, strict=True):
        lines[number - 1] = json.dumps(doc, ensure_ascii=False)
    records = folder / name
    records.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with _bar(progress, len(qrels.docs), "ingest", "doc") as bar:
        summary = lib.ingest(
            [records], listener=lambda event: bar.update(event.status in _DONE_STATUSES)
        )
    if summary.failed:
        n, why = len(summary.failed), summary.failed[0][1]
        raise IngestError(
            f"{n} of the {len(qrels.docs)} docs of {qrels.path.name} could not be ingested; "
            f"the first: {why} Fix or remove those doc lines."
        )


_DONE_STATUSES = ("ingested", "updated", "duplicate", "skipped", "failed")


def _run_mode(
    lib: Library, qrels: Qrels, mode: str, k: int, langs: dict[str, str], progress: bool
) -> ModeReport:
    try:  # an untimed warm-up (loads per-language statistics) that also probes the mode
        lib.search(SearchQuery.build(qrels.queries[0].text, k=k, mode=mode))
    except InvalidInput as e:
        return ModeReport(mode=mode, available=False, reason=str(e))
    outcomes: list[tuple[str, str | None, tuple[float, ...]]] = []
    latencies: list[float] = []
    with _bar(progress, len(qrels.queries), f"search {mode}", "query") as bar:
        for q in qrels.queries:
            started = time.perf_counter()
            try:
                response = lib.search(SearchQuery.build(q.text, k=k, mode=mode))
            except InvalidInput as e:
                raise InvalidInput(f"{qrels.path.name} line {q.line}: {e}") from e
            latencies.append((time.perf_counter() - started) * 1000)
            # a translation shown with a hit counts as found right after it
            ranked = [
                key
                for hit in response.results
                for key in (hit.paper.key, *(t.key for t in hit.translations))
            ]
            scores = _scores(ranked, q.relevant, k) + (_crowded(response, q, k),)
            outcomes.append((_direction(q, langs), q.kind, scores))
            bar.update()
    return ModeReport(
        mode=mode,
        available=True,
        rows=_rows(outcomes),
        latency_mean_ms=float(np.mean(latencies)),
        latency_p95_ms=float(np.percentile(latencies, 95)),
    )


def _direction(q: Query, langs: dict[str, str]) -> str:
    targets = sorted({langs[key] for key in q.relevant})
    return f"{q.lang}->{'+'.join(targets)}".upper()


def _scores(ranked: list[str], relevant: Collection[str], k: int) -> tuple[float, ...]:
    return (
        recall_at(ranked, relevant, 1),
        recall_at(ranked, relevant, k),
        mrr_at(ranked, relevant, k),
        ndcg_at(ranked, relevant, k),
    )


def _crowded(response: SearchResponse, q: Query, k: int) -> float:
    """1.0 when the relevant paper is beaten, and only by papers in the query's language."""
    hits = response.results[:k]
    found = next((i for i, h in enumerate(hits) if h.paper.key in q.relevant), None)
    above = hits if found is None else hits[:found]
    return float(bool(above) and all(h.paper.lang == q.lang for h in above))


def _is_cross(direction: str) -> bool:
    source, target = direction.split("->")
    return source != target


def _direction_row(direction: str, kind: str, scores: list[tuple[float, ...]]) -> Row:
    """Mean scores of a group; crowding only for cross-language directions."""
    means = np.mean(scores, axis=0).tolist()
    recall_1, recall_k, mrr, ndcg = means[:4]
    crowded = means[4] if _is_cross(direction) else None
    return Row(direction, kind, len(scores), recall_1, recall_k, mrr, ndcg, crowded)


def _rows(outcomes: list[tuple[str, str | None, tuple[float, ...]]]) -> list[Row]:
    """Mean scores per direction (all kinds, then each kind), then macro over directions."""
    groups: dict[tuple[str, str], list[tuple[float, ...]]] = {}
    for direction, kind, scores in outcomes:
        groups.setdefault((direction, ALL_KINDS), []).append(scores)
        if kind:
            groups.setdefault((direction, kind), []).append(scores)
    kinds = [ALL_KINDS, *dict.fromkeys(kind for _, kind, _ in outcomes if kind)]
    directions = sorted({d for d, _ in groups}, key=_direction_order)
    rows = [
        _direction_row(d, kind, groups[d, kind])
        for d in directions
        for kind in kinds
        if (d, kind) in groups
    ]
    for kind in kinds:
        parts = [r for r in rows if r.kind == kind]
        means = np.mean([(r.recall_1, r.recall_k, r.mrr, r.ndcg) for r in parts], axis=0)
        cross = [r.crowded for r in parts if r.crowded is not None]
        crowded = float(np.mean(cross)) if cross else None
        recall_1, recall_k, mrr, ndcg = means.tolist()
        n = sum(r.n for r in parts)
        rows.append(Row(MACRO, kind, n, recall_1, recall_k, mrr, ndcg, crowded))
    return rows


def _direction_order(direction: str) -> tuple[bool, str]:
    """Same-language directions first (EN->EN, ZH->ZH), then cross-language ones."""
    source, target = direction.split("->")
    return source != target, direction


def _bar(progress: bool, total: int, desc: str, unit: str) -> Any:
    from tqdm import tqdm

    # disable=None: tqdm hides the bar when stderr is not a terminal
    return tqdm(
        total=total, desc=desc, unit=unit, file=sys.stderr, disable=None if progress else True
    )
