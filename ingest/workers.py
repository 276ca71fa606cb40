"""Parse many PDFs in worker processes, each job under a time and memory cap.

One hostile file (a parser loop, a decompression bomb, a crash in a C extension) costs
only its own job: the worker is killed or dies, a fresh one takes over, and the job's
outcome carries one clear line saying what happened. The parent process, which holds
torch and the embedding model, is never forked: workers come from a "forkserver" context,
a small clean process that only has the ingest modules loaded.

    with closing(parse_many(jobs, workers=4, timeout_s=300, memory_mb=2048)) as outcomes:
        for outcome in outcomes:  # in job order; outcome.doc or else outcome.error is set
            ...
"""

from __future__ import annotations

import inspect
import multiprocessing
import os
import resource
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from kb.errors import IngestError
from kb.types import ParsedDocument

# A worker exits with this code after a MemoryError, so the parent can name the cause.
_EXIT_NO_MEMORY = 86
# How long a worker asked to stop may take before it is killed.
_STOP_GRACE_S = 2.0
_MAX_REASON_CHARS = 160


@dataclass(frozen=True)
class ParseJob:
    """One PDF to parse, with the chunking settings (picklable: it is sent to a worker).

    ``content_hash`` is the file's SHA-256, which the caller has already computed (to check
    the file against the store); the parsed document carries it as its key.
    """

    path: Path
    max_tokens: int
    overlap: int
    ocr: bool = False
    content_hash: str = field(kw_only=True)


@dataclass(frozen=True)
class ParseOutcome:
    """What became of one job: ``doc``, or else ``error`` (one line naming the file)."""

    job: ParseJob
    doc: ParsedDocument | None
    error: str | None
    seconds: float


Parse = Callable[[ParseJob], ParsedDocument]


def parse_job(job: ParseJob) -> ParsedDocument:
    """Parse one job's PDF with ``ingest.documents.parse_pdf``."""
    from ingest.documents import parse_pdf

    kwargs: dict[str, Any] = {
        "content_hash": job.content_hash,
        "max_tokens": job.max_tokens,
        "overlap": job.overlap,
    }
    if "ocr" in inspect.signature(parse_pdf).parameters:
        kwargs["ocr"] = job.ocr
    elif job.ocr:
        raise IngestError(f"Cannot OCR {job.path.name!r}: this version of kb has no OCR support.")
    return parse_pdf(job.path, **kwargs)


def parse_many(
    jobs: Iterable[ParseJob],
    *,
    workers: int,
    timeout_s: float,
    memory_mb: int,
    parse: Parse = parse_job,
) -> Iterator[ParseOutcome]:
    """Parse jobs in ``workers`` processes and yield one outcome per job, in job order.

    ``jobs`` is read lazily: at most ``2 * workers`` jobs are running or waiting to be
    yielded at any time. Close the generator (or let it finish) to stop the workers; a
    ``for`` loop left by ``break`` or an exception closes it when it is garbage-collected,
    so prefer ``with contextlib.closing(parse_many(...)) as outcomes:``.

    Args:
        workers: processes to run; 0 parses in this process, with no caps (for debugging).
        timeout_s: a job running longer than this has its worker killed and fails.
        memory_mb: address-space cap (RLIMIT_AS) of each worker; 0 for none.
        parse: the function run on each job; it must be picklable (a module-level function).
    """
    if workers <= 0:
        for job in jobs:
            yield _parse_here(job, parse)
        return
    pool = _Pool(parse, size=workers, timeout_s=timeout_s, memory_mb=memory_mb)
    try:
        yield from _in_order(pool, iter(jobs), window=2 * workers)
    finally:
        pool.close()


def _in_order(pool: _Pool, jobs: Iterator[ParseJob], window: int) -> Iterator[ParseOutcome]:
    """Keep the pool busy with at most ``window`` jobs in flight, and yield in job order."""
    done: dict[int, ParseOutcome] = {}
    next_in = next_out = 0
    exhausted = False
    while True:
        while not exhausted and next_in - next_out < window and pool.can_take():
            job = next(jobs, None)
            if job is None:
                exhausted = True
            else:
                pool.submit(next_in, job)
                next_in += 1
        if next_out in done:
            yield done.pop(next_out)
            next_out += 1
        elif exhausted and next_out == next_in:
            return
        else:
            done.update(pool.collect())


def _parse_here(job: ParseJob, parse: Parse) -> ParseOutcome:
    start = time.perf_counter()
    try:
        doc, error = parse(job), None
    except MemoryError:
        doc, error = None, f"{job.path.name!r} ran out of memory while parsing; skipped."
    except Exception as e:
        doc, error = None, _failure(job, e)
    return ParseOutcome(job, doc, error, time.perf_counter() - start)


def _failure(job: ParseJob, error: Exception) -> str:
    """The one-line message for an exception raised by a parse."""
    if isinstance(error, IngestError):
        return str(error)
    lines = str(error).strip().splitlines()
    reason = lines[0].strip().rstrip(".")[:_MAX_REASON_CHARS] if lines else ""
    detail = f"{type(error).__name__}: {reason}" if reason else type(error).__name__
    return (
        f"Cannot parse {job.path.name!r}: unexpected error ({detail}). This is a bug in kb; "
        "please report it together with the file."
    )


# ------------------------------------------------------------------------- worker side


def _serve(conn: Connection, parse: Parse, memory_mb: int) -> None:
    """A worker's main loop: receive a job, send back ("doc"|"error", value, seconds)."""
    # Its own process group: Ctrl-C in a terminal reaches only the parent, which decides
    # when workers stop, and a kill also reaches the parser's subprocesses (OCR tools).
    os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    _limit_memory(memory_mb)
    while True:
        try:
            job = conn.recv()
        except EOFError:  # the parent has gone
            return
        if job is None:
            return
        start = time.perf_counter()
        try:
            reply: tuple[str, Any] = ("doc", parse(job))
        except MemoryError:
            os._exit(_EXIT_NO_MEMORY)  # the heap may be unusable; a fresh worker takes over
        except Exception as e:
            reply = ("error", _failure(job, e))
        _reply(conn, job, reply, time.perf_counter() - start)


def _reply(conn: Connection, job: ParseJob, reply: tuple[str, Any], seconds: float) -> None:
    try:
        conn.send((*reply, seconds))
    except MemoryError:
        os._exit(_EXIT_NO_MEMORY)
    except OSError:  # the parent has gone (closed early, or killed)
        os._exit(0)
    except Exception as e:  # a result that cannot be pickled; nothing was sent yet
        _reply(conn, job, ("error", _failure(job, e)), seconds)


def _die_with_parent() -> None:
    """Kill this worker and its subprocesses as soon as the main process is gone.

    An idle worker notices on its own (``recv`` fails), but one stuck in a parse would
    outlive a killed ingest, and keep the forkserver alive too.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, name="kb-parse-watchdog", daemon=True).start()


def _limit_memory(memory_mb: int) -> None:
    if memory_mb <= 0:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = memory_mb << 20
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


# ------------------------------------------------------------------------- parent side


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    index: int = -1  # the job it is parsing, -1 when idle
    job: ParseJob | None = None
    started: float = 0.0


class _Pool:
    """Long-lived worker processes, each parsing one job at a time."""

    def __init__(self, parse: Parse, *, size: int, timeout_s: float, memory_mb: int) -> None:
        self.parse = parse
        self.size = size
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.workers: list[_Worker] = []
        self.ctx = _context()

    def can_take(self) -> bool:
        """Whether a job submitted now starts at once (an idle worker, or room for one)."""
        return len(self.workers) < self.size or any(w.job is None for w in self.workers)

    def submit(self, index: int, job: ParseJob) -> None:
        """Start ``job`` (number ``index``) on an idle worker, starting one if needed."""
        worker = next((w for w in self.workers if w.job is None), None)
        if worker is not None and not worker.process.is_alive():  # it died while idle
            self._retire(worker)
            worker = None
        if worker is None:
            worker = self._start()
        try:
            worker.conn.send(job)
        except OSError:  # it died just now
            self._retire(worker)
            worker = self._start()
            worker.conn.send(job)
        worker.index, worker.job, worker.started = index, job, time.monotonic()

    def collect(self) -> list[tuple[int, ParseOutcome]]:
        """Wait until at least one running job ends (done, failed or timed out)."""
        busy = [w for w in self.workers if w.job is not None]
        deadline = min(w.started for w in busy) + self.timeout_s
        handles = [w.conn for w in busy] + [w.process.sentinel for w in busy]
        ready = set(wait(handles, timeout=max(0.0, deadline - time.monotonic())))
        now = time.monotonic()
        ended = []
        for worker in busy:
            if worker.conn in ready or worker.process.sentinel in ready:
                ended.append(self._receive(worker))
            elif now - worker.started >= self.timeout_s:
                ended.append(self._expire(worker))
        return ended

    def close(self) -> None:
        """Stop every worker: ask idle ones to exit, kill busy ones, and reap them all."""
        for worker in self.workers:
            if worker.job is None:
                try:
                    worker.conn.send(None)
                except OSError:
                    pass
            else:
                _kill(worker)
        for worker in self.workers:
            _reap(worker)
        self.workers = []

    def _receive(self, worker: _Worker) -> tuple[int, ParseOutcome]:
        job, index = worker.job, worker.index
        assert job is not None
        try:
            kind, value, seconds = worker.conn.recv()
        except (EOFError, OSError):  # it died: see how, and end any subprocess it left
            _kill(worker)
            error = _death(job, self._retire(worker), self.memory_mb)
            return index, ParseOutcome(job, None, error, time.monotonic() - worker.started)
        worker.index, worker.job = -1, None
        if kind == "doc":
            return index, ParseOutcome(job, value, None, seconds)
        return index, ParseOutcome(job, None, value, seconds)

    def _expire(self, worker: _Worker) -> tuple[int, ParseOutcome]:
        job, index = worker.job, worker.index
        assert job is not None
        _kill(worker)
        self._retire(worker)
        error = (
            f"{job.path.name!r} took longer than {self.timeout_s:g} s to parse; skipped. "
            "Raise KB_PARSE_TIMEOUT_S to allow more."
        )
        return index, ParseOutcome(job, None, error, time.monotonic() - worker.started)

    def _retire(self, worker: _Worker) -> int | None:
        """Reap a worker that has ended or been killed, and give its exit code.

        Its place is taken by a fresh worker when the next job is submitted.
        """
        self.workers.remove(worker)
        return _reap(worker)

    def _start(self) -> _Worker:
        """Start one more worker process."""
        parent_end, child_end = self.ctx.Pipe()
        process = self.ctx.Process(
            target=_serve,
            args=(child_end, self.parse, self.memory_mb),
            name="kb-parse",
            daemon=True,
        )
        process.start()
        child_end.close()
        fresh = _Worker(process, parent_end)
        self.workers.append(fresh)
        return fresh


def _context() -> ForkServerContext:
    """The forkserver context, set to preload the parser so each new worker starts warm."""
    ctx = multiprocessing.get_context("forkserver")
    # Only effective before the forkserver starts; "__main__" is the default preload, kept
    # so a worker does not import the main module again.
    ctx.set_forkserver_preload(["__main__", "ingest.documents"])
    return ctx


def _kill(worker: _Worker) -> None:
    """Kill a worker and every process it started (its process group)."""
    process = worker.process
    if process.pid is not None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):  # not yet its own group, or gone
            pass
    if process.exitcode is None:
        process.kill()


def _reap(worker: _Worker, grace_s: float = _STOP_GRACE_S) -> int | None:
    """Wait for a worker to exit (killing it after ``grace_s``), free it, give its exit code."""
    process = worker.process
    worker.conn.close()
    process.join(grace_s)
    if process.exitcode is None:
        _kill(worker)
        process.join()
    exitcode = process.exitcode
    process.close()
    return exitcode


def _death(job: ParseJob, exitcode: int | None, memory_mb: int) -> str:
    """The message for a job whose worker died while parsing it."""
    name = job.path.name
    if exitcode == _EXIT_NO_MEMORY:
        return (
            f"{name!r} ran out of memory (limit {memory_mb} MiB) while parsing; skipped. It may "
            "be a decompression bomb; raise KB_PARSE_MEMORY_MB to allow more."
        )
    if exitcode is not None and exitcode < 0:
        number = -exitcode
        try:
            what = f"signal {number}, {signal.Signals(number).name}"
        except ValueError:
            what = f"signal {number}"
        cause = f"the parser crashed ({what})"
    else:
        cause = f"the parser exited unexpectedly (exit code {exitcode})"
    return (
        f"Cannot parse {name!r}: {cause}; skipped. The file may be damaged: repair or rewrite "
        "it (e.g. qpdf in.pdf out.pdf) and try again."
    )
