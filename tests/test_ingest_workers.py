"""Parsing in worker processes: caps on time and memory, crashes, order, and clean shutdown."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from ingest.documents import parse_pdf
from ingest.workers import ParseJob, ParseOutcome, parse_many
from kb.errors import IngestError
from kb.store.files import sha256_file
from kb.types import ChunkDraft, PaperMeta, ParsedDocument
from tests.conftest import BADPDFS, PDFS, MakePdf

TIMEOUT_S = 30.0
MEMORY_MB = 1024


# Scripted parse functions run in the workers, so they live at module level (picklable).
def scripted(job: ParseJob) -> ParsedDocument:
    """Act out the job's file name: hang, spawn, oom, kill, boom, refuse, or ok (10 ms per -N)."""
    action = job.path.stem.split("-")[0]
    if action == "hang":
        time.sleep(600)
    elif action == "spawn":  # like OCR: a subprocess, here one that never ends
        child = subprocess.Popen(["sleep", "600"])
        job.path.write_text(str(child.pid))
        time.sleep(600)
    elif action == "oom":
        bytearray(4 << 30)  # 4 GiB, far over the cap
    elif action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "boom":
        raise ValueError("first line\nTraceback (most recent call last):\n  second line")
    elif action == "refuse":
        raise IngestError(f"{job.path.name!r} is not welcome here.")
    elif job.path.stem.count("-"):
        time.sleep(0.01 * int(job.path.stem.split("-")[-1]))
    chunk = ChunkDraft(ord=0, text=f"text of {job.path.name}", lang="en")
    meta = PaperMeta(title=job.path.stem)
    key = job.path.stem
    return ParsedDocument(key, str(job.path), "pdf", "0", meta=meta, chunks=[chunk])


def _job(name: str) -> ParseJob:
    return ParseJob(Path(name), max_tokens=256, overlap=32, content_hash="0")


def _real_job(path: Path, *, max_tokens: int, overlap: int) -> ParseJob:
    """A job for a real PDF, hashed first as kb's pipeline does."""
    return ParseJob(path, max_tokens, overlap, content_hash=sha256_file(path))


def _run(
    names: list[str], *, workers: int = 1, timeout_s: float = TIMEOUT_S, memory_mb: int = MEMORY_MB
) -> list[ParseOutcome]:
    jobs = [_job(name) for name in names]
    outcomes = parse_many(
        jobs, workers=workers, timeout_s=timeout_s, memory_mb=memory_mb, parse=scripted
    )
    return list(outcomes)


def _assert_one_line(outcome: ParseOutcome) -> str:
    assert outcome.doc is None and outcome.error is not None
    assert outcome.job.path.name in outcome.error
    assert "\n" not in outcome.error and "Traceback" not in outcome.error
    return outcome.error


def _gone(pid: int) -> bool:
    """Whether process ``pid`` ends within 5 s (a zombie has ended; its reaper is elsewhere)."""
    for _ in range(50):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


def _workers_alive() -> list[int]:
    return [p.pid for p in multiprocessing.active_children() if p.name == "kb-parse" and p.pid]


def test_every_bad_pdf_ends_as_a_doc_or_one_line_error() -> None:
    # 35 files, workers=2: 8-12 s here (2 shared cores), most of it in the flate bomb (it
    # runs into the 1024 MiB cap; the parser reports it) and the slow page. The caps bound
    # the worst case at 18 rounds of 30 s.
    files = sorted(BADPDFS.glob("*.pdf"))
    assert len(files) == 35
    jobs = [_real_job(path, max_tokens=256, overlap=32) for path in files]
    outcomes = list(parse_many(jobs, workers=2, timeout_s=TIMEOUT_S, memory_mb=MEMORY_MB))
    assert [o.job.path for o in outcomes] == files
    for outcome in outcomes:
        if outcome.doc is None:
            _assert_one_line(outcome)
        else:
            assert outcome.error is None and outcome.doc.chunks


def test_a_hanging_job_is_killed_at_the_timeout_and_the_next_one_runs() -> None:
    start = time.monotonic()
    hung, after = _run(["hang.pdf", "ok.pdf"], timeout_s=1.0)
    assert time.monotonic() - start < 10
    error = _assert_one_line(hung)
    assert error == (
        "'hang.pdf' took longer than 1 s to parse; skipped. Raise KB_PARSE_TIMEOUT_S to allow more."
    )
    assert hung.seconds >= 1.0
    assert after.doc is not None and after.doc.key == "ok"


def test_a_timeout_also_kills_the_parsers_subprocesses(tmp_path: Path) -> None:
    job = ParseJob(tmp_path / "spawn.pdf", max_tokens=256, overlap=32, content_hash="0")
    [outcome] = parse_many([job], workers=1, timeout_s=2.5, memory_mb=MEMORY_MB, parse=scripted)
    assert "took longer than 2.5 s" in _assert_one_line(outcome)
    assert _gone(int(job.path.read_text()))


def test_a_job_over_the_memory_cap_fails_and_the_next_one_runs() -> None:
    failed, after = _run(["oom.pdf", "ok.pdf"], memory_mb=512)
    assert "'oom.pdf' ran out of memory (limit 512 MiB)" in _assert_one_line(failed)
    assert "KB_PARSE_MEMORY_MB" in (failed.error or "")
    assert after.doc is not None


def test_a_worker_killed_by_a_signal_fails_only_its_job() -> None:
    outcomes = _run(["ok-1.pdf", "kill.pdf", "ok-2.pdf", "kill-b.pdf", "ok-3.pdf"], workers=2)
    assert "the parser crashed (signal 9, SIGKILL)" in _assert_one_line(outcomes[1])
    assert "the parser crashed (signal 9, SIGKILL)" in _assert_one_line(outcomes[3])
    assert [o.doc is not None for o in outcomes] == [True, False, True, False, True]


def test_exceptions_become_one_line_errors() -> None:
    boom, refused = _run(["boom.pdf", "refuse.pdf"])
    assert _assert_one_line(boom).startswith(
        "Cannot parse 'boom.pdf': unexpected error (ValueError: first line)."
    )
    assert refused.error == "'refuse.pdf' is not welcome here."


def test_workers_0_parses_in_this_process() -> None:
    outcomes = _run(["ok.pdf", "boom.pdf", "refuse.pdf"], workers=0)
    assert outcomes[0].doc == scripted(_job("ok.pdf"))
    assert _assert_one_line(outcomes[1]).startswith("Cannot parse 'boom.pdf'")
    assert outcomes[2].error == "'refuse.pdf' is not welcome here."
    assert not _workers_alive()


def test_outcomes_come_back_in_job_order() -> None:
    # Early jobs sleep longest, so the workers finish them last.
    names = [f"ok-{n}.pdf" for n in (9, 7, 0, 5, 0, 3, 0, 0, 1, 0)]
    outcomes = _run(names, workers=3)
    assert [o.job.path.name for o in outcomes] == names
    assert all(o.doc is not None and o.doc.key == o.job.path.stem for o in outcomes)


def test_jobs_are_read_lazily() -> None:
    pulled: list[int] = []

    def jobs() -> Iterator[ParseJob]:
        for n in range(1000):
            pulled.append(n)
            yield _job(f"ok-{n % 3}.pdf")

    outcomes = parse_many(
        jobs(), workers=2, timeout_s=TIMEOUT_S, memory_mb=MEMORY_MB, parse=scripted
    )
    with closing(outcomes):
        for _ in range(10):
            next(outcomes)
            assert len(pulled) <= 10 + 2 * 2  # yielded + at most 2 x workers in flight


def test_closing_early_stops_and_reaps_every_worker() -> None:
    outcomes = parse_many(
        [_job(name) for name in ["ok.pdf", "hang.pdf", "hang-b.pdf", "ok-2.pdf"]],
        workers=2,
        timeout_s=TIMEOUT_S,
        memory_mb=MEMORY_MB,
        parse=scripted,
    )
    assert next(outcomes).doc is not None
    pids = _workers_alive()
    assert len(pids) == 2
    start = time.monotonic()
    outcomes.close()
    assert time.monotonic() - start < 5  # the hanging workers were killed, not awaited
    assert not _workers_alive()
    for pid in pids:  # gone for good: neither running nor a zombie
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


_KILLED_PARENT = """
import multiprocessing, os, sys
from pathlib import Path
from ingest.workers import ParseJob, parse_many
from tests.test_ingest_workers import scripted

jobs = [ParseJob(Path(n), 256, 32, content_hash="0") for n in ("ok.pdf", "hang.pdf", "hang-b.pdf")]
outcomes = parse_many(jobs, workers=2, timeout_s=600, memory_mb=1024, parse=scripted)
next(outcomes)
Path(sys.argv[1]).write_text(" ".join(str(p.pid) for p in multiprocessing.active_children()))
os.kill(os.getpid(), 9)
"""


def test_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-c", _KILLED_PARENT, str(pids_file)]
    done = subprocess.run(command, cwd=root, stdout=subprocess.DEVNULL, timeout=60, check=False)
    assert done.returncode == -signal.SIGKILL
    pids = [int(pid) for pid in pids_file.read_text().split()]
    assert len(pids) == 2
    assert all(_gone(pid) for pid in pids)


def test_idle_workers_exit_when_the_jobs_run_out() -> None:
    assert len(_run(["ok.pdf"] * 3, workers=2)) == 3
    assert not _workers_alive()


def test_real_parse_in_a_worker_equals_parse_in_process(make_pdf: MakePdf) -> None:
    paths = [
        make_pdf("en.pdf", [["Reward hacking in reinforcement learning agents."] * 20]),
        make_pdf("zh.pdf", [["大型语言模型的安全对齐与红队测试方法研究。"] * 20]),
        PDFS / "en_owasp_ai_security_periodic_table_2024.pdf",
    ]
    jobs = [_real_job(path, max_tokens=128, overlap=16) for path in paths]
    outcomes = list(parse_many(jobs, workers=2, timeout_s=TIMEOUT_S, memory_mb=MEMORY_MB))
    for job, outcome in zip(jobs, outcomes, strict=True):
        assert outcome.error is None
        assert outcome.doc == parse_pdf(
            job.path, content_hash=job.content_hash, max_tokens=128, overlap=16
        )
