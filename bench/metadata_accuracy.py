"""Metadata accuracy on the 22 shared PDFs, against a hand-checked truth table.

Runs ``ingest.metadata.describe_pdf`` (the first pages' text, the document info and the first
page's layout) on each PDF of ../shared/data/pdfs (read in place) and compares the result
with tests/data/metadata_truth.json (its "about" says how each field was checked). Prints
the accuracy per field and every miss. Matching rules:

- title: both sides NFKC-normalised, case-folded, letters and digits only; correct if equal
  or if difflib's ratio is at least 0.9, against the title or the title with its subtitle;
- authors: correct if the set of names (normalised likewise) equals the truth's; the mean
  set F1 is shown too;
- year, lang, doi (case-insensitive), arxiv_id, n_pages: exact;
- a field the truth lists as "unverified" for a file is not scored.

    .venv/bin/python bench/metadata_accuracy.py [--truth FILE] [--pdfs DIR] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kb.errors import KBError
from kb.types import PaperMeta

ROOT = Path(__file__).resolve().parents[1]
TRUTH = ROOT / "tests" / "data" / "metadata_truth.json"
PDFS = ROOT.parent / "shared" / "data" / "pdfs"
FIELDS = ("title", "authors", "year", "lang", "doi", "arxiv_id", "n_pages")
TITLE_RATIO = 0.9

Describe = Callable[[Path], PaperMeta]


@dataclass
class FileResult:
    """One PDF's extracted metadata (or why there is none) and which fields are right."""

    file: str
    truth: dict[str, Any]
    meta: PaperMeta | None
    error: str = ""
    correct: dict[str, bool] = field(default_factory=dict)  # scored fields only
    authors_f1: float | None = None
    seconds: float = 0.0


def load_truth(path: Path = TRUTH) -> list[dict[str, Any]]:
    """The truth table's records, one per PDF."""
    return json.loads(path.read_text(encoding="utf-8"))["files"]


def evaluate(
    describe: Describe, truth: list[dict[str, Any]], pdfs: Path = PDFS
) -> list[FileResult]:
    """Describe every PDF of the truth table with ``describe`` and score each field."""
    results = []
    for record in truth:
        start = time.perf_counter()
        try:
            meta, error = describe(pdfs / record["file"]), ""
        except KBError as e:
            meta, error = None, str(e)
        result = FileResult(record["file"], record, meta, error)
        result.seconds = time.perf_counter() - start
        _score(result)
        results.append(result)
    return results


def _score(result: FileResult) -> None:
    truth, meta = result.truth, result.meta
    for name in FIELDS:
        if name in truth.get("unverified", []):
            continue
        guess = getattr(meta, name) if meta else None
        result.correct[name] = meta is not None and field_matches(name, guess, truth)
    if "authors" in result.correct:
        result.authors_f1 = authors_f1(meta.authors if meta else [], truth["authors"])


def field_matches(name: str, guess: Any, truth: dict[str, Any]) -> bool:
    """Whether ``guess`` is a right value of field ``name`` for the truth record ``truth``."""
    if name == "title":
        return title_matches(guess or "", truth["title"], truth.get("subtitle"))
    if name == "authors":
        return authors_f1(guess, truth["authors"]) == 1.0
    if name == "doi" and guess and truth["doi"]:
        return guess.casefold() == truth["doi"].casefold()
    return guess == truth[name]


def normalise(text: str) -> str:
    """Text reduced to its letters and digits: NFKC, case-folded, nothing else."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).casefold() if ch.isalnum())


def title_matches(guess: str, title: str, subtitle: str | None = None) -> bool:
    """The title rule: normalised equal, or difflib ratio >= 0.9; the subtitle is optional."""
    wanted = [title] + ([f"{title}: {subtitle}"] if subtitle else [])
    plain = normalise(guess)
    for text in wanted:
        target = normalise(text)
        if plain == target or difflib.SequenceMatcher(None, plain, target).ratio() >= TITLE_RATIO:
            return True
    return False


def authors_f1(guess: list[str], truth: list[str]) -> float:
    """The F1 of the guessed set of names against the true set (1.0 when both are empty)."""
    found, wanted = {normalise(n) for n in guess}, {normalise(n) for n in truth}
    if not found and not wanted:
        return 1.0
    hits = len(found & wanted)
    return 2 * hits / (len(found) + len(wanted))


def summary(results: list[FileResult]) -> dict[str, tuple[int, int]]:
    """(correct, scored) per field."""
    return {
        name: (
            sum(r.correct[name] for r in results if name in r.correct),
            sum(name in r.correct for r in results),
        )
        for name in FIELDS
    }


def misses(results: list[FileResult]) -> list[tuple[str, str, Any, Any]]:
    """(file, field, guess, truth) for every wrong field."""
    out = []
    for r in results:
        for name, ok in r.correct.items():
            if not ok:
                guess = r.error or (getattr(r.meta, name) if r.meta else None)
                out.append((r.file, name, guess, r.truth[name]))
    return out


def render_markdown(results: list[FileResult], label: str = "") -> str:
    """The per-field table and the list of misses, as Markdown."""
    scores = summary(results)
    f1s = [r.authors_f1 for r in results if r.authors_f1 is not None]
    lines = [f"### Metadata accuracy{f' ({label})' if label else ''}", ""]
    lines += ["| field | correct | accuracy |", "|---|---|---|"]
    for name, (correct, scored) in scores.items():
        lines.append(f"| {name} | {correct}/{scored} | {correct / max(scored, 1):.0%} |")
    lines += ["", f"Mean author-set F1: {sum(f1s) / max(len(f1s), 1):.2f}.", ""]
    lines += ["| file | field | extracted | truth |", "|---|---|---|---|"]
    for file, name, guess, truth in misses(results):
        lines.append(f"| {file} | {name} | {_cell(guess)} | {_cell(truth)} |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text.replace("|", "\\|")[:160]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--truth", type=Path, default=TRUTH, help="the truth table (JSON)")
    parser.add_argument("--pdfs", type=Path, default=PDFS, help="the folder of the PDFs")
    parser.add_argument("--markdown", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)

    from ingest.metadata import describe_pdf

    start = time.perf_counter()
    results = evaluate(describe_pdf, load_truth(args.truth), args.pdfs)
    took = time.perf_counter() - start
    report = render_markdown(results)
    print(report)
    print(f"{len(results)} PDFs in {took:.1f} s (slowest: {max(r.seconds for r in results):.1f} s)")
    if args.markdown:
        args.markdown.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
