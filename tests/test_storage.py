from __future__ import annotations

import numpy as np
import pytest

from kb.errors import PaperNotFound
from kb.store import MIGRATIONS, Store, atomic_path
from kb.types import ChunkDraft, PaperMeta, ParsedDocument


def _doc(key: str, n: int = 2) -> ParsedDocument:
    chunks = [ChunkDraft(ord=i, text=f"chunk {i} of {key}", lang="en", page_start=i + 1,
                         page_end=i + 1) for i in range(n)]  # fmt: skip
    meta = PaperMeta(title=f"Paper {key}", authors=["张伟", "Ada Lovelace"], year=2024, lang="en")
    return ParsedDocument(key=key, source=f"{key}.pdf", kind="pdf", content_hash=key * 2,
                          meta=meta, chunks=chunks)  # fmt: skip


def test_atomic_path_keeps_old_file_on_failure(tmp_path):
    dest = tmp_path / "f.txt"
    dest.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert dest.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]
    with atomic_path(dest) as tmp:
        tmp.write_text("new")
    assert dest.read_text() == "new"


def test_migrations_and_roundtrip(tmp_path):
    store = Store(tmp_path / "kb.sqlite3")
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    gen = store.generation()
    vecs = np.eye(2, 4, dtype=np.float32)
    pid, ids = store.add_paper(_doc("a"), vecs)
    assert store.generation() == gen + 1
    paper = store.paper(pid)
    assert paper.authors == ["张伟", "Ada Lovelace"] and paper.n_chunks == 2
    got = list(store.iter_vectors(4))
    assert np.array_equal(got[0][0], np.asarray(ids)) and np.array_equal(got[0][1], vecs)
    chunks = store.chunks_by_ids(ids)
    assert chunks[ids[1]].page_start == 2 and chunks[ids[1]].paper_id == pid
    store.close()
    reopened = Store(tmp_path / "kb.sqlite3")  # migrations are not re-run
    assert reopened.paper_by_key("a").id == pid


def test_same_key_replaces_and_ids_are_never_reused(tmp_path):
    store = Store(tmp_path / "kb.sqlite3")
    _, first = store.add_paper(_doc("a"), np.ones((2, 4), np.float32))
    pid, second = store.add_paper(_doc("a", n=3), np.ones((3, 4), np.float32))
    assert store.count_papers() == 1 and store.paper(pid).n_chunks == 3
    assert min(second) > max(first)
    removed = store.remove_paper(pid)
    assert removed == second and store.stats()["chunks"] == 0
    with pytest.raises(PaperNotFound):
        store.remove_paper(pid)


def test_failed_insert_leaves_nothing(tmp_path):
    store = Store(tmp_path / "kb.sqlite3")
    with pytest.raises(ValueError):
        store.add_paper(_doc("a"), [np.ones(4, np.float32), "not a vector"])  # fails mid-way
    assert store.count_papers() == 0 and store.stats()["chunks"] == 0
