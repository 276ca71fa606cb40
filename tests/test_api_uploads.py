"""Uploads wait their turn without holding a server thread, the ingest queue is bounded (503
with Retry-After), and a folder job's files are checked again when they are read."""

from __future__ import annotations

import random
import threading
import time

import httpx
import pytest

from kb.library.facade import Library
from tests.fakes import HashEmbedder
from tests.live import serve

KEY = "k" * 20
AUTH = {"Authorization": f"Bearer {KEY}"}


class Gate:
    """Holds the first ingest in its parse step (no lock held, as a long PDF would) until
    ``gate`` is set."""

    def __init__(self, parse_many) -> None:
        self.parse_many = parse_many
        self.gate = threading.Event()
        self.waiting = threading.Event()  # set once the first ingest waits at the gate

    def __call__(self, jobs, **kwargs):
        if not self.waiting.is_set():
            self.waiting.set()
            assert self.gate.wait(120), "the test never opened the gate"
        return self.parse_many(jobs, **kwargs)


@pytest.fixture
def gated(settings, root, monkeypatch):
    import kb.library.ingest

    gate = Gate(kb.library.ingest.parse_many)
    monkeypatch.setattr(kb.library.ingest, "parse_many", gate)
    conf = settings.replace(api_keys=KEY, workers=0, import_roots=str(root))
    lib = Library(conf, embedder=HashEmbedder())
    yield lib, gate
    gate.gate.set()
    lib.close()


VOCABULARY = (
    "model audit oversight reward agent policy risk safety debate honesty deception "
    "evaluation benchmark training shutdown power goal value alignment"
).split()


def _pdf(make_pdf, name: str, word: str) -> bytes:
    """A PDF about ``word`` whose text shares little with another word's (no near-duplicates)."""
    rng = random.Random(word)
    lines = [" ".join([word, *rng.choices(VOCABULARY, k=10)]) for _ in range(14)]
    return make_pdf(name, [[f"A study of {word}", *lines]], title=f"A study of {word}").read_bytes()


def test_waiting_uploads_hold_no_server_thread_and_reads_go_on(gated, make_app_client, make_pdf):
    lib, embedder = gated
    slow = _pdf(make_pdf, "slow.pdf", "deliberation")
    quick = _pdf(make_pdf, "quick.pdf", "interpretability")
    app = make_app_client(lib).app
    answers: list[int] = []
    with serve(app) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
        job = http.post("/api/ingest-jobs", files={"files": ("slow.pdf", slow)}, headers=AUTH)
        assert job.status_code == 202 and embedder.waiting.wait(30)

        def upload(n: int) -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as own:
                r = own.post("/api/papers", files={"file": (f"q{n}.pdf", quick)}, headers=AUTH)
                answers.append(r.status_code)

        # more waiting uploads than the server's thread pool (40 threads) holds
        threads = [threading.Thread(target=upload, args=(n,), daemon=True) for n in range(48)]
        try:
            for t in threads:
                t.start()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                queued = http.get("/api/ingest-jobs").json()["jobs"]
                if sum(j["status"] == "queued" for j in queued) >= 48:
                    break
                time.sleep(0.1)
            else:
                raise AssertionError("the uploads did not all reach the queue")
            for path in ("/healthz", "/api/search?q=audits", "/", "/api/papers"):
                started = time.perf_counter()
                r = http.get(path, timeout=5)
                assert r.status_code == 200, (path, r.text)
                assert time.perf_counter() - started < 2, path
        finally:
            embedder.gate.set()
            for t in threads:
                t.join(120)
    assert len(answers) == 48 and set(answers) <= {200, 201}, answers  # each got its paper


def test_a_full_ingest_queue_answers_503_with_retry_after(
    gated, make_app_client, make_pdf, monkeypatch
):
    monkeypatch.setattr("kb.library.jobs.MAX_WAITING", 2)
    lib, embedder = gated
    slow = _pdf(make_pdf, "slow.pdf", "deliberation")
    quick = _pdf(make_pdf, "quick.pdf", "interpretability")
    with make_app_client(lib) as client:
        first = client.post("/api/ingest-jobs", files={"files": ("s.pdf", slow)}, headers=AUTH)
        assert first.status_code == 202 and embedder.waiting.wait(30)
        second = client.post("/api/ingest-jobs", files={"files": ("q.pdf", quick)}, headers=AUTH)
        assert second.status_code == 202  # queued behind the first: the queue is now full
        kept = sorted(lib.settings.files_dir.iterdir())
        for path, field in (("/api/ingest-jobs", "files"), ("/api/papers", "file")):
            r = client.post(path, files={field: ("late.pdf", quick)}, headers=AUTH)
            assert r.status_code == 503 and r.json()["status"] == 503, (path, r.text)
            assert int(r.headers["Retry-After"]) > 0 and "waiting" in r.json()["error"]
        assert sorted(lib.settings.files_dir.iterdir()) == kept  # nothing more kept on disk
        assert client.get("/healthz").status_code == 200
        embedder.gate.set()


def test_a_folder_file_swapped_for_a_link_after_acceptance_is_not_read(
    gated, make_app_client, make_pdf, root, tmp_path
):
    lib, embedder = gated
    slow = _pdf(make_pdf, "slow.pdf", "deliberation")
    (root / "a.pdf").write_bytes(_pdf(make_pdf, "a.pdf", "oversight"))
    (root / "b.pdf").write_bytes(_pdf(make_pdf, "b.pdf", "corrigibility"))
    secret = tmp_path / "outside" / "secret.pdf"
    secret.parent.mkdir()
    secret.write_bytes(_pdf(make_pdf, "secret.pdf", "confidential"))
    with make_app_client(lib) as client:
        client.post("/api/ingest-jobs", files={"files": ("s.pdf", slow)}, headers=AUTH)
        assert embedder.waiting.wait(30)
        job = client.post("/api/ingest-jobs", data={"folder": str(root)}, headers=AUTH).json()
        assert job["status"] == "queued" and job["total"] == 2
        (root / "b.pdf").unlink()
        (root / "b.pdf").symlink_to(secret)  # swapped after the job was accepted
        embedder.gate.set()
        deadline = time.monotonic() + 60
        while (found := client.get(f"/api/ingest-jobs/{job['id']}").json())["status"] != "done":
            assert time.monotonic() < deadline, found
            time.sleep(0.05)
    files = {f["name"]: f for f in found["files"]}
    assert files["a.pdf"]["status"] == "ingested"
    assert files["b.pdf"]["status"] == "failed"
    assert "outside the import roots" in files["b.pdf"]["detail"]
    assert not any("confidential" in p.title for p in lib.papers(limit=50))
