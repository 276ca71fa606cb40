"""Ingest jobs: files queued for ``Library.ingest`` and run by one worker thread, in order.

A job is a list of PDFs (uploaded copies in ``files_dir``, or the PDFs of a server folder).
The worker runs jobs one after another; a listener turns each ``IngestEvent`` into the
outcome of that file, so a client can poll a job's progress. Jobs are stored
(``kb.store.jobs``, the last ``KEEP_JOBS``): the runner writes a job when it is submitted and
whenever its status or a file's outcome changes, so jobs can be read after a restart. Stopping
the server leaves the running job and the queued ones queued, with their pending files; the
next ``start`` runs them again, in order (ingest skips files it already stored unchanged).
"""

from __future__ import annotations

import logging
import queue
import secrets
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from ingest.documents import iter_inputs
from kb.errors import (
    Busy,
    Cancelled,
    Forbidden,
    InvalidInput,
    KBError,
    NotFound,
    StoreError,
    translate,
)
from kb.library.core import Core
from kb.library.ingest import STATUSES, Ingester, IngestEvent
from kb.store.jobs import StoredJob, StoredJobFile

KEEP_JOBS = 100
MAX_WAITING = 64  # jobs queued or running; more are refused (Busy: 503 with Retry-After)
STOP_WAIT_S = 30.0  # how long shutdown waits for the running job to reach its next file
JOB_STATUSES = ("queued", "running", "done", "failed")
FILE_STATUSES = ("pending", *STATUSES)

log = logging.getLogger(__name__)


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

    def stored(self) -> StoredJobFile:
        path = None if self.path is None else str(self.path)
        return StoredJobFile(self.name, path, self.status, self.paper_id, self.detail)

    @property
    def todo(self) -> bool:
        """Still to ingest: pending, with a file to read."""
        return self.status == "pending" and self.path is not None


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
    ocr: bool = False  # OCR the pages without usable text (Tesseract, where installed)

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
            "ocr": self.ocr,
            "files": [f.to_dict() for f in self.files],
            "counts": counts,
        }

    def stored(self) -> StoredJob:
        return StoredJob(
            self.id,
            self.status,
            self.created_at,
            self.started_at,
            self.finished_at,
            self.error,
            tuple(f.stored() for f in self.files),
            self.ocr,
        )

    @classmethod
    def from_stored(cls, job: StoredJob) -> Job:
        files = [
            JobFile(
                f.name, None if f.path is None else Path(f.path), f.status, f.paper_id, f.detail
            )
            for f in job.files
        ]
        return cls(job.id, files, job.status, job.created_at, job.started_at, job.finished_at,
                   job.error, job.ocr)  # fmt: skip


class JobRunner:
    """Runs ingest jobs on one worker thread; ``submit`` returns at once.

    Lock order: the runner's ``_lock`` is never held while taking the library's lock (the
    store's), so a client reading a job never waits on a deadlock with the worker.
    """

    def __init__(
        self,
        core: Core,
        ingester: Ingester,
        *,
        keep: int = KEEP_JOBS,
        max_waiting: int | None = None,
    ) -> None:
        self.core, self.ingester = core, ingester
        self.keep = keep
        self.max_waiting = MAX_WAITING if max_waiting is None else max_waiting
        self._waiters: dict[str, Callable[[dict[str, Any]], None]] = {}  # job id -> on_done
        self._jobs: OrderedDict[str, Job] = OrderedDict()  # the recent ones, also in the store
        self._lock = threading.Lock()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="kb-ingest-jobs", daemon=True)
        self._stopping = False
        self._cancel = threading.Event()  # set by stop(): the running job ends at its next file

    def start(self) -> JobRunner:
        """Queue again the jobs the store holds as queued or running, then start the worker."""
        self._resume()
        self._thread.start()
        return self

    def stop(self, timeout: float | None = STOP_WAIT_S) -> bool:
        """Stop the running job at its next file and end the worker thread.

        What the running job stored stays; it and the queued jobs stay queued (in the store
        too) with their pending files, for the next ``start``. Returns False when the worker is
        still busy after ``timeout`` seconds (a file still parsing or embedding); it is a daemon
        thread and ends with the process (its job is still ``running`` in the store, and the
        next ``start`` resumes it too).
        """
        with self._lock:
            self._stopping = True
        self._cancel.set()
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def alive(self) -> bool:
        """True while the worker thread runs (or the runner is stopping on purpose)."""
        with self._lock:
            return self._stopping or self._thread.is_alive()

    def ensure_room(self) -> None:
        """Raise Busy (503, Retry-After) when ``max_waiting`` jobs are queued or running, so
        a flood of uploads is refused at once instead of piling up on disk and in memory."""
        with self._lock:
            waiting = sum(job.status in ("queued", "running") for job in self._jobs.values())
        if waiting >= self.max_waiting:
            raise Busy(
                f"The server has {waiting} ingest jobs waiting, its limit; send the files again "
                "in a minute (see Retry-After).",
                retry_after=60,
            )

    def submit(
        self,
        files: list[JobFile],
        *,
        ocr: bool = False,
        on_done: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Store and queue a job over ``files`` (entries with no path are kept as they are).

        While the server stops, the job is stored queued and runs after the next start.

        Args:
            ocr: OCR the pages without usable text (``Library.ingest(ocr=True)``); a file
                already stored with such pages is read again, in place.
            on_done: called (on the worker thread) with the job as JSON-ready data when it
                ends, done or failed; not when the server stops first.
        """
        job = Job(id=secrets.token_hex(8), files=files, ocr=ocr)
        store = self.core.store
        try:
            with self.core.lock:
                store.jobs.add(job.stored(), keep=self.keep)
        except sqlite3.Error as e:
            raise StoreError(
                f"Cannot record the ingest job in {store.path}: {e}. Check the disk, then send "
                "the files again."
            ) from e
        with self._lock:
            self._remember(job)
            if on_done is not None:
                self._waiters[job.id] = on_done
            snapshot, stopping = job.to_dict(), self._stopping
        if not stopping:
            self._queue.put(job)
        return snapshot

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The job as JSON-ready data, or None when it is unknown (or long forgotten)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                return job.to_dict()
        with self.core.lock:
            stored = self.core.store.jobs.get(job_id)
        return None if stored is None else Job.from_stored(stored).to_dict()

    def jobs(self) -> list[dict[str, Any]]:
        """Recent jobs (the last ``keep``), newest first."""
        with self.core.lock:
            stored = self.core.store.jobs.recent(self.keep)
        with self._lock:
            live = [self._jobs.get(s.id) or Job.from_stored(s) for s in stored]
            return [job.to_dict() for job in live]

    def _remember(self, job: Job) -> None:
        """Keep ``job`` in memory (the caller holds the lock); older ones are read from store."""
        self._jobs[job.id] = job
        while len(self._jobs) > self.keep:
            self._jobs.popitem(last=False)

    def _save(self, job: Job, files: Iterable[int] = ()) -> None:
        """Write the job's status and times, and the outcome of ``files`` (positions).

        Only the worker (and ``start``, before it runs) writes a job after ``submit``, so the
        writes of one job reach the store in order. A failed write is logged: the job goes on.
        """
        with self._lock:
            status, started, finished, error = (
                job.status,
                job.started_at,
                job.finished_at,
                job.error,
            )
            outcomes = {i: job.files[i].stored() for i in files}
        try:
            with self.core.lock:
                self.core.store.jobs.update(
                    job.id,
                    status=status,
                    started_at=started,
                    finished_at=finished,
                    error=error,
                    files=outcomes,
                )
        except (sqlite3.Error, KBError) as e:
            log.warning("Cannot store the state of ingest job %s: %s", job.id, e)

    def _resume(self) -> None:
        """Queue the stored jobs that did not end, oldest first; a file gone fails with why."""
        with self.core.lock:
            found = self.core.store.jobs.unfinished()
        for stored in found:
            job = Job.from_stored(stored)
            gone = []
            for i, f in enumerate(job.files):
                if f.todo and f.path is not None and not f.path.is_file():
                    f.status = "failed"
                    f.detail = (
                        f"{f.name!r} is no longer at {f.path} (removed while the server was "
                        "stopped); send it again."
                    )
                    gone.append(i)
            job.status, job.started_at, job.error = "queued", None, None
            self._save(job, gone)
            with self._lock:
                self._remember(job)
            self._queue.put(job)

    # -- the worker

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            with self._lock:
                if self._stopping:  # stays queued, in the store too: the next start runs it
                    continue
                job.status, job.started_at = "running", _now()
            self._save(job)
            try:
                self._run(job)
                status, error = "done", None
            except Exception as e:  # noqa: BLE001 - a job failing as a whole is reported
                status, error = "failed", str(translate(e) or e) or type(e).__name__
                if isinstance(e, Cancelled) and self._cancel.is_set():
                    status, error = "queued", None
            self._end(job, status, error)

    def _end(self, job: Job, status: str, error: str | None) -> None:
        """Record how a run of ``job`` ended; a job stopped by shutdown waits, queued."""
        changed = []
        with self._lock:
            if status == "queued" and any(f.todo for f in job.files):
                job.status, job.started_at = "queued", None
            else:
                status = "done" if status == "queued" else status
                job.status, job.error, job.finished_at = status, error, _now()
            for i, f in enumerate(job.files):
                if f.status == "pending" and status == "failed":
                    f.status, f.detail = "failed", f"not ingested: {error}"
                    changed.append(i)
            ended = job.status in ("done", "failed")
            waiter = self._waiters.pop(job.id, None) if ended else None
            snapshot = job.to_dict()
        self._save(job, changed)
        if waiter is not None:
            try:
                waiter(snapshot)
            except Exception:  # noqa: BLE001 - a waiter's failure must not end the worker
                log.exception("The waiter of ingest job %s failed", job.id)

    def _run(self, job: Job) -> None:
        """Ingest the job's pending files (a resumed job: only those not done before).

        Each file is checked again now, as it is about to be read: it must still lead (links
        resolved) into the kept uploads or into an import root, so a file swapped for a link
        after the job was accepted is refused; the resolved path is what is read.
        """
        by_name: dict[str, list[int]] = {}
        refused = []
        for i, f in enumerate(job.files):
            if f.todo and f.path is not None:
                resolved, why = self._readable(f)
                if why is None:
                    by_name.setdefault(str(resolved), []).append(i)
                else:
                    with self._lock:
                        f.status, f.detail = "failed", why
                    refused.append(i)
        if refused:
            self._save(job, refused)
        paths = [Path(name) for name in by_name]

        def listen(event: IngestEvent) -> None:
            if event.status in STATUSES:
                hit = by_name.get(event.name, [])
                with self._lock:
                    for i in hit:
                        f = job.files[i]
                        f.status, f.paper_id = event.status, event.paper_id
                        # name the file as the client knows it, not by its kept path
                        detail = event.detail.replace(event.name, f.name)
                        f.detail = detail.replace(Path(event.name).name, f.name) or None
                if hit:
                    self._save(job, hit)
            if self._cancel.is_set():  # unwinds the ingest; what is stored stays
                raise Cancelled("The server stopped during this job; it resumes on the next start.")

        if paths:
            self.ingester.ingest(paths, listen, ocr=job.ocr)
        missed = []
        with self._lock:  # an input the pipeline said nothing about (should not happen)
            for i, f in enumerate(job.files):
                if f.status == "pending":
                    f.status, f.detail = "failed", "the ingest reported nothing for this file"
                    missed.append(i)
        if missed:
            self._save(job, missed)

    def _readable(self, f: JobFile) -> tuple[Path, str | None]:
        """(the file's path with links resolved, why it may not be read now or None).

        A file of a server folder (under an import root) must still lead into the roots; a
        kept upload lies in ``files_dir``, which kb alone writes.
        """
        assert f.path is not None
        try:
            resolved = f.path.resolve()
        except (OSError, RuntimeError):  # a link loop: the ingest says why it cannot read it
            return f.path, None
        roots = self.core.settings.import_root_paths
        from_folder = any(f.path.is_relative_to(root) for root in roots)
        if from_folder and not any(resolved.is_relative_to(root) for root in roots):
            return resolved, (
                f"{f.name!r} now leads outside the import roots (it was replaced by a link after "
                "the job was accepted); it was not read."
            )
        return resolved, None


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


def upload_files(
    keep: Callable[[BinaryIO, str], Path], uploads: list[tuple[str, BinaryIO]]
) -> list[JobFile]:
    """Keep uploaded files (``keep``: ``Library.keep_upload``); one that is refused (not a
    PDF, too large) is listed as failed with why, and the others still go to the job."""
    out = []
    for name, stream in uploads:
        try:
            out.append(JobFile(name, keep(stream, name)))
        except KBError as e:
            out.append(JobFile(name, None, "failed", detail=str(e)))
    return out
