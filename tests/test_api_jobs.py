"""Ingest jobs through the HTTP API: uploads, server folders inside the import roots, progress,
and searches answered while a job runs (fake embedders)."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from kb.errors import ModelError
from kb.jobs import JobFile, JobRunner
from kb.service import Library
from tests.fakes import HashEmbedder

KEY = "k" * 20
AUTH = {"Authorization": f"Bearer {KEY}"}
JOB_KEYS = {"id", "status", "total", "done", "created_at", "started_at", "finished_at", "error",
            "files", "counts"}  # fmt: skip


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
def root(tmp_path):
    folder = tmp_path / "shared-pdfs"
    folder.mkdir()
    return folder


@pytest.fixture
def keyed(settings, root):
    return settings.replace(api_keys=KEY, workers=0, import_roots=str(root))


def _client(keyed, embedder):
    lib = Library(keyed, embedder=embedder)
    return lib, TestClient(create_app(keyed, library=lib))


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


def test_upload_job_reports_each_file(keyed, make_pdf):
    lib, c = _client(keyed, HashEmbedder())
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


def test_folder_job_and_import_roots(keyed, make_pdf, root, tmp_path):
    (root / "sub").mkdir()
    _pdf(make_pdf, "one.pdf", "Interpretability of transformers").rename(root / "sub" / "one.pdf")
    outside = tmp_path / "private"
    outside.mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)
    lib, c = _client(keyed, HashEmbedder())
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


def test_folder_import_is_off_without_roots(settings, make_pdf, tmp_path):
    keyed = settings.replace(api_keys=KEY, workers=0)
    lib, c = _client(keyed, HashEmbedder())
    with c:
        r = c.post("/api/ingest-jobs", data={"folder": str(tmp_path)}, headers=AUTH)
        assert r.status_code == 403 and "KB_IMPORT_ROOTS" in r.json()["error"]
        assert c.get("/api/ingest-jobs/nope").status_code == 404
    lib.close()


def test_search_answers_while_a_job_runs(keyed, make_pdf, tmp_path):
    slow = SlowEmbedder(delay=0.25)
    lib, c = _client(keyed, slow)
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


def test_runner_marks_a_job_failed_as_a_whole(library, tmp_path):
    def broken(paths, listener=None, **_):
        raise ModelError("The model cannot be loaded.")

    library.ingest = broken
    runner = JobRunner(library).start()
    job = runner.submit([JobFile("x.pdf", tmp_path / "x.pdf")])
    deadline = time.monotonic() + 10
    while runner.get(job["id"])["status"] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.01)
    runner.stop()
    found = runner.get(job["id"])
    assert found["status"] == "failed" and found["error"] == "The model cannot be loaded."
    assert found["files"][0]["status"] == "failed"
    late = runner.submit([JobFile("y.pdf", tmp_path / "y.pdf")])
    assert late["status"] == "failed" and "stopping" in late["error"]


def test_runner_keeps_the_last_jobs(library):
    runner = JobRunner(library, keep=3)  # not started: jobs stay queued
    ids = [runner.submit([JobFile("f", None, "failed", detail="x")])["id"] for _ in range(5)]
    assert [j["id"] for j in runner.jobs()] == ids[:1:-1]
    assert runner.get(ids[0]) is None


def test_stopping_the_server_ends_a_running_job_at_its_next_file(keyed, make_pdf):
    slow = SlowEmbedder(delay=0.5)
    lib = Library(keyed, embedder=slow)
    pdfs = [_pdf(make_pdf, "a.pdf", "Deceptive alignment", "slowmark")]
    pdfs += [_pdf(make_pdf, f"{n}.pdf", f"Paper {n} on audits", n) for n in ("b", "c", "d")]
    runner = JobRunner(lib).start()
    job = runner.submit([JobFile(p.name, p) for p in pdfs])
    assert slow.embedding.wait(30), "the job never started embedding"
    started = time.perf_counter()
    assert runner.stop(timeout=20) is True
    assert time.perf_counter() - started < 10  # not after the whole job
    found = runner.get(job["id"])
    assert found["status"] == "failed" and "stopped" in found["error"]
    statuses = [f["status"] for f in found["files"]]
    assert "failed" in statuses and "pending" not in statuses
    stored = lib.count()
    assert stored == statuses.count("ingested") < len(pdfs)  # what was stored, stays
    lib.close()
