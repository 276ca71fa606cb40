"""``kb ingest --watch DIR``: keep ingesting new or changed PDFs and record files in a folder.

A lab's shared inbox: files are dropped (or copied slowly over a network share) into a folder.
The folder is scanned every ``interval`` seconds; a file is ingested once its size and
modification time are the same on two scans in a row, so a half-copied file is never read.
Each round is an ordinary ``Library.ingest`` of the settled files, with the same guarantees
(unchanged files are skipped, a changed file replaces its old version, failures are reported
and do not stop the watch). ``stop`` (set by Ctrl-C in the CLI) ends the loop between rounds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from ingest.documents import iter_inputs
from kb.errors import InvalidInput
from kb.library.ingest import Ingester, Listener
from kb.types import IngestSummary

Stamp = tuple[int, int]  # (size, mtime in ns)


def watch(
    ingester: Ingester,
    folder: Path,
    *,
    interval: float,
    stop: threading.Event,
    listener: Listener | None = None,
    on_round: Callable[[IngestSummary], None] | None = None,
    ocr: bool = False,
) -> None:
    """Ingest what settles in ``folder`` until ``stop`` is set.

    Args:
        on_round: called after every round that ingested something, with its summary.
    """
    if not folder.is_dir():
        raise InvalidInput(f"{str(folder)!r} is not a folder; --watch needs a folder to watch.")
    seen: dict[Path, Stamp] = {}  # stamp of each file when it was last handed to ingest
    last: dict[Path, Stamp] = {}  # stamp at the previous scan
    while not stop.is_set():
        now = _scan(folder)
        settled = [
            path
            for path, stamp in now.items()
            if last.get(path) == stamp and seen.get(path) != stamp
        ]
        if settled:
            summary = ingester.ingest(settled, listener=listener, ocr=ocr)
            for path in settled:
                seen[path] = now[path]
            if on_round is not None:
                on_round(summary)
        last = now
        stop.wait(interval)


def _scan(folder: Path) -> dict[Path, Stamp]:
    files, _ = iter_inputs([folder])
    out: dict[Path, Stamp] = {}
    for path in files:
        try:
            st = path.stat()
        except OSError:
            continue  # removed between listing and stat
        out[path] = (st.st_size, st.st_mtime_ns)
    return out
