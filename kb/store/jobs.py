"""Store I/O for the server's ingest jobs, so that they outlive a restart.

``Store.jobs`` (a ``Jobs``) reads and writes them; ``kb.library.jobs.JobRunner`` decides
what to write and when. A job row keeps its status and times; each of its files keeps the name
the client knows, the path of the PDF to ingest (a kept upload or a server file) and what
ingesting it did. Jobs hold no vectors: their writes leave the store's ``generation`` alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kb.store.database import Database

FINISHED = ("done", "failed")


@dataclass(frozen=True)
class StoredJobFile:
    """One file of a stored job; ``path`` None: refused before the job (already failed)."""

    name: str
    path: str | None
    status: str
    paper_id: int | None
    detail: str | None


@dataclass(frozen=True)
class StoredJob:
    """An ingest job as stored; ``files`` in the order the client sent them."""

    id: str
    status: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    error: str | None
    files: tuple[StoredJobFile, ...]
    ocr: bool = False  # OCR the pages without usable text


def _columns(job: StoredJob) -> tuple[str, str, str, str | None, str | None, str | None]:
    """id, status, created_at, started_at, finished_at and error of ``job``."""
    return (job.id, job.status, job.created_at, job.started_at, job.finished_at, job.error)


class Jobs:
    """The server's stored ingest jobs; ``store.jobs``."""

    def __init__(self, store: Database) -> None:
        self._store = store

    def add(self, job: StoredJob, *, keep: int) -> None:
        """Store a new job with its files; forget finished jobs older than the last ``keep``."""
        with self._store.transaction() as db:
            db.execute(
                "INSERT INTO ingest_jobs "
                "(id, status, created_at, started_at, finished_at, error, ocr) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*_columns(job), int(job.ocr)),
            )
            db.executemany(
                "INSERT INTO ingest_job_files "
                "(job_id, ord, name, path, status, paper_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (job.id, ord_, f.name, f.path, f.status, f.paper_id, f.detail)
                    for ord_, f in enumerate(job.files)
                ],
            )
            db.execute(
                "DELETE FROM ingest_jobs WHERE status IN (?, ?) AND seq NOT IN "
                "(SELECT seq FROM ingest_jobs ORDER BY seq DESC LIMIT ?)",
                (*FINISHED, keep),
            )

    def update(
        self,
        job_id: str,
        *,
        status: str,
        started_at: str | None,
        finished_at: str | None,
        error: str | None,
        files: dict[int, StoredJobFile] | None = None,
    ) -> None:
        """Set a job's status and times, and the outcome of the files given (by position)."""
        with self._store.transaction() as db:
            db.execute(
                "UPDATE ingest_jobs SET status = ?, started_at = ?, finished_at = ?, error = ? "
                "WHERE id = ?",
                (status, started_at, finished_at, error, job_id),
            )
            db.executemany(
                "UPDATE ingest_job_files SET status = ?, paper_id = ?, detail = ? "
                "WHERE job_id = ? AND ord = ?",
                [
                    (f.status, f.paper_id, f.detail, job_id, ord_)
                    for ord_, f in (files or {}).items()
                ],
            )

    def get(self, job_id: str) -> StoredJob | None:
        """One job with its files, or None when it is unknown (or was pruned)."""
        found = self._stored_jobs("WHERE id = ?", (job_id,))
        return found[0] if found else None

    def recent(self, limit: int) -> list[StoredJob]:
        """The last ``limit`` jobs, newest first."""
        return self._stored_jobs("ORDER BY seq DESC LIMIT ?", (limit,))

    def unfinished(self) -> list[StoredJob]:
        """Jobs still queued or running (the server stopped before they ended), oldest first."""
        return self._stored_jobs("WHERE status NOT IN (?, ?) ORDER BY seq", FINISHED)

    def awaited_paths(self) -> set[str]:
        """Paths of the pending files of unfinished jobs (to keep: the next start ingests them)."""
        rows = self._store.read(
            "SELECT f.path FROM ingest_job_files f JOIN ingest_jobs j ON j.id = f.job_id "
            "WHERE j.status NOT IN (?, ?) AND f.status = 'pending' AND f.path IS NOT NULL",
            FINISHED,
        )
        return {r[0] for r in rows}

    def _stored_jobs(self, tail: str, args: tuple[object, ...]) -> list[StoredJob]:
        rows = self._store.read(
            "SELECT id, status, created_at, started_at, finished_at, error, ocr "
            f"FROM ingest_jobs {tail}",
            args,
        )
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        marks = ",".join("?" * len(ids))
        by_job: dict[str, list[StoredJobFile]] = {job_id: [] for job_id in ids}
        for f in self._store.read(
            "SELECT job_id, name, path, status, paper_id, detail FROM ingest_job_files "
            f"WHERE job_id IN ({marks}) ORDER BY job_id, ord",
            ids,
        ):
            paper_id = None if f["paper_id"] is None else int(f["paper_id"])
            by_job[f["job_id"]].append(
                StoredJobFile(f["name"], f["path"], f["status"], paper_id, f["detail"])
            )
        return [
            StoredJob(
                id=r["id"],
                status=r["status"],
                created_at=r["created_at"],
                started_at=r["started_at"],
                finished_at=r["finished_at"],
                error=r["error"],
                files=tuple(by_job[r["id"]]),
                ocr=bool(r["ocr"]),
            )
            for r in rows
        ]
