"""Local ingest against a local-Ray ingest of the same PDFs, in one run (docs/SCALING.md).

Both ingest the PDFs of ../shared/data/pdfs (read in place) into a fresh temporary library
each, with the settings of the environment (``KB_*``; default: both encoders, the default
runtime), the real encoders, and nothing else changed:

1. local: ``Library.ingest(paths)``: parsing in KB_WORKERS processes, embedding here;
2. Ray: ``Library.ingest(paths, ray="local")``: a local Ray started for the ingest (as
   ``kb ingest --ray``), one parse task per file, the embedding actors, storing here. Its wall
   time includes starting Ray and the actors' model loading, as a user waits for them.

Prints wall seconds, files/s, pages/s and chunks/s for each, and checks that both libraries
hold the same papers with the same chunk counts. The machine may be shared: wall time follows
its load.

    .venv/bin/python bench/ray_ingest.py [--limit 22] [--order local,ray]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchlib import machine

from kb.library.facade import Library
from kb.library.ingest import IngestEvent
from kb.settings import Settings

PDFS = Path(__file__).resolve().parents[2] / "shared" / "data" / "pdfs"


def run(settings: Settings, paths: list[Path], ray: str | None) -> dict[str, Any]:
    """Ingest ``paths`` into a fresh library; wall seconds, files, pages, and the papers."""
    events: list[IngestEvent] = []
    lib = Library(settings)
    try:
        lib.load()  # the driver's models, loaded before the clock starts (both ways alike)
        started = time.perf_counter()
        summary = lib.ingest(paths, listener=events.append, ray=ray)
        wall = time.perf_counter() - started
        papers = {p.key: p.n_chunks for p in lib.papers(limit=10_000)}
    finally:
        lib.close()
    pages = sum(e.pages or 0 for e in events if e.status in ("ingested", "updated"))
    return {
        "wall_s": wall,
        "files": len(summary.ingested),
        "failed": len(summary.failed),
        "pages": pages,
        "papers": papers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=22, help="PDFs to ingest (smallest first)")
    parser.add_argument("--order", default="local,ray", help="which ingest runs first")
    args = parser.parse_args()
    paths = sorted(PDFS.glob("*.pdf"), key=lambda p: p.stat().st_size)[: args.limit]
    base = Settings.from_env()
    print(f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine()}")
    print(f"# {len(paths)} PDFs of {PDFS}; workers {base.workers}, {base.embed_backend}, "
          f"second encoder {base.second_encoder}")  # fmt: skip
    results = {}
    with tempfile.TemporaryDirectory(prefix="kb-bench-ray-") as tmp:
        for way in args.order.split(","):
            settings = base.replace(data_dir=Path(tmp) / way)
            results[way] = run(settings, paths, "local" if way == "ray" else None)
    print("| ingest | wall s | files/s | pages/s | chunks/s | files | pages | chunks | failed |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for way, r in results.items():
        wall, chunks = r["wall_s"], sum(r["papers"].values())
        print(
            f"| {way} | {wall:.1f} | {r['files'] / wall:.3f} | {r['pages'] / wall:.2f} | "
            f"{chunks / wall:.1f} | {r['files']} | {r['pages']} | {chunks} | {r['failed']} |"
        )
    papers = [r["papers"] for r in results.values()]
    same = all(p == papers[0] for p in papers)
    print(f"same papers and chunk counts both ways: {same}")


if __name__ == "__main__":
    main()
