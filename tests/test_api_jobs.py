"""Ingest jobs through the HTTP API: uploads, server folders inside the import roots, progress,
and searches answered while a job runs (fake embedders)."""

from __future__ import annotations

import json
import os
import threading
import time

import numpy as np
import pytest

from kb.errors import ModelError
from kb.library.facade import Library
from kb.library.jobs import JobFile, JobRunner
from tests.fakes import HashEmbedder

KEY = "k" * 20
AUTH = {"Authorization": f"Bearer {KEY}"}
JOB_KEYS = {"id", "status", "total", "done", "created_at", "started_at", "finished_at", "error",
            "ocr", "files", "counts"}  # fmt: skip


class SlowEmbedder(HashEmbedder):
    """Passages of the marked PDF take ``delay`` seconds per batch of one."""

    batch_size = 1

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.embedding = threading.Event()  # set once a marked passage is being embedded

    def encode(self, texts: list[str], *, kind: str, progress: bool = False) -> np.ndarray:
        if kind == "passage" and any("slowmark" in t.lower() for t in texts):
            self.embedding.set()
            time.sleep(self.delay)
        return super().encode(texts, kind=kind)


@pytest.fixture
def keyed(settings, root):
    return settings.replace(api_keys=KEY, workers=0, import_roots=str(root))


def _client(make_app_client, keyed, embedder):
    client = make_app_client(Library(keyed, embedder=embedder))
    return client.library, client


def _pdf(make_pdf, name: str, title: str, word: str = "evaluation"):
    """A PDF whose text depends on its title and word (so no two are near-duplicates)."""
    words = sorted(set(f"{title} {word}".lower().split()))
    lines = [title] + [
        f"{word} {i}: " + " ".join(words[(i + j) % len(words)] for j in range(8)) + f" {i * 7919}"
        for i in range(40)
    ]
    return make_pdf(name, [lines], title=title)


def _wait(client, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/ingest-jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_upload_job_reports_each_file(make_app_client, keyed, make_pdf):
    lib, c = _client(make_app_client, keyed, HashEmbedder())
    a = _pdf(make_pdf, "a.pdf", "Red teaming language models").read_bytes()
    b = _pdf(make_pdf, "b.pdf", "Scalable oversight of agents", "oversight").read_bytes()
    files = [("files", ("a.pdf", a)), ("files", ("b.pdf", b)), ("files", ("a-copy.pdf", a)),
             ("files", ("notes.txt", b"plain text"))]  # fmt: skip
    with c:
        r = c.post("/api/ingest-jobs", files=files, headers=AUTH)
        assert r.status_code == 202, r.text
        job = r.json()
        assert set(job) == JOB_KEYS and job["total"] == 4
        assert job["status"] in ("queued", "running", "done")
        done = _wait(c, job["id"])
        by_name = {f["name"]: f for f in done["files"]}
        assert by_name["a.pdf"]["status"] == by_name["a-copy.pdf"]["status"] == "ingested"
        assert by_name["a.pdf"]["paper_id"] == by_name["a-copy.pdf"]["paper_id"]
        assert by_name["b.pdf"]["status"] == "ingested"
        assert by_name["notes.txt"]["status"] == "failed"
        assert "not a PDF" in by_name["notes.txt"]["detail"]
        assert done["status"] == "done" and done["done"] == 4 and done["error"] is None
        assert done["counts"] == {"ingested": 3, "failed": 1}
        assert done["started_at"] and done["finished_at"]
        assert c.get("/api/papers").json()["total"] == 2
        listed = c.get("/api/ingest-jobs").json()["jobs"]
        assert [j["id"] for j in listed] == [job["id"]]
        again = _wait(c, c.post("/api/ingest-jobs", files=files[:1], headers=AUTH).json()["id"])
        assert again["files"][0]["status"] == "skipped"
    lib.close()


def test_folder_job_and_import_roots(make_app_client, keyed, make_pdf, root, tmp_path):
    (root / "sub").mkdir()
    _pdf(make_pdf, "one.pdf", "Interpretability of transformers").rename(root / "sub" / "one.pdf")
    outside = tmp_path / "private"
    outside.mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)
    lib, c = _client(make_app_client, keyed, HashEmbedder())
    with c:

        def post(folder):
            return c.post("/api/ingest-jobs", data={"folder": folder}, headers=AUTH)

        job = _wait(c, post(str(root)).json()["id"])
        assert [(f["name"], f["status"]) for f in job["files"]] == [("sub/one.pdf", "ingested")]
        assert post(str(outside)).status_code == 403
        assert post(str(root / "sub" / ".." / "..")).status_code == 403
        assert post(str(root / "escape")).status_code == 403  # a symlink out of the roots
        assert post(str(root / "missing")).status_code == 404
        assert post("relative/path").status_code == 400
        assert post("/tmp/\x00bad").status_code in (400, 422)
        assert post("").status_code == 400  # neither files nor folder
        assert c.post("/api/ingest-jobs", data={"folder": str(root)}).status_code == 401
    lib.close()


def test_folder_import_is_off_without_roots(make_app_client, settings, make_pdf, tmp_path):
    keyed = settings.replace(api_keys=KEY, workers=0)
    lib, c = _client(make_app_client, keyed, HashEmbedder())
    with c:
        r = c.post("/api/ingest-jobs", data={"folder": str(tmp_path)}, headers=AUTH)
        assert r.status_code == 403 and "KB_IMPORT_ROOTS" in r.json()["error"]
        assert c.get("/api/ingest-jobs/nope").status_code == 404
    lib.close()


def test_search_answers_while_a_job_runs(make_app_client, keyed, make_pdf, tmp_path):
    slow = SlowEmbedder(delay=0.25)
    lib, c = _client(make_app_client, keyed, slow)
    feed = tmp_path / "feed.jsonl"
    feed.write_text(json.dumps({"key": "r", "title": "Reward hacking", "abstract": "Gaming."}))
    lib.ingest([feed])
    pdf = _pdf(make_pdf, "slow.pdf", "Deceptive alignment", "slowmark").read_bytes()
    with c:
        job = c.post("/api/ingest-jobs", files=[("files", ("slow.pdf", pdf))], headers=AUTH).json()
        assert slow.embedding.wait(30), "the job never started embedding"
        started = time.perf_counter()
        hits = c.get("/api/search", params={"q": "reward hacking"})
        took = time.perf_counter() - started
        assert hits.status_code == 200 and hits.json()["results"][0]["paper"]["key"] == "r"
        assert c.get(f"/api/ingest-jobs/{job['id']}").json()["status"] == "running"
        assert took < 2.0, f"search waited {took:.2f}s for the running job"
        assert _wait(c, job["id"])["files"][0]["status"] == "ingested"
    lib.close()


def _finish(runner: JobRunner, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = runner.get(job_id)
        if job is not None and job["status"] in ("done", "failed"):
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish: {runner.get(job_id)}")


def test_runner_marks_a_job_failed_as_a_whole(library, tmp_path):
    class Broken:  # an ingest service whose model cannot load
        def ingest(self, paths, listener=None, **_):
            raise ModelError("The model cannot be loaded.")

    runner = JobRunner(library.core, Broken()).start()
    job = runner.submit([JobFile("x.pdf", tmp_path / "x.pdf")])
    found = _finish(runner, job["id"], timeout=10)
    runner.stop()
    assert found["status"] == "failed" and found["error"] == "The model cannot be loaded."
    assert found["files"][0]["status"] == "failed"
    assert "model cannot be loaded" in found["files"][0]["detail"]
    late = runner.submit([JobFile("y.pdf", tmp_path / "y.pdf")])  # kept for the next start
    assert late["status"] == "queued" and late["error"] is None
    assert runner.get(late["id"])["status"] == "queued"


def test_a_job_survives_a_restart(make_app_client, keyed, make_pdf):
    lib = Library(keyed, embedder=HashEmbedder())
    runner = lib.job_runner().start()
    pdf = _pdf(make_pdf, "a.pdf", "Red teaming language models")
    refused = JobFile("notes.txt", None, "failed", detail="not a PDF")
    done = _finish(runner, runner.submit([JobFile("a.pdf", pdf), refused])["id"])
    assert runner.stop() is True
    lib.close()
    lib = Library(keyed, embedder=HashEmbedder())
    with make_app_client(lib) as c:
        r = c.get(f"/api/ingest-jobs/{done['id']}")
        assert r.status_code == 200 and r.json() == done
        assert done["counts"] == {"ingested": 1, "failed": 1} and done["files"][0]["paper_id"]
        assert c.get("/api/ingest-jobs").json()["jobs"] == [done]
    lib.close()


def test_a_job_queued_at_stop_runs_on_the_next_start(keyed, make_pdf, tmp_path):
    lib = Library(keyed, embedder=HashEmbedder())
    runner = lib.job_runner()  # never started: its jobs stay queued
    pdfs = [_pdf(make_pdf, f"{n}.pdf", f"Paper {n} on audits", n) for n in ("a", "b", "c")]
    first = runner.submit([JobFile(p.name, p) for p in pdfs[:2]])
    gone = tmp_path / "gone.pdf"
    pdfs[2].rename(gone)
    second = runner.submit([JobFile("c.pdf", gone)])
    assert runner.stop() is True
    gone.unlink()  # a kept file removed while the server was down
    lib.close()
    lib = Library(keyed, embedder=HashEmbedder())
    assert lib.count() == 0
    runner = lib.job_runner().start()
    job = _finish(runner, first["id"])
    assert job["status"] == "done" and job["counts"] == {"ingested": 2}
    assert job["created_at"] == first["created_at"] and job["started_at"]
    assert lib.count() == 2
    missing = _finish(runner, second["id"])
    assert missing["status"] == "done" and missing["files"][0]["status"] == "failed"
    assert (
        "no longer at" in missing["files"][0]["detail"]
        and "send it again" in (missing["files"][0]["detail"])
    )
    runner.stop()
    lib.close()


def test_runner_keeps_the_last_jobs(keyed):
    lib = Library(keyed, embedder=HashEmbedder())
    runner = lib.job_runner(keep=3).start()
    ids = []
    for _ in range(5):
        ids.append(runner.submit([JobFile("f", None, "failed", detail="x")])["id"])
        _finish(runner, ids[-1])
    assert [j["id"] for j in runner.jobs()] == ids[:1:-1]
    assert runner.get(ids[0]) is None and runner.get(ids[1]) is None
    runner.stop()
    idle = lib.job_runner(keep=2)  # finished jobs are pruned, unfinished ones never
    queued = [idle.submit([JobFile("f", None, "failed", detail="x")])["id"] for _ in range(3)]
    assert [j["id"] for j in idle.jobs()] == queued[:0:-1]
    assert idle.get(queued[0])["status"] == "queued"
    assert idle.get(ids[2]) is None  # finished, older than the last 2 (in the store)
    idle.stop()
    lib.close()
    lib = Library(keyed, embedder=HashEmbedder())
    again = lib.job_runner(keep=2).start()
    assert [_finish(again, i)["status"] for i in queued] == ["done"] * 3
    again.stop()
    lib.close()


def test_stopping_the_server_ends_a_running_job_at_its_next_file(keyed, make_pdf):
    slow = SlowEmbedder(delay=0.5)
    lib = Library(keyed, embedder=slow)
    pdfs = [_pdf(make_pdf, "a.pdf", "Deceptive alignment", "slowmark")]
    pdfs += [_pdf(make_pdf, f"{n}.pdf", f"Paper {n} on audits", n) for n in ("b", "c", "d")]
    runner = lib.job_runner().start()
    job = runner.submit([JobFile(p.name, p) for p in pdfs])
    waiting = runner.submit([JobFile("e.pdf", _pdf(make_pdf, "e.pdf", "Paper e on audits", "e"))])
    assert slow.embedding.wait(30), "the job never started embedding"
    started = time.perf_counter()
    assert runner.stop(timeout=20) is True
    assert time.perf_counter() - started < 10  # not after the whole job
    found = runner.get(job["id"])
    assert found["status"] == "queued" and found["error"] is None  # resumes on the next start
    statuses = [f["status"] for f in found["files"]]
    assert statuses[0] == "ingested" and "pending" in statuses and "failed" not in statuses
    stored = lib.count()
    assert stored == statuses.count("ingested") < len(pdfs)  # what was stored, stays
    assert runner.get(waiting["id"])["status"] == "queued"
    lib.close()

    again = SlowEmbedder(delay=0)  # records whether the first file is embedded again
    lib = Library(keyed, embedder=again)
    assert lib.job_runner().get(job["id"]) == found  # as stored at shutdown
    runner = lib.job_runner().start()
    resumed = _finish(runner, job["id"])
    assert resumed["status"] == "done" and resumed["counts"] == {"ingested": 4}
    for before, after in zip(found["files"], resumed["files"], strict=True):
        if before["status"] != "pending":  # kept as it was, not ingested again
            assert after == before
    assert not again.embedding.is_set(), "a file stored before the stop was embedded again"
    assert _finish(runner, waiting["id"])["counts"] == {"ingested": 1}
    assert lib.count() == 5
    runner.stop()
    lib.close()


def test_doctor_keeps_the_uploads_a_stopped_job_still_needs(keyed, make_pdf):
    lib = Library(keyed, embedder=HashEmbedder())
    runner = lib.job_runner()  # never started: the job waits, queued, for the next start
    pdf = _pdf(make_pdf, "a.pdf", "Red teaming language models")
    with pdf.open("rb") as stream:
        kept = lib.keep_upload(stream, "a.pdf")
    job = runner.submit([JobFile("a.pdf", kept)])
    runner.stop()
    old = time.time() - 2 * 3600  # the server was down for two hours
    os.utime(kept, (old, old))
    report = lib.doctor(repair=True)
    unused = next(f for f in report.findings if f.check == "uploads no paper uses")
    assert unused.count == 0 and kept.is_file()
    runner = lib.job_runner().start()
    assert _finish(runner, job["id"])["counts"] == {"ingested": 1}
    runner.stop()
    lib.close()
