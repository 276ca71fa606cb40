"""``kb doctor``: check SQLite against the FAISS indexes and repair what can be repaired.

SQLite is the source of truth. What is checked:
- the database file itself (``PRAGMA integrity_check``): a damaged file is named with what to
  do, and nothing else is checked (the other checks read it);
- each encoder's saved FAISS index: its bytes against the checksum recorded when it was saved,
  the store generation it mirrors, ids it has that no chunk has (orphan vectors), chunk ids it
  lacks;
- chunks without a vector (per encoder), vectors of the wrong size (written outside kb: they
  cannot be read), papers without chunks, keyword rows without a chunk and chunks without a
  keyword row;
- the tantivy keyword index of a large library (``index.terms``), if there is one: readable,
  and holding as many chunks as the store has keyword rows once it has applied the keyword
  log (changes not applied yet are not damage: the next search applies them);
- recorded PDF files that are gone from disk (reported only: the paper is still searchable);
- uploads kept in ``files_dir`` that no paper records, older than an hour (a failed upload);
  those an unfinished ingest job still awaits are kept (the server's next start ingests them).

Repair rebuilds each index (and the keyword index) from SQLite, embeds chunks that lack
vectors or whose vectors are of the wrong size, rebuilds missing keyword rows, deletes orphan
keyword rows and unused uploads, and removes papers that have no chunks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.terms import TermIndex
from index.vectors import INDEX_FILE, VectorIndex
from kb.errors import StoreError
from kb.library.core import Core
from kb.store.database import damaged_store_fix
from kb.store.uploads import discard, unused_uploads

UNUSED_UPLOAD_AGE_S = 3600.0  # younger uploads may still be waiting in a server's ingest job


@dataclass
class Finding:
    check: str
    count: int
    detail: str
    repairable: bool = True
    repaired: bool = False
    damaged: bool = False  # the store itself is damaged: repair cannot help, the detail says what


@dataclass
class DoctorReport:
    findings: list[Finding] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        broken = any(f.count and f.damaged for f in self.findings)
        return not broken and not any(
            f.count for f in self.findings if f.repairable and not f.repaired
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "healthy": self.healthy,
            "findings": [f.__dict__ for f in self.findings],
        }


def diagnose(
    core: Core, repair: Callable[[dict[str, list[int]]], None] | None = None
) -> DoctorReport:
    """Check the library; with ``repair`` (called with the integrity problems), fix what can
    be fixed and say what was."""
    report = DoctorReport()
    store = core.store
    damaged = store.integrity_problems()
    if damaged:
        detail = (
            f"{store.path} is damaged: {'; '.join(damaged[:3])}. {damaged_store_fix(store.path)}"
        )
        report.findings.append(
            Finding("database file", len(damaged), detail, repairable=False, damaged=True)
        )
        return report
    for side in core.unloaded():
        name = side.embedder.name
        saved = VectorIndex.peek(side.folder)
        stored = store.chunks.vector_ids(slot=side.slot)  # ids alone: no vector is read
        damage = _file_damage(side.folder) if saved is not None else None
        if saved is None:
            report.findings.append(Finding(f"index {name}", 1, "no saved index file"))
        elif damage is not None:
            where = side.folder / INDEX_FILE
            detail = f"{where}: {damage}; repair rebuilds it from the store"
            report.findings.append(Finding(f"index {name}", 1, detail))
        else:
            generation, ids = saved
            orphans = np.setdiff1d(ids, stored).size
            missing = np.setdiff1d(stored, ids).size
            stale = int(generation != store.generation())
            detail = f"{orphans} vectors without a chunk, {missing} chunks not indexed" + (
                f"; saved at generation {generation}, store at {store.generation()}" * stale
            )
            report.findings.append(Finding(f"index {name}", orphans + missing + stale, detail))
    report.findings.append(_keyword_index(core))
    problems = store.works.integrity()
    for check, found in problems.items():
        report.findings.append(Finding(check.replace("_", " "), len(found), _sample(found)))
    for slot in core.extra_slots():
        lacking = store.chunks.without_vectors(slot, limit=1_000_000)
        report.findings.append(
            Finding(f"chunks without {slot} vector", len(lacking), _sample([r[0] for r in lacking]))
        )
    for side in core.unloaded():
        wrong = store.chunks.wrong_size(side.identity.dim, slot=side.slot)
        problems[wrong_size_key(side.slot)] = wrong
        name = f"{side.embedder.name} vectors of the wrong size"
        report.findings.append(Finding(name, len(wrong), _sample(wrong)))
    recorded = [path for _, path in store.works.missing_files()]
    gone = [path for path in recorded if not Path(path).exists()]
    report.findings.append(
        Finding("files gone from disk", len(gone), _sample(gone), repairable=False)
    )
    used = set(recorded) | {str(Path(p).resolve()) for p in store.jobs.awaited_paths()}
    unused = unused_uploads(core.settings.files_dir, used, older_than_s=UNUSED_UPLOAD_AGE_S)
    report.findings.append(
        Finding("uploads no paper uses", len(unused), _sample([p.name for p in unused]))
    )
    # not damage, but not fully read either: a warning with what to run
    unread = store.works.needing_ocr()
    detail = f"in papers {_sample(list(unread))}; `kb ocr` reads them" if unread else ""
    report.findings.append(
        Finding("pages that need OCR", sum(unread.values()), detail, repairable=False)
    )
    if repair is not None and not report.healthy:
        repair(problems)
        for path in unused:  # a job's upload that never became a paper (server stopped)
            discard(path)
        for finding in report.findings:
            if finding.repairable and finding.count:
                finding.repaired = True
    return report


def _keyword_index(core: Core) -> Finding:
    """The tantivy keyword index's finding (nothing to count when the library has none)."""
    folder, store = core.terms_folder(), core.store
    if not core.keeps_terms():
        return Finding("keyword index", 0, "")
    terms = TermIndex.open(folder)
    if terms is None:
        return Finding("keyword index", 1, f"{folder} cannot be read; repair builds it again")
    seq, rows = store.keywords.log_seq(), store.keywords.count()
    if terms.seq < seq:
        return Finding("keyword index", 0, f"{seq - terms.seq} keyword changes to apply at the "
                       "next search")  # fmt: skip
    if terms.size != rows:
        detail = f"{terms.size} chunks in {folder}, {rows} keyword rows in the store"
        return Finding("keyword index", 1, f"{detail}; repair builds it again")
    return Finding("keyword index", 0, "")


def _file_damage(folder: Path) -> str | None:
    try:
        return VectorIndex.damage(folder)
    except (StoreError, OSError) as e:
        return str(e)


def wrong_size_key(slot: str | None) -> str:
    """Where ``diagnose`` puts an encoder's vectors of the wrong size among the problems."""
    return f"vectors_of_the_wrong_size:{slot or ''}"


def _sample(items: list[int] | list[str], n: int = 5) -> str:
    if not items:
        return ""
    shown = ", ".join(str(i) for i in items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")
