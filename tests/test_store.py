from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
import threading
import time

import numpy as np
import pytest

from kb.errors import PaperNotFound, StoreError
from kb.store import MIGRATIONS, Store, atomic_path
from kb.store.files import sha256_file
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


def test_sha256_file_reads_in_blocks(tmp_path):
    path = tmp_path / "blob.bin"
    data = bytes(range(256)) * 5000  # over one 1 MiB block
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_migrations_and_roundtrip(tmp_path):
    store = Store(tmp_path / "kb.sqlite3")
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    gen = store.generation()
    vecs = np.eye(2, 4, dtype=np.float32)
    pid, ids = store.papers.add(_doc("a"), vecs)
    assert store.generation() == gen + 1
    paper = store.papers.get(pid)
    assert paper.authors == ["张伟", "Ada Lovelace"] and paper.n_chunks == 2
    got = list(store.chunks.iter_vectors(4))
    assert np.array_equal(got[0][0], np.asarray(ids)) and np.array_equal(got[0][1], vecs)
    chunks = store.chunks.by_ids(ids)
    assert chunks[ids[1]].page_start == 2 and chunks[ids[1]].paper_id == pid
    store.close()
    reopened = Store(tmp_path / "kb.sqlite3")  # migrations are not re-run
    assert reopened.papers.by_key("a").id == pid


def test_vectors_are_stored_once_in_half_precision(tmp_path):
    """2 bytes a dimension, read back as float32 with the values ``as_stored`` gives, for the
    main encoder and a further one; a vector half precision cannot hold is refused whole."""
    store = Store(tmp_path / "kb.sqlite3")
    rng = np.random.default_rng(0)
    main = rng.standard_normal((3, 384)).astype(np.float32)
    main /= np.linalg.norm(main, axis=1, keepdims=True)
    pid, ids = store.papers.add(_doc("a", n=3), main)
    extra = rng.standard_normal((3, 512)).astype(np.float32) / 20
    store.chunks.set_vectors(ids, extra, slot="muse")
    sizes = store.read("SELECT length(vector) FROM chunks") + store.read(
        "SELECT length(vector) FROM chunk_vectors"
    )
    assert sorted(int(r[0]) for r in sizes) == [768] * 3 + [1024] * 3
    got = store.chunks.vectors_of(ids, 384)
    assert got.dtype == np.float32 and np.array_equal(got, store.chunks.as_stored(main))
    assert np.abs(got - main).max() < 1e-3 and not np.array_equal(got, main)
    assert np.array_equal(store.chunks.vectors_of(ids, 512, "muse"), store.chunks.as_stored(extra))
    with pytest.raises(StoreError, match="not 256-dimensional"):
        store.chunks.vectors_of(ids, 256)
    before = store.generation()
    with pytest.raises(StoreError, match="too large"):
        store.chunks.set_vectors(ids, np.full((3, 384), 1e6, np.float32))
    assert store.generation() == before
    assert np.array_equal(store.chunks.vectors_of(ids, 384), got)  # nothing half-written
    store.close()


def test_an_older_store_gets_its_float32_vectors_in_half_precision(tmp_path, caplog):
    """m015 rewrites every vector a store wrote before it, both tables, once, saying so
    first, and the file gives the space it freed back to the disk."""
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    for number, migration in enumerate(MIGRATIONS[:14], start=1):
        migration(db)
        db.execute(f"PRAGMA user_version = {number}")
    rng = np.random.default_rng(1)
    main = rng.uniform(-0.5, 0.5, (300, 384)).astype(np.float32)
    db.execute(
        "INSERT INTO papers (key, kind, source, content_hash, title, lang, added_at) "
        "VALUES ('a', 'record', 'a.jsonl', 'h', 'A', 'en', '2026-01-01')"
    )
    for i, vec in enumerate(main, start=1):
        db.execute(
            "INSERT INTO chunks (id, paper_id, ord, text, lang, page_start, page_end, vector) "
            "VALUES (?, 1, ?, 'text', 'en', 1, 1, ?)",
            (i, i, vec.astype("<f4").tobytes()),
        )
        db.execute(
            "INSERT INTO chunk_vectors (chunk_id, slot, vector) VALUES (?, 'muse', ?)",
            (i, (vec[:300] * 2).astype("<f4").tobytes()),
        )
    db.execute(  # bytes that are no float32 vector: kept as they are, the store still opens
        "INSERT INTO chunk_vectors (chunk_id, slot, vector) VALUES (1, 'odd', x'010203')"
    )
    db.close()
    before = path.stat().st_size
    Store(tmp_path / "new.sqlite3").close()
    assert not caplog.records  # a new store has nothing to convert
    store = Store(path)
    assert [r.getMessage() for r in caplog.records] == [
        "Upgrading old.sqlite3: every stored vector to float16, half the bytes (once; "
        "about 2.5 minutes a million chunks)."
    ]
    try:
        assert {r[0] for r in store.read("SELECT length(vector) FROM chunks")} == {768}
        ids, vecs, _ = next(store.chunks.iter_vectors(384))
        assert ids.tolist() == list(range(1, 301))
        assert np.array_equal(vecs, store.chunks.as_stored(main))
        assert np.abs(vecs - main).max() < 1e-3
        muse = store.chunks.vectors_of([1, 300], 300, "muse")
        assert np.array_equal(muse, store.chunks.as_stored(main[[0, 299], :300] * 2))
        assert store.read_one("PRAGMA freelist_count")[0] == 0
        with pytest.raises(StoreError, match="changed outside kb; `kb doctor --repair`"):
            store.chunks.vectors_of([1], 1, "odd")
        assert path.stat().st_size < 0.6 * before
    finally:
        store.close()


def test_reads_by_id_lists_longer_than_sqlites_variable_limit(tmp_path):
    """The id-list reads go through ``read_in``, which splits a list in parts of IN_BATCH."""
    store = Store(tmp_path / "kb.sqlite3")
    pid, ids = store.papers.add(_doc("long", n=2_000), np.ones((2_000, 4), np.float32))
    extra = np.full((2_000, 3), 0.5, np.float32)
    store.chunks.set_vectors(ids, extra, slot="muse")
    wanted = [*ids, 10**9]  # one id that no chunk has
    assert sorted(store.chunks.by_ids(wanted)) == ids
    for lang in (None, "en"):
        found, vecs, langs = store.chunks.vectors_with_langs(wanted, 3, slot="muse", lang=lang)
        assert found == ids and np.array_equal(vecs, extra) and set(langs) == {"en"}
    found, vecs, _ = store.chunks.vectors_with_langs(ids[::-1], 4)
    assert found == ids[::-1] and vecs.shape == (2_000, 4)
    store.close()


def test_the_chunk_map_is_read_from_indexes_and_matches_the_tables(tmp_path):
    """A search's chunk map (each chunk's paper and language, each paper's language) is read
    from covering indexes only, per language, and holds what the tables hold."""
    from index.chunkmap import ChunkMap

    store = Store(tmp_path / "kb.sqlite3")
    docs = [_doc(f"p{i}", n=i + 1) for i in range(4)]
    for i, doc in enumerate(docs):
        lang = "zh" if i % 2 else "en"
        meta = dataclasses.replace(doc.meta, lang=lang)
        chunks = [dataclasses.replace(c, lang=lang) for c in doc.chunks]
        store.papers.add(dataclasses.replace(doc, meta=meta, chunks=chunks), np.ones((i + 1, 4)))
    store.papers.add(dataclasses.replace(_doc("bare", n=0), chunks=[]), np.ones((0, 4)))
    for sql in (
        "SELECT id, paper_id FROM chunks WHERE lang = ?",
        "SELECT id FROM papers WHERE lang = ?",
    ):
        plan = " ".join(str(r[3]) for r in store.db.execute("EXPLAIN QUERY PLAN " + sql, ("en",)))
        assert "COVERING INDEX" in plan, plan
    m = ChunkMap.build(store.chunks.map_rows(), store.papers.ids_by_lang())
    rows = store.db.execute("SELECT id, paper_id, lang FROM chunks").fetchall()
    assert m.papers_of([r[0] for r in rows]) == {r[0]: r[1] for r in rows}
    assert m.langs_of([r[0] for r in rows]) == {r[0]: r[2] for r in rows}
    papers = {r[0]: r[1] for r in store.db.execute("SELECT id, lang FROM papers")}
    assert m.paper_langs_of(list(papers)) == papers and m.paper_total == 5
    counted = store.db.execute("SELECT paper_id, COUNT(*) FROM chunks GROUP BY 1").fetchall()
    assert m.counts(list(papers)) == {r[0]: r[1] for r in counted}
    assert store.distinct("chunks", "lang") == ["en", "zh"]
    with store.transaction() as db:
        db.execute("UPDATE papers SET lang = '' WHERE key = 'bare'")
    assert store.distinct("papers", "lang") == ["", "en", "zh"]
    store.close()


def test_same_key_replaces_and_ids_are_never_reused(tmp_path):
    store = Store(tmp_path / "kb.sqlite3")
    _, first = store.papers.add(_doc("a"), np.ones((2, 4), np.float32))
    pid, second = store.papers.add(_doc("a", n=3), np.ones((3, 4), np.float32))
    assert store.papers.count() == 1 and store.papers.get(pid).n_chunks == 3
    assert min(second) > max(first)
    removed = store.papers.remove(pid)
    assert removed == second and store.papers.stats()["chunks"] == 0
    with pytest.raises(PaperNotFound):
        store.papers.remove(pid)


def test_failed_insert_leaves_nothing(tmp_path):
    store = Store(tmp_path / "kb.sqlite3")
    with pytest.raises(ValueError):
        store.papers.add(_doc("a"), [np.ones(4, np.float32), "not a vector"])  # fails mid-way
    assert store.papers.count() == 0 and store.papers.stats()["chunks"] == 0


def test_a_caught_inner_failure_undoes_only_its_savepoint(tmp_path):
    store = Store(tmp_path / "kb.sqlite3")
    generation = store.generation()
    store.mark_mirrored(generation)
    with store.transaction():
        store.papers.add(_doc("a"), np.ones((2, 4), np.float32))
        with pytest.raises(PaperNotFound), store.transaction():
            store.papers.add(_doc("b"), np.ones((2, 4), np.float32))
            store.papers.remove(999)  # fails: b goes, a stays
        store.papers.tag(store.papers.by_key("a").id, ["kept"])
    assert [(p.key, p.tags) for p in store.papers.select()] == [("a", ["kept"])]
    assert store.generation() == store.mirrored_generation() == generation + 1
    assert not store.db.in_transaction
    store.close()


def test_an_outer_failure_undoes_everything(tmp_path):
    store = Store(tmp_path / "kb.sqlite3")
    generation = store.generation()
    store.mark_mirrored(generation)
    with pytest.raises(RuntimeError), store.transaction():
        pid, _ = store.papers.add(_doc("a"), np.ones((2, 4), np.float32))
        with store.transaction():  # an inner part that succeeded
            store.papers.tag(pid, ["gone"])
            store.set_state("note", "gone")
        raise RuntimeError("the user action fails after its store calls")
    assert store.papers.count() == 0 and store.get_state("note") is None
    assert store.generation() == store.mirrored_generation() == generation
    assert not store.db.in_transaction
    store.papers.add(_doc("a"), np.ones((2, 4), np.float32))  # the store is still usable
    assert store.papers.count() == 1
    store.close()


def test_other_threads_wait_for_an_open_transaction(tmp_path):
    """A write (or read) from a second thread waits for the first thread's transaction; the
    reader never sees uncommitted rows, and nobody needs a lock of their own."""
    store = Store(tmp_path / "kb.sqlite3")
    opened, release = threading.Event(), threading.Event()
    events: list[str] = []
    errors: list[BaseException] = []

    def run(fn):
        def target():
            try:
                fn()
            except BaseException as e:  # reported by the test thread below
                errors.append(e)

        return threading.Thread(target=target)

    def first():
        with store.transaction():
            store.papers.add(_doc("a"), np.ones((2, 4), np.float32))
            opened.set()
            release.wait(10)
            events.append("a committing")

    def second():
        opened.wait(10)
        store.papers.add(_doc("b"), np.ones((2, 4), np.float32))
        events.append("b written")

    def reader():
        opened.wait(10)
        events.append(f"read {store.papers.count()} papers")

    threads = [run(first), run(second), run(reader)]
    for t in threads:
        t.start()
    assert opened.wait(10)
    time.sleep(0.3)  # time enough for the other two to run, were they not kept waiting
    assert events == []
    release.set()
    for t in threads:
        t.join(10)
    assert errors == []
    assert events[0] == "a committing"
    assert sorted(events[1:]) in (
        ["b written", "read 1 papers"],  # the reader went before b
        ["b written", "read 2 papers"],
    )
    assert sorted(p.key for p in store.papers.select()) == ["a", "b"]
    store.close()
