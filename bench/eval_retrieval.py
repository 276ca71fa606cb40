"""Retrieval quality on the shared bilingual safety papers, through the code of `kb eval`.

Two sets (``--set``):

**standard** (default): title + abstract records. Builds the standard QRELS from
../shared/data/xling (read in place, never copied): each of N safety papers
(safety_pairs_dev.jsonl) is indexed in ONE language, even lines in English and odd lines in
Chinese, as title + abstract, among M distractor papers (general_distractors_3000.jsonl,
alternating likewise). Each safety paper gives three queries:

- same-title: its title in the indexed language (EN->EN, ZH->ZH);
- cross-title: its title in the other language (ZH->EN, EN->ZH);
- cross-abstract: its abstract in the other language (pasting an abstract to find the paper).

The QRELS goes to a temporary file and through ``kb.evaluate.evaluate``.

**fulltext**: the 56 real PDFs of ../shared/data/pdfs and ../shared/data/pdfs-dev with the 91
graded queries of ../shared/data/fulltext-qrels/queries.jsonl (``--main-only``: the 22 PDFs of
pdfs/ and the 65 queries with a relevant document among them), run as
``kb eval queries.jsonl --docs pdfs --docs pdfs-dev``.

Both sets also run the 20 off-topic queries of bench/offtopic_queries.txt (English and
Chinese, about nothing in either set) against the relevance floor (``KB_MIN_SCORE``).

Settings (model, KB_MODEL_DIR, ...) come from the environment, as for `kb`.

    .venv/bin/python bench/eval_retrieval.py [--papers 493] [--distractors 3000]
        [--modes dense keyword hybrid] [--json] [--markdown FILE] [--keep DIR]
    .venv/bin/python bench/eval_retrieval.py --set fulltext [--main-only] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchlib import machine

from kb.errors import KBError
from kb.evaluate import EvalReport, evaluate
from kb.settings import Settings

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
XLING = SHARED / "xling"
FULLTEXT = SHARED / "fulltext-qrels" / "queries.jsonl"
PDF_FOLDERS = (SHARED / "pdfs", SHARED / "pdfs-dev")
# 20 queries (10 English, 10 Chinese) about nothing in either set: the relevance floor check
OFF_TOPIC = [
    line.strip()
    for line in (Path(__file__).with_name("offtopic_queries.txt")).read_text("utf-8").splitlines()
    if line.strip()
]
SAFETY = XLING / "safety_pairs_dev.jsonl"
DISTRACTORS = XLING / "general_distractors_3000.jsonl"
MODES = ("dense", "keyword", "hybrid")
OTHER = {"en": "zh", "zh": "en"}


def _read(path: Path, n: int) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()[:n]
    return [json.loads(line) for line in lines]


def _doc(record: dict[str, Any], lang: str) -> dict[str, Any]:
    title, abstract = record[f"{lang}_title"], record[lang]
    return {"doc": {"key": record["id"], "title": title, "abstract": abstract, "lang": lang}}


def build_qrels(papers: list[dict[str, Any]], distractors: list[dict[str, Any]]) -> list[dict]:
    """QRELS lines: every doc, then three queries per safety paper."""
    lines: list[dict[str, Any]] = []
    queries: list[dict[str, Any]] = []
    for i, record in enumerate(papers):
        lang = "en" if i % 2 == 0 else "zh"
        other, relevant = OTHER[lang], [record["id"]]
        lines.append(_doc(record, lang))
        for text, q_lang, kind in (
            (record[f"{lang}_title"], lang, "same-title"),
            (record[f"{other}_title"], other, "cross-title"),
            (record[other], other, "cross-abstract"),
        ):
            queries.append({"query": text, "lang": q_lang, "relevant": relevant, "kind": kind})
    lines += [_doc(r, "en" if i % 2 == 0 else "zh") for i, r in enumerate(distractors)]
    return lines + queries


def markdown_file(report: EvalReport, wall_s: float, settings: Settings, title: str) -> str:
    command = shlex.join(["python", *sys.argv])
    return (
        f"# Retrieval evaluation, {title} (bench/eval_retrieval.py)\n\n"
        f"- command: `{command}`\n"
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}\n"
        f"- machine: {machine()}\n"
        f"- encoders: {report.model} (KB_MODEL={settings.model}, "
        f"KB_SECOND_ENCODER={settings.second_encoder}, device {settings.device}, "
        f"KB_CHUNK_TOKENS={settings.chunk_tokens}, KB_FUSION={settings.fusion})\n"
        f"- wall time: {wall_s:.0f} s\n\n"
        f"{report.to_markdown()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("standard", "fulltext"), default="standard")
    parser.add_argument(
        "--main-only", action="store_true", help="fulltext: only the 22 PDFs of pdfs/"
    )
    parser.add_argument("--papers", type=int, default=493, help="safety papers (max 493)")
    parser.add_argument("--distractors", type=int, default=3000, help="distractors (max 3000)")
    parser.add_argument("--modes", nargs="+", default=list(MODES), help="dense keyword hybrid")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--markdown", type=Path, help="also write the table and setup here")
    parser.add_argument(
        "--keep", type=Path, help="build the library in this folder and reuse it on later runs"
    )
    args = parser.parse_args()
    modes = [m for arg in args.modes for m in arg.split(",") if m]
    settings = Settings.from_env()
    started = time.perf_counter()
    try:
        if args.set == "fulltext":
            docs = PDF_FOLDERS[:1] if args.main_only else PDF_FOLDERS
            report = evaluate(
                FULLTEXT, settings, modes=modes, k=10, docs=docs, progress=True, keep=args.keep,
                off_topic=OFF_TOPIC,
            )  # fmt: skip
            title = "full text (22 PDFs)" if args.main_only else "full text (56 PDFs)"
        else:
            report = _standard(args, settings, modes)
            title = "standard set"
    except KBError as e:
        sys.exit(f"error: {e}")
    wall_s = time.perf_counter() - started
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(report.to_markdown(), end="")
    print(f"({wall_s:.1f} s in all)", file=sys.stderr)
    if args.markdown:
        args.markdown.write_text(markdown_file(report, wall_s, settings, title), encoding="utf-8")


def _standard(args: argparse.Namespace, settings: Settings, modes: list[str]) -> EvalReport:
    lines = build_qrels(_read(SAFETY, args.papers), _read(DISTRACTORS, args.distractors))
    with tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp:
        qrels = Path(tmp) / "safety_qrels.jsonl"
        text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
        qrels.write_text(text, encoding="utf-8")
        return evaluate(
            qrels, settings, modes=modes, k=10, progress=True, keep=args.keep, off_topic=OFF_TOPIC
        )


if __name__ == "__main__":
    main()
