"""``evaluate``: build a throwaway library from a QRELS file, run its queries, score.

The documents (records of the file, and PDFs given as ``docs``) are ingested into a fresh
library in a temporary folder (the caller's store is never touched; the model settings are
kept); every query runs in every search mode and the ranked paper keys are scored: Recall@1,
Recall@k, MRR@k, nDCG@k (graded when the file gives grades) and precision@5.

Rows: a query counts in the direction of each language its relevant documents are in
(``EN->ZH``: an English query with a relevant Chinese document; a query with relevant
documents in both languages counts in both, scored on the whole ranking), per kind, and
macro-averaged over directions; when some query has relevant documents in both languages,
``EN->*`` / ``ZH->*`` rows hold every query of that language once. A document's language is
the one kb stored, except a PDF whose file name starts with ``en_`` or ``zh_``, which says
its language (so a wrongly detected document still counts in its true direction).

Crowding: for each document, the share of queries with it in the top 5 against the share it
is judged relevant to. Latency is timed around ``Library.search``; the first search of each
mode is an untimed warm-up, and a mode the library refuses (``InvalidInput``) is reported as
unavailable.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.embedder import Embedder
from kb.errors import IngestError, InvalidInput
from kb.evaluate.metrics import mrr_at, ndcg_at, precision_at, recall_at
from kb.evaluate.qrels import ALL_KINDS, QUERY_LANGS, Qrels, Query, read_qrels
from kb.evaluate.report import MACRO, Crowding, EvalReport, FloorCheck, ModeReport, Row
from kb.library.facade import Library
from kb.library.query import SearchQuery
from kb.settings import Settings
from kb.types import SearchResponse

ANY_LANG = "*"
TOP = 5  # precision and crowding look at the first 5 papers


def evaluate(
    qrels_path: Path,
    settings: Settings,
    *,
    modes: list[str],
    k: int = 10,
    docs: Sequence[Path] = (),
    embedder: Embedder | None = None,
    progress: bool = False,
    keep: Path | None = None,
    off_topic: Sequence[str] = (),
) -> EvalReport:
    """Ingest the QRELS documents into a temporary library, run every query in every mode.

    Args:
        settings: model settings to evaluate; ``data_dir`` is replaced by a temporary folder.
        modes: search modes (``dense``, ``keyword``, ``hybrid``); one the library refuses is
            reported as unavailable.
        k: papers fetched per query, and the cutoff of Recall, MRR and nDCG.
        docs: folders of PDFs (or PDF files) to ingest besides the file's records; a PDF's
            key is its file name.
        embedder: use this embedder instead of loading ``settings.model`` (tests).
        progress: show progress bars on stderr (when it is a terminal).
        keep: build the library in this folder and keep it; a later run with the same folder
            and documents skips the embedding (for trying search settings quickly).
        off_topic: queries about nothing in the documents: in dense and hybrid mode none
            should have a result at or above the relevance floor (``FloorCheck``).
    """
    if k < 1:
        raise InvalidInput(f"k must be at least 1, not {k}.")
    if not modes:
        raise InvalidInput("Name at least one search mode: dense, keyword or hybrid.")
    qrels = read_qrels(qrels_path, docs)
    with tempfile.TemporaryDirectory(prefix="kb-eval-") as tmp:
        lib = Library(settings.replace(data_dir=keep or Path(tmp) / "kb-data"), embedder=embedder)
        try:
            lib.load()  # load the model first, so ingest_s is ingest only
            started = time.perf_counter()
            unreadable = _ingest(lib, qrels, Path(tmp), progress)
            ingest_s = time.perf_counter() - started
            keys, langs = _doc_keys(lib, qrels)
            reports = [
                _run_mode(lib, qrels, mode, k, keys, langs, progress, off_topic)
                for mode in dict.fromkeys(modes)
            ]
            model = " + ".join(side.embedder.name for side in lib.encoders())
        finally:
            lib.close()
    return EvalReport(
        qrels=str(qrels_path),
        model=model,
        k=k,
        n_docs=qrels.n_docs,
        n_queries=len(qrels.queries),
        ingest_s=ingest_s,
        modes=reports,
        dropped=qrels.dropped,
        unreadable=unreadable,
    )


def _ingest(lib: Library, qrels: Qrels, folder: Path, progress: bool) -> dict[str, str]:
    """Ingest the PDFs, and the records from a file that keeps the QRELS line numbers.

    A record that cannot be ingested is an error in the file; a PDF that kb cannot read
    (no text without OCR) is a result: it is reported, and never ranked.
    """
    inputs = list(qrels.pdfs.values())
    if qrels.docs:
        lines = [""] * qrels.doc_lines[-1]
        for doc, number in zip(qrels.docs, qrels.doc_lines, strict=True):
            lines[number - 1] = json.dumps(doc, ensure_ascii=False)
        records = folder / (qrels.path.stem + ".jsonl")
        records.write_text("\n".join(lines) + "\n", encoding="utf-8")
        inputs.append(records)
    with _bar(progress, qrels.n_docs, "ingest", "doc") as bar:
        summary = lib.ingest(inputs, listener=lambda event: bar.update(event.status in _DONE))
    unreadable = {Path(n).name: why for n, why in summary.failed if Path(n).name in qrels.pdfs}
    failed = [(n, why) for n, why in summary.failed if Path(n).name not in unreadable]
    if failed:
        n, why = len(failed), failed[0][1]
        raise IngestError(
            f"{n} of the {qrels.n_docs} docs of {qrels.path.name} could not be ingested; "
            f"the first: {why} Fix or remove those doc lines."
        )
    return unreadable


_DONE = ("ingested", "updated", "duplicate", "skipped", "failed")


def _doc_keys(lib: Library, qrels: Qrels) -> tuple[dict[str, str], dict[str, str]]:
    """(paper key -> QRELS key, QRELS key -> document language) of the ingested papers."""
    names = {str(path.resolve()): name for name, path in qrels.pdfs.items()}
    keys: dict[str, str] = {}
    # a PDF named en_... or zh_... says its language, even one kb could not read
    langs = {name: lang for name in qrels.pdfs if (lang := _named_lang(name))}
    for paper in lib.papers(limit=qrels.n_docs + 1):
        if paper.kind == "pdf":
            name = names.get(str(Path(paper.source).resolve()), Path(paper.source).name)
            keys[paper.key] = name
            langs.setdefault(name, paper.lang)
        else:
            keys[paper.key], langs[paper.key] = paper.key, paper.lang
    return keys, langs


def _named_lang(name: str) -> str | None:
    """``en`` or ``zh`` when the file name starts with it and an underscore."""
    prefix, sep, _ = name.partition("_")
    return prefix if sep and prefix in QUERY_LANGS else None


def _run_mode(
    lib: Library,
    qrels: Qrels,
    mode: str,
    k: int,
    keys: dict[str, str],
    langs: dict[str, str],
    progress: bool,
    off_topic: Sequence[str] = (),
) -> ModeReport:
    depth = max(k, TOP)
    try:  # an untimed warm-up (loads per-language statistics) that also probes the mode
        lib.search(SearchQuery.build(qrels.queries[0].text, k=depth, mode=mode))
    except InvalidInput as e:
        return ModeReport(mode=mode, available=False, reason=str(e))
    runs: list[tuple[Query, list[str], list[str]]] = []
    latencies: list[float] = []
    firsts: list[tuple[float, float]] = []
    with _bar(progress, len(qrels.queries), f"search {mode}", "query") as bar:
        for q in qrels.queries:
            started = time.perf_counter()
            try:
                response = lib.search(SearchQuery.build(q.text, k=depth, mode=mode))
            except InvalidInput as e:
                raise InvalidInput(f"{qrels.path.name} line {q.line}: {e}") from e
            latencies.append((time.perf_counter() - started) * 1000)
            runs.append((q, *_ranked(response, keys, langs)))
            firsts.append(_first_scores(response, q, keys))
            bar.update()
    floor = None
    if mode != "keyword":  # BM25 scores have no floor
        floor = _floor_check(lib, mode, depth, firsts, off_topic)
    return ModeReport(
        mode=mode,
        available=True,
        rows=_rows([outcome for run in runs for outcome in _outcomes(*run, langs, k)]),
        crowding=crowding(qrels.queries, [ranked for _, ranked, _ in runs], list(langs)),
        latency_mean_ms=float(np.mean(latencies)),
        latency_p95_ms=float(np.percentile(latencies, 95)),
        floor=floor,
    )


def _first_scores(response: SearchResponse, q: Query, keys: dict[str, str]) -> tuple[float, float]:
    """The score of the first result and of the first relevant one (-inf when none)."""
    scores = [hit.score for hit in response.results]
    relevant = [
        hit.score
        for hit in response.results
        if any(keys.get(p.key, p.key) in q.relevant for p in (hit.paper, *hit.translations))
    ]
    return (scores[0] if scores else -math.inf), (relevant[0] if relevant else -math.inf)


def _floor_check(
    lib: Library, mode: str, depth: int, firsts: list[tuple[float, float]], off: Sequence[str]
) -> FloorCheck:
    floor = lib.settings.min_score
    best = []
    for text in off:
        results = lib.search(SearchQuery.build(text, k=depth, mode=mode)).results
        best.append(results[0].score if results else -math.inf)
    return FloorCheck(
        floor=floor,
        off_topic=len(best),
        off_topic_above=sum(score >= floor for score in best),
        off_topic_max=max(best, default=-math.inf),
        top_above=float(np.mean([top >= floor for top, _ in firsts])) if firsts else 0.0,
        relevant_above=float(np.mean([rel >= floor for _, rel in firsts])) if firsts else 0.0,
    )


def _ranked(
    response: SearchResponse, keys: dict[str, str], langs: dict[str, str]
) -> tuple[list[str], list[str]]:
    """The ranked QRELS keys and their languages; a translation shown with a hit counts as
    found right after it."""
    ranked = [
        keys.get(paper.key, paper.key)
        for hit in response.results
        for paper in (hit.paper, *hit.translations)
    ]
    return ranked, [langs.get(key, "und") for key in ranked]


def _outcomes(
    q: Query, ranked: list[str], ranked_langs: list[str], langs: dict[str, str], k: int
) -> list[tuple[str, str | None, tuple[float, ...]]]:
    """(direction, kind, scores) of one query: once per language of its relevant documents,
    and once as ``EN->*`` when there are several."""
    scores = (
        recall_at(ranked, q.relevant, 1),
        recall_at(ranked, q.relevant, k),
        mrr_at(ranked, q.relevant, k),
        ndcg_at(ranked, q.relevant, k),
        precision_at(ranked, q.relevant, TOP),
    )
    targets = sorted({langs.get(key, "und") for key in q.relevant})
    out: list[tuple[str, str | None, tuple[float, ...]]] = [
        (f"{q.lang}->{t}".upper(), q.kind, (*scores, _crowded(q, t, ranked, ranked_langs, k)))
        for t in targets
    ]
    if len(targets) > 1:
        out.append((f"{q.lang}->{ANY_LANG}".upper(), q.kind, (*scores, 0.0)))
    return out


def _crowded(q: Query, target: str, ranked: list[str], ranked_langs: list[str], k: int) -> float:
    """1.0 when the first relevant paper in ``target`` is beaten (or missing from the first
    ``k``), and only by papers in the query's language."""
    hits = list(zip(ranked[:k], ranked_langs[:k], strict=True))
    found = next(
        (i for i, (key, lang) in enumerate(hits) if key in q.relevant and lang == target), None
    )
    above = hits if found is None else hits[:found]
    return float(bool(above) and all(lang == q.lang for _, lang in above))


def crowding(queries: list[Query], rankings: list[list[str]], docs: list[str]) -> list[Crowding]:
    """Per document: share of queries with it in the top 5 against the share it is relevant
    to, most in excess first (documents never in a top 5 nor relevant are left out)."""
    n = len(queries)
    top: Counter[str] = Counter()
    wrong: Counter[str] = Counter()
    judged: Counter[str] = Counter(key for q in queries for key in q.relevant)
    for q, ranked in zip(queries, rankings, strict=True):
        for key in ranked[:TOP]:
            top[key] += 1
            wrong[key] += key not in q.relevant
    rows = [
        Crowding(key, top[key] / n, judged[key] / n, wrong[key])
        for key in dict.fromkeys([*docs, *top, *judged])
        if top[key] or judged[key]
    ]
    return sorted(rows, key=lambda c: (-c.excess, -c.top5, c.key))


def _is_cross(direction: str) -> bool:
    source, target = direction.split("->")
    return target != ANY_LANG and source != target


def _direction_row(direction: str, kind: str, scores: list[tuple[float, ...]]) -> Row:
    """Mean scores of a group; crowding only for cross-language directions."""
    recall_1, recall_k, mrr, ndcg, p5, crowded = np.mean(scores, axis=0).tolist()
    cross = _is_cross(direction)
    return Row(
        direction, kind, len(scores), recall_1, recall_k, mrr, ndcg, p5, crowded if cross else None
    )


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
        parts = [r for r in rows if r.kind == kind and not r.direction.endswith(ANY_LANG)]
        means = np.mean([(r.recall_1, r.recall_k, r.mrr, r.ndcg, r.precision_5) for r in parts], 0)
        cross = [r.crowded for r in parts if r.crowded is not None]
        crowded = float(np.mean(cross)) if cross else None
        n = sum(r.n for r in parts)
        recall_1, recall_k, mrr, ndcg, p5 = means.tolist()
        rows.append(Row(MACRO, kind, n, recall_1, recall_k, mrr, ndcg, p5, crowded))
    return rows


def _direction_order(direction: str) -> tuple[int, str]:
    """Same-language directions first (EN->EN, ZH->ZH), then cross-language ones, then ``*``."""
    source, target = direction.split("->")
    return (2 if target == ANY_LANG else int(source != target)), direction


def _bar(progress: bool, total: int, desc: str, unit: str) -> Any:
    from tqdm import tqdm

    # disable=None: tqdm hides the bar when stderr is not a terminal
    return tqdm(
        total=total, desc=desc, unit=unit, file=sys.stderr, disable=None if progress else True
    )
