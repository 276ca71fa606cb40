"""What ``kb eval`` measured: rows per direction and kind, crowding, latency; Markdown or JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kb.evaluate.qrels import ALL_KINDS

MACRO = "macro"
CROWDING_MARGIN = 0.10  # a document in the top 5 this much more often than it is relevant
CROWDING_SHOWN = 5  # rows of the crowding table in the Markdown report (all flagged ones too)


@dataclass(frozen=True)
class Row:
    """Mean scores of one group of queries in one mode."""

    direction: str  # "EN->ZH" (query language -> a relevant document's language), or "macro"
    kind: str  # a query kind, or "all"
    n: int  # queries; for "macro", the queries of the directions averaged
    recall_1: float
    recall_k: float
    mrr: float
    ndcg: float
    precision_5: float = 0.0
    # cross-language queries: share whose relevant paper is beaten only by papers in the
    # query's own language (the language-bias failure); not meaningful for same-language rows
    crowded: float | None = None


@dataclass(frozen=True)
class Crowding:
    """One document: how often it is in the top 5 against how often it is judged relevant."""

    key: str
    top5: float  # share of the queries with it in the top 5
    judged: float  # share of the queries it is relevant to (any grade)
    top5_not_relevant: int  # queries with it in the top 5 that it is not relevant to

    @property
    def excess(self) -> float:
        return self.top5 - self.judged

    @property
    def flagged(self) -> bool:
        return self.excess > CROWDING_MARGIN


@dataclass(frozen=True)
class FloorCheck:
    """The relevance floor against queries: off-topic ones must stay under it, real ones
    should clear it."""

    floor: float  # Settings.min_score
    off_topic: int  # off-topic queries run
    off_topic_above: int  # of them, those with a result at or above the floor
    off_topic_max: float  # the best score any off-topic query got (-inf: no result)
    top_above: float  # share of the judged queries whose first result clears the floor
    relevant_above: float  # share whose first relevant result (in the top k) clears it


@dataclass(frozen=True)
class ModeReport:
    """One search mode: its rows, crowding and latency, or why the library refused it."""

    mode: str
    available: bool
    reason: str = ""
    rows: list[Row] = field(default_factory=list)
    crowding: list[Crowding] = field(default_factory=list)  # most in excess first
    latency_mean_ms: float | None = None
    latency_p95_ms: float | None = None
    floor: FloorCheck | None = None  # dense and hybrid (keyword scores have no floor)

    @property
    def flagged(self) -> list[Crowding]:
        return [c for c in self.crowding if c.flagged]


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
    dropped: int = 0  # queries with no relevant document among the documents given
    unreadable: dict[str, str] = field(default_factory=dict)  # PDF name -> why not ingested

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for mode, report in zip(out["modes"], self.modes, strict=True):
            mode["flagged"] = [c.key for c in report.flagged]
        return out

    def to_markdown(self) -> str:
        """A table (rows: mode x direction x kind, then macro), latency per mode, crowding."""
        k = self.k
        dropped = f" ({self.dropped} dropped: no relevant document here)" if self.dropped else ""
        lines = [
            f"{self.n_queries} queries{dropped} over {self.n_docs} documents "
            f"({Path(self.qrels).name}), model {self.model}, k={k}, ingest {self.ingest_s:.1f} s",
            "",
            f"| mode | direction | kind | queries | R@1 | R@{k} | MRR@{k} | nDCG@{k} | P@5 "
            "| crowded |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for m in self.modes:
            for r in m.rows:
                if not _redundant(r, m.rows):
                    scores = (r.recall_1, r.recall_k, r.mrr, r.ndcg, r.precision_5)
                    cells = [m.mode, r.direction, r.kind, str(r.n), *(f"{x:.3f}" for x in scores)]
                    cells.append("-" if r.crowded is None else f"{r.crowded:.3f}")
                    lines.append(f"| {' | '.join(cells)} |")
        lines.append("")
        for name, why in self.unreadable.items():
            lines.append(f"- not ingested, so never ranked: {name}: {why}")
        for m in self.modes:
            if m.available:
                lines.append(
                    f"- {m.mode}: latency per query mean {m.latency_mean_ms:.1f} ms, "
                    f"p95 {m.latency_p95_ms:.1f} ms"
                )
            else:
                lines.append(f"- {m.mode}: unavailable ({m.reason})")
        return "\n".join(lines + _floor_lines(self.modes) + _crowding_lines(self.modes)) + "\n"


def _floor_lines(modes: list[ModeReport]) -> list[str]:
    """Per mode with a floor: off-topic queries above it, real queries clearing it."""
    checks = [(m.mode, m.floor) for m in modes if m.floor is not None]
    if not checks:
        return []
    lines = [
        "",
        "Relevance floor: off-topic queries must have no result at or above it; the share of "
        "judged queries whose first result (and first relevant result) clears it.",
        "",
        "| mode | floor | off-topic queries | above the floor | best off-topic score "
        "| first result above | first relevant above |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for mode, f in checks:
        off = (str(f.off_topic_above), f"{f.off_topic_max:.2f}") if f.off_topic else ("-", "-")
        lines.append(
            f"| {mode} | {f.floor:.2f} | {f.off_topic} | {off[0]} | {off[1]} | "
            f"{f.top_above:.2f} | {f.relevant_above:.2f} |"
        )
    return lines


def _crowding_lines(modes: list[ModeReport]) -> list[str]:
    """Per mode: the documents most often in the top 5 beyond their judged share."""
    lines = [
        "",
        "Crowding: share of queries with the document in the top 5 against the share it is "
        f"judged relevant to; flagged (!) when more than {CROWDING_MARGIN * 100:.0f} points above.",
        "",
        "| mode | document | top 5 | judged | excess | top 5, not relevant |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for m in modes:
        shown = [c for i, c in enumerate(m.crowding) if i < CROWDING_SHOWN or c.flagged]
        for c in shown:
            mark = " (!)" if c.flagged else ""
            lines.append(
                f"| {m.mode} | {c.key}{mark} | {c.top5:.2f} | {c.judged:.2f} | "
                f"{c.excess:+.2f} | {c.top5_not_relevant} |"
            )
    lines.append("")
    lines += [f"- {m.mode}: {len(m.flagged)} documents flagged" for m in modes if m.available]
    return lines


def _redundant(row: Row, rows: list[Row]) -> bool:
    """An "all" row equal to the direction's only kind row (e.g. EN->EN has only same-title)."""
    kinds = [r for r in rows if r.direction == row.direction and r.kind != ALL_KINDS]
    return row.kind == ALL_KINDS and len(kinds) == 1 and kinds[0].n == row.n
