"""Metadata accuracy per field and per language, on two sets of real PDFs with truth tables.

Runs ``ingest.metadata.describe_pdf`` (the first pages' text, the document info and the first
page's layout) on each PDF of a set, read in place, and compares the result with the set's
hand-checked truth. The sets:

- ``shared``: the 22 PDFs of ../shared/data/pdfs (14 English, 8 Chinese), truth in
  tests/data/metadata_truth.json (its "about" says how each field was checked). The rules
  before issue 11 were written while looking at these files.
- ``dev``: the 34 PDFs of ../shared/data/pdfs-dev (19 English, 15 Chinese), truth in its
  metadata_truth.jsonl (its README gives the conventions).

Tune on one set and read the other: the gap between them is how well the rules generalise.

Matching rules (both sets):

- title: both sides NFKC-normalised, case-folded, letters and digits only; right if equal or
  if difflib's ratio is at least 0.9, against the title, the title with its subtitle, or any
  ``title_ok`` form;
- title_en (dev, where the truth has one): the same rule;
- authors: the names, normalised likewise, equal to the truth's *in order*. Where the truth
  lists organisations (``author_kind: organisation``), the first guessed name must be its
  first organisation and every guessed name one of its organisations. The shared set's truth
  lists people only (organisations were not authors when it was written): there the people
  among the guesses are compared, and an organisation author counts as no person;
- year: equal, or one of ``year_ok``; "printed" counts only the files whose truth notes do
  not say that no date is printed anywhere;
- doi (case-insensitive), arxiv_id, lang, n_pages: equal; a DOI or arXiv id given where the
  truth has none or another is also counted as *false*;
- a field the truth lists as "unverified" for a file, or does not have, is not scored.

    .venv/bin/python bench/metadata_accuracy.py [--set shared|dev|both] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
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
SHARED = ROOT.parent / "shared" / "data"
TRUTH = ROOT / "tests" / "data" / "metadata_truth.json"
PDFS = SHARED / "pdfs"
DEV_TRUTH = SHARED / "pdfs-dev" / "metadata_truth.jsonl"
DEV_PDFS = SHARED / "pdfs-dev"
SETS = {"shared": (TRUTH, PDFS), "dev": (DEV_TRUTH, DEV_PDFS)}
FIELDS = ("title", "title_en", "authors", "year", "doi", "arxiv_id", "lang", "n_pages")
LANGS = ("en", "zh")
TITLE_RATIO = 0.9
# What the dev truth's notes say of a file that prints no date at all.
_NO_PRINTED_YEAR_RE = re.compile(
    r"no date printed (?:anywhere|on cover)|no year anywhere", re.IGNORECASE
)

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
    false_ids: list[str] = field(default_factory=list)  # "doi" / "arxiv_id" given wrongly
    seconds: float = 0.0

    @property
    def lang(self) -> str:
        return str(self.truth["lang"])

    @property
    def prints_year(self) -> bool:
        return not _NO_PRINTED_YEAR_RE.search(self.truth.get("notes", ""))


def load_truth(path: Path = TRUTH) -> list[dict[str, Any]]:
    """A truth table's records, one per PDF: the shared set's JSON or the dev set's JSONL."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    records: list[dict[str, Any]] = json.loads(text)["files"]
    return records


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


def _scored(name: str, truth: dict[str, Any]) -> bool:
    if name in truth.get("unverified", []) or name not in truth:
        return False
    return name != "title_en" or bool(truth["title_en"])


def _score(result: FileResult) -> None:
    truth, meta = result.truth, result.meta
    for name in FIELDS:
        if _scored(name, truth):
            guess = _guess(meta, name, truth)
            result.correct[name] = meta is not None and field_matches(name, guess, truth)
    if "authors" in result.correct:
        result.authors_f1 = authors_f1(_guess(meta, "authors", truth) or [], truth["authors"])
    for name in ("doi", "arxiv_id"):
        guess = getattr(meta, name, None) if meta else None
        if guess and name in truth and not field_matches(name, guess, truth):
            result.false_ids.append(name)


def _guess(meta: PaperMeta | None, name: str, truth: dict[str, Any]) -> Any:
    """The extracted value of ``name``; on a people-only truth, the people among the authors."""
    if meta is None:
        return None
    value = getattr(meta, name, None)
    if name == "authors" and "author_kind" not in truth:
        return value if getattr(meta, "author_kind", "person") == "person" else []
    return value


def field_matches(name: str, guess: Any, truth: dict[str, Any]) -> bool:
    """Whether ``guess`` is a right value of field ``name`` for the truth record ``truth``."""
    if name == "title":
        forms = [truth["title"], *truth.get("title_ok", [])]
        if truth.get("subtitle"):
            forms.append(f"{truth['title']}: {truth['subtitle']}")
        return any(title_matches(guess or "", form) for form in forms)
    if name == "title_en":
        return title_matches(guess or "", truth["title_en"])
    if name == "authors":
        return authors_match(guess or [], truth["authors"], truth.get("author_kind", "person"))
    if name == "year":
        return guess == truth["year"] or guess in (truth.get("year_ok") or [])
    if name == "doi" and guess and truth["doi"]:
        return bool(guess.casefold() == truth["doi"].casefold())
    return bool(guess == truth[name])


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


def authors_match(guess: list[str], truth: list[str], kind: str = "person") -> bool:
    """People: the same names in the same order. Organisations: the first one first, and no
    name that is not one of them."""
    found, wanted = [normalise(n) for n in guess], [normalise(n) for n in truth]
    if kind != "organisation" or not wanted:
        return found == wanted
    return bool(found) and found[0] == wanted[0] and set(found) <= set(wanted)


def authors_f1(guess: list[str], truth: list[str]) -> float:
    """The F1 of the guessed set of names against the true set (1.0 when both are empty)."""
    found, wanted = {normalise(n) for n in guess}, {normalise(n) for n in truth}
    if not found and not wanted:
        return 1.0
    hits = len(found & wanted)
    return 2 * hits / (len(found) + len(wanted))


def summary(results: list[FileResult], lang: str | None = None) -> dict[str, tuple[int, int]]:
    """(correct, scored) per field, over the files in ``lang`` (all if None)."""
    chosen = [r for r in results if lang is None or r.lang == lang]
    return {
        name: (
            sum(r.correct[name] for r in chosen if name in r.correct),
            sum(name in r.correct for r in chosen),
        )
        for name in FIELDS
    }


def printed_year(results: list[FileResult]) -> tuple[int, int]:
    """(right, scored) years over the files that print a date."""
    chosen = [r for r in results if "year" in r.correct and r.prints_year]
    return sum(r.correct["year"] for r in chosen), len(chosen)


def false_ids(results: list[FileResult]) -> list[tuple[str, str, Any]]:
    """(file, field, value) for every DOI or arXiv id given that is not the paper's own."""
    return [(r.file, name, getattr(r.meta, name)) for r in results for name in r.false_ids]


def misses(results: list[FileResult]) -> list[tuple[str, str, Any, Any]]:
    """(file, field, guess, truth) for every wrong field."""
    out = []
    for r in results:
        for name, ok in r.correct.items():
            if not ok:
                guess = r.error or _guess(r.meta, name, r.truth)
                out.append((r.file, name, guess, r.truth[name]))
    return out


def render_markdown(results: list[FileResult], label: str = "") -> str:
    """The per-field, per-language table and the list of misses, as Markdown."""
    langs = [lang for lang in LANGS if any(r.lang == lang for r in results)]
    scores = {lang: summary(results, lang) for lang in langs}
    total = summary(results)
    lines = [f"### Metadata accuracy{f' ({label})' if label else ''}", ""]
    lines += ["| field | " + " | ".join(langs) + " | all |", "|---|" + "---|" * (len(langs) + 1)]
    for name in FIELDS:
        if total[name][1]:
            cells = [_ratio(*scores[lang][name]) for lang in langs] + [_ratio(*total[name])]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    right, scored = printed_year(results)
    f1s = [r.authors_f1 for r in results if r.authors_f1 is not None]
    wrong_ids = false_ids(results)
    lines += [
        "",
        f"Year on the files that print one: {right}/{scored}. "
        f"Mean author-set F1: {sum(f1s) / max(len(f1s), 1):.2f}. "
        f"False DOI or arXiv ids: {len(wrong_ids)}.",
        "",
    ]
    lines += ["| file | field | extracted | truth |", "|---|---|---|---|"]
    for file, name, guess, truth in misses(results):
        lines.append(f"| {file} | {name} | {_cell(guess)} | {_cell(truth)} |")
    return "\n".join(lines) + "\n"


def _ratio(correct: int, scored: int) -> str:
    return f"{correct}/{scored}" if scored else "-"


def _cell(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text.replace("|", "\\|")[:160]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=[*SETS, "both"], default="both", help="which PDFs")
    parser.add_argument("--truth", type=Path, help="another truth table (JSON or JSONL)")
    parser.add_argument("--pdfs", type=Path, help="the folder of that table's PDFs")
    parser.add_argument("--markdown", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)

    from ingest.metadata import describe_pdf

    if args.truth:
        sets = {args.truth.stem: (args.truth, args.pdfs or args.truth.parent)}
    else:
        sets = SETS if args.set == "both" else {args.set: SETS[args.set]}
    reports = []
    for label, (truth, pdfs) in sets.items():
        start = time.perf_counter()
        results = evaluate(describe_pdf, load_truth(truth), pdfs)
        took = time.perf_counter() - start
        slowest = max(r.seconds for r in results)
        reports.append(render_markdown(results, f"{label}: {len(results)} PDFs"))
        print(reports[-1])
        print(f"{len(results)} PDFs in {took:.1f} s (slowest: {slowest:.1f} s)\n")
    if args.markdown:
        args.markdown.write_text("\n".join(reports), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
