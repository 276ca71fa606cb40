"""Ingest jobs: files queued for ``Library.ingest`` and run by one worker thread, in order.

A job is a list of PDFs (uploaded copies in ``files_dir``, or the PDFs of a server folder).
The worker runs jobs one after another; a listener turns each ``IngestEvent`` into the
outcome of that file, so a client can poll a job's progress. Jobs live in memory (the last
``KEEP_JOBS``); they are not resumed after a restart.
"""

from __future__ import annotations

import queue
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ingest.documents import iter_inputs
from kb.errors import Cancelled, Forbidden, InvalidInput, KBError, NotFound
from kb.pipeline import STATUSES, IngestEvent

if TYPE_CHECKING:
    from kb.service import Library

KEEP_JOBS = 100
STOP_WAIT_S = 30.0  # how long shutdown waits for the running job to reach its next file
JOB_STATUSES = ("queued", "running", "done", "failed")
FILE_STATUSES = ("pending", *STATUSES)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class JobFile:
    """One file of a job: the name shown to the client and what ingesting it did."""

    name: str
    path: Path | None  # None: refused before the job (e.g. not a PDF), status already failed
    status: str = "pending"
    paper_id: int | None = None
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "paper_id": self.paper_id,
            "detail": self.detail,
        }


@dataclass
class Job:
    """An ingest job; changed only by its runner, under the runner's lock."""

    id: str
    files: list[JobFile]
    status: str = "queued"
    created_at: str = field(default_factory=_now)
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for f in self.files:
            counts[f.status] = counts.get(f.status, 0) + 1
        return {
            "id": self.id,
            "status": self.status,
            "total": len(self.files),
            "done": sum(f.status != "pending" for f in self.files),
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "files": [f.to_dict() for f in self.files],
            "counts": counts,
        }


class JobRunner:
    """Runs ingest jobs on one worker thread; ``submit`` returns at once."""

    def __init__(self, library: Library, *, keep: int = KEEP_JOBS) -> None:
        self.library = library
        self.keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="kb-ingest-jobs", daemon=True)
        self._stopping = False
        self._cancel = threading.Event()  # set by stop(): the running job ends at its next file

    def start(self) -> JobRunner:
        self._thread.start()
        return self

    def stop(self, timeout: float | None = STOP_WAIT_S) -> bool:
        """Stop the running job at its next file, fail the queued ones, end the worker thread.

        What the running job stored stays; its other files are marked failed, to be ingested
        again. Returns False when the worker is still busy after ``timeout`` seconds (a file
        still parsing or embedding); it is a daemon thread and ends with the process.
        """
        with self._lock:
            self._stopping = True
        self._cancel.set()
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def submit(self, files: list[JobFile]) -> dict[str, Any]:
        """Queue a job over ``files`` (entries with no path are kept as they are)."""
        job = Job(id=secrets.token_hex(8), files=files)
        with self._lock:
            if self._stopping:
                job.status, job.error, job.finished_at = "failed", "The server is stopping.", _now()
            self._jobs[job.id] = job
            while len(self._jobs) > self.keep:
                self._jobs.popitem(last=False)
            snapshot = job.to_dict()
        if job.status == "queued":
            self._queue.put(job)
        return snapshot

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The job as JSON-ready data, or None when it is unknown (or long forgotten)."""
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else job.to_dict()

    def jobs(self) -> list[dict[str, Any]]:
        """Recent jobs, newest first."""
        with self._lock:
            return [job.to_dict() for job in reversed(self._jobs.values())]

    # -- the worker

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            with self._lock:
                if self._stopping:
                    job.status, job.error = "failed", "The server stopped before the job ran."
                    job.finished_at = _now()
                    continue
                job.status, job.started_at = "running", _now()
            try:
                self._run(job)
                status, error = "done", None
            except Exception as e:  # noqa: BLE001 - a job failing as a whole is reported
                status, error = "failed", str(e) or type(e).__name__
            with self._lock:
                job.status, job.error, job.finished_at = status, error, _now()
                for f in job.files:
                    if f.status == "pending" and status == "failed":
                        f.status, f.detail = "failed", f"not ingested: {error}"

    def _run(self, job: Job) -> None:
        by_name: dict[str, list[JobFile]] = {}
        for f in job.files:
            if f.path is not None:
                by_name.setdefault(str(f.path), []).append(f)
        paths = [Path(name) for name in by_name]

        def listen(event: IngestEvent) -> None:
            if event.status in STATUSES:
                with self._lock:
                    for f in by_name.get(event.name, []):
                        f.status, f.paper_id = event.status, event.paper_id
                        # name the file as the client knows it, not by its kept path
                        detail = event.detail.replace(event.name, f.name)
                        f.detail = detail.replace(Path(event.name).name, f.name) or None
            if self._cancel.is_set():  # unwinds the ingest; what is stored stays
                raise Cancelled("The server stopped during this job; ingest these files again.")

        if paths:
            self.library.ingest(paths, listen)
        with self._lock:  # an input the pipeline said nothing about (should not happen)
            for f in job.files:
                if f.status == "pending":
                    f.status, f.detail = "failed", "the ingest reported nothing for this file"


# -- what a job reads


def folder_files(folder: str, roots: tuple[Path, ...]) -> list[JobFile]:
    """The PDFs of a server folder (recursively), which must lie inside one of ``roots``.

    Raises:
        Forbidden: no roots configured, a ``..`` in the path, or a folder outside the roots
            (symlinks resolved). InvalidInput: not an absolute path. NotFound: no such folder.
    """
    if not roots:
        raise Forbidden("Server folder import is off: the server has no KB_IMPORT_ROOTS.")
    path = Path(folder)
    if "\0" in folder or not folder.strip() or not path.is_absolute():
        raise InvalidInput(f"folder must be an absolute server path, not {folder!r}.")
    if ".." in path.parts:
        raise Forbidden(f"folder may not contain '..': {folder!r}.")
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as e:
        raise InvalidInput(f"Cannot resolve folder {folder!r}: {e}.") from e
    if not any(resolved.is_relative_to(root) for root in roots):
        shown = ", ".join(str(r) for r in roots)
        raise Forbidden(f"{folder!r} is outside the import roots ({shown}).")
    if not resolved.is_dir():
        raise NotFound(f"No folder {folder!r} on the server.")
    found, _ = iter_inputs([resolved])
    # a symlinked file counts only when what it points at is inside the roots too
    pdfs = [
        f
        for f in found
        if f.suffix.lower() == ".pdf" and any(f.resolve().is_relative_to(r) for r in roots)
    ]
    if not pdfs:
        raise InvalidInput(f"{folder!r} holds no PDF files.")
    return [JobFile(str(f.relative_to(resolved)), f) for f in pdfs]


def upload_files(library: Library, uploads: list[tuple[str, BinaryIO]]) -> list[JobFile]:
    """Keep uploaded files in ``files_dir``; one that is refused (not a PDF, too large) is
    listed as failed with why, and the others still go to the job."""
    out = []
    for name, stream in uploads:
        try:
            out.append(JobFile(name, library.keep_upload(stream, name)))
        except KBError as e:
            out.append(JobFile(name, None, "failed", detail=str(e)))
    return out
