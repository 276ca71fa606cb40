"""Batches that survive hostile files, kill -9, damaged indexes, and a watched inbox."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from index.vectors import VectorIndex
from kb.library.facade import Library
from kb.library.query import SearchQuery
from kb.library.watch import watch
from tests.conftest import BADPDFS, MakePdf
from tests.fakes import HashEmbedder

ROOT = Path(__file__).resolve().parents[1]
TOPICS = [
    ("Reward hacking", "reward models are exploited by the policy during optimisation"),
    ("Deceptive alignment", "models that behave well in training and defect when deployed"),
    ("Power seeking", "agents acquire resources and influence beyond what the task needs"),
    ("Jailbreaks", "prompts that bypass the refusal training of chat assistants"),
    ("Evaluations", "dangerous capability evaluations for cyber and biology misuse"),
    ("Interpretability", "sparse autoencoders find features inside transformer activations"),
    ("Governance", "compute thresholds and licensing regimes for frontier models"),
    ("Sycophancy", "assistants agree with the user even when the user is wrong"),
    ("奖励黑客", "策略在优化过程中利用奖励模型的缺陷获得高分"),
    ("欺骗性对齐", "模型在训练中表现良好而在部署后追求其他目标"),
]


def _folder(make_pdf: MakePdf) -> Path:
    paths = []
    for n, (title, line) in enumerate(TOPICS):
        body = [f"{title} {n}", *(f"{line} ({n}.{i})" for i in range(8))]
        paths.append(make_pdf(f"paper{n:02d}.pdf", [body, [f"{line} second page {n}"]]))
    return paths[0].parent


def _snapshot(lib: Library) -> dict[str, object]:
    """What a user can observe of a store, without ids or times (which may differ)."""
    store = lib.store
    rows = store.db.execute(
        "SELECT p.key, p.title, c.ord, c.text, length(c.vector) FROM papers p "
        "JOIN chunks c ON c.paper_id = p.id ORDER BY p.key, c.ord"
    ).fetchall()
    return {"rows": [tuple(r) for r in rows], "papers": lib.count()}


def _check_consistent(lib: Library) -> None:
    report = lib.doctor()
    assert report.healthy, report.to_dict()
    ids = {int(r[0]) for r in lib.store.db.execute("SELECT id FROM chunks")}
    for side in lib.encoders():
        assert set(side.vectors.ids().tolist()) == ids  # FAISS ids = chunk ids, both ways
    keys = [r[0] for r in lib.store.db.execute("SELECT key FROM papers")]
    assert len(keys) == len(set(keys))


RUNNER = """
import sys, time
from pathlib import Path
import kb.library.ingest
from kb.library.facade import Library
from kb.settings import Settings
from tests.fakes import HashEmbedder

class Slow(HashEmbedder):
    def encode(self, texts, **kw):
        time.sleep(float(sys.argv[3]))
        return super().encode(texts, **kw)

kb.library.ingest.EMBED_BATCH_CHUNKS = 1  # store each paper as soon as it is parsed
settings = Settings(data_dir=Path(sys.argv[1]), second_encoder="none", workers=1)
lib = Library(settings, embedder=Slow())
lib.ingest([Path(sys.argv[2])])
lib.close()
"""


def _run(data: Path, folder: Path, delay: float) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-c", RUNNER, str(data), str(folder), str(delay)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _papers(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            return int(con.execute("SELECT COUNT(*) FROM papers").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_kill_9_in_the_middle_then_resume_matches_an_uninterrupted_run(
    tmp_path: Path, make_pdf: MakePdf, settings
) -> None:
    folder = _folder(make_pdf)
    data = tmp_path / "killed"
    proc = _run(data, folder, 0.4)
    deadline = time.monotonic() + 120
    while _papers(data / "kb.sqlite3") < 3 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1].decode()
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    interrupted = _papers(data / "kb.sqlite3")
    assert 3 <= interrupted < len(TOPICS)  # it really died in the middle
    again = _run(data, folder, 0.0)
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err.decode()
    resumed = Library(settings.replace(data_dir=data), embedder=HashEmbedder())
    clean = Library(settings.replace(data_dir=tmp_path / "clean"), embedder=HashEmbedder())
    clean.ingest([folder])
    assert _snapshot(resumed) == _snapshot(clean)
    assert resumed.count() == len(TOPICS)
    _check_consistent(resumed)
    resumed.close()
    clean.close()


def test_every_hostile_pdf_ends_as_a_paper_or_one_line_of_error(settings) -> None:
    lib = Library(settings.replace(workers=2, parse_timeout_s=60), embedder=HashEmbedder())
    events = []
    started = time.monotonic()
    lib.ingest([BADPDFS], listener=events.append)
    outcomes = [e for e in events if e.status not in ("start", "parsed", "file")]
    pdfs = sorted(BADPDFS.glob("*.pdf"))
    assert sorted(Path(e.name).name for e in outcomes) == sorted(p.name for p in pdfs)
    for e in outcomes:
        assert e.status in ("ingested", "failed", "duplicate"), e
        if e.status == "failed":
            assert "\n" not in e.detail and "Traceback" not in e.detail, e.detail
            assert Path(e.name).name in e.detail or Path(e.name).stem in e.detail, e.detail
    assert time.monotonic() - started < 600
    _check_consistent(lib)  # no partial paper, no orphan vector
    lib.close()


def test_doctor_finds_and_repairs_damage(library: Library, make_pdf: MakePdf) -> None:
    _folder(make_pdf)
    library.ingest([make_pdf("extra.pdf", [["Corrigibility", "shutdown problems"]]).parent])
    assert library.doctor().healthy
    store = library.store
    first, second = sorted(store.chunks.paper_ids())[:2]
    store.db.execute("UPDATE chunks SET vector = NULL WHERE id = ?", (first,))
    store.db.execute("DELETE FROM chunk_fts WHERE rowid = ?", (second,))
    store.db.execute("INSERT INTO chunk_fts (rowid, tokens) VALUES (999999, 'orphan')")
    side = library.encoders()[0]
    side.vectors.remove([second])  # the saved index loses a vector...
    orphan = np.ones((1, side.identity.dim), np.float32)
    side.vectors.add([888888], orphan, ["en"])  # ...gains an orphan
    side.save()
    fresh = Library(library.settings, embedder=HashEmbedder())
    report = {f.check: f.count for f in fresh.doctor().findings}
    assert report["chunks without vector"] == 1
    assert report["chunks without keyword row"] == 1
    assert report["keyword rows without chunk"] == 1
    assert report["index hash-test"] >= 2
    assert not fresh.doctor().healthy
    assert fresh.doctor(repair=True).healthy
    again = Library(library.settings, embedder=HashEmbedder())
    _check_consistent(again)
    assert VectorIndex.peek(again.settings.index_dir) is not None
    assert again.search(
        SearchQuery.build("shutdown problems corrigibility", mode="keyword")
    ).results
    fresh.close()
    again.close()


def test_doctor_removes_old_uploads_no_paper_uses(library: Library, make_pdf: MakePdf) -> None:
    """A job's upload left behind when its server stopped is found, and removed on repair,
    once it is an hour old; a paper's upload and a fresh upload stay."""
    import io
    import os

    files = library.settings.files_dir
    used = make_pdf("used.pdf", [["Corrigibility", "shutdown problems"]]).read_bytes()
    status, paper = library.add_upload(io.BytesIO(used), "used.pdf")
    assert status == "ingested"
    orphan = library.keep_upload(io.BytesIO(b"%PDF-1.4 never ingested"), "orphan.pdf")
    fresh = library.keep_upload(io.BytesIO(b"%PDF-1.4 still queued"), "fresh.pdf")
    hour_ago = time.time() - 7200
    for path in [*files.glob("*.pdf")]:
        if path != fresh:
            os.utime(path, (hour_ago, hour_ago))
    found = {f.check: f for f in library.doctor().findings}["uploads no paper uses"]
    assert found.count == 1 and orphan.name in found.detail
    assert library.doctor(repair=True).healthy
    assert not orphan.exists() and fresh.exists()
    assert Path(library.paper(paper.id).files[0]).exists()


def test_watch_ingests_dropped_and_changed_files_until_stopped(
    library: Library, make_pdf: MakePdf, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    stop = threading.Event()
    rounds: list[object] = []
    thread = threading.Thread(
        target=watch,
        args=(library, inbox),
        kwargs={"interval": 0.2, "stop": stop, "on_round": rounds.append},
    )
    thread.start()
    try:
        path = make_pdf("dropped.pdf", [["Scalable oversight", "debate between two models"]])
        path.rename(inbox / path.name)
        _wait(lambda: library.count() == 1)
        pid = library.papers()[0].id
        make_pdf("dropped.pdf", [["Scalable oversight v2", "debate and recursive reward"]])
        (tmp_path / "dropped.pdf").replace(inbox / "dropped.pdf")
        _wait(lambda: "recursive" in _text(library, pid))
        (inbox / "notes.txt").write_text("not a paper", encoding="utf-8")
        time.sleep(0.6)
        assert library.count() == 1
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert len(rounds) == 2


def _text(lib: Library, paper_id: int) -> str:
    chunks = lib.store.chunks.by_ids(lib.store.chunks.ids_of(paper_id))
    return " ".join(c.text for c in chunks.values())


def _wait(condition, timeout: float = 60) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for the watcher")
        time.sleep(0.1)
