"""Damaged files: a FAISS index with flipped bytes, a SQLite file with damaged pages, a store
cut to 0 bytes. Each is found (start-up, ``/healthz``, ``kb doctor``), named with what to do,
and never answers a search with a server error or silently becomes an empty library."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner

from index.vectors import INDEX_FILE
from kb.cli import cli
from kb.errors import StoreError
from kb.library.facade import Library
from kb.library.query import SearchQuery
from tests.conftest import said
from tests.fakes import HashEmbedder
from tests.samples import WEB_RECORDS, write_feed


def _filled(settings, tmp_path) -> Library:
    lib = Library(settings, embedder=HashEmbedder())
    assert lib.ingest([write_feed(tmp_path / "feed.jsonl", WEB_RECORDS)]).ok
    return lib


def _flip(path, at: int) -> None:
    """Flip one byte of ``path`` (``at`` < 0 counts from the end), keeping its size."""
    data = bytearray(path.read_bytes())
    data[at] ^= 0x5A
    path.write_bytes(bytes(data))


def _env(settings) -> dict[str, str]:
    return {"KB_DATA_DIR": str(settings.data_dir), "KB_SECOND_ENCODER": "none"}


@pytest.mark.parametrize("where", [-3, 200], ids=["an id", "a vector"])
def test_a_damaged_index_file_is_rebuilt_on_start_and_searches_answer(
    settings, tmp_path, make_app_client, where
):
    lib = _filled(settings, tmp_path)
    query = SearchQuery.build("jailbreak attacks on chatbots", k=10, mode="dense")
    clean = [(h.paper.key, round(h.score, 5)) for h in lib.search(query).results]
    lib.close()
    _flip(settings.index_dir / INDEX_FILE, where)  # the id map ends the file; vectors lead
    with make_app_client() as client:  # a fresh library on the damaged files
        r = client.get("/api/search", params={"q": query.text, "k": 10, "mode": "dense"})
        assert r.status_code == 200, r.text
        assert [(h["paper"]["key"], round(h["score"], 5)) for h in r.json()["results"]] == clean
        health = client.get("/healthz").json()
        assert health["status"] == "ok" and health["problems"] == []
        assert "rebuilt from the store" in health["repairs"][0]
        assert "checksum" in health["repairs"][0]
        assert client.library.doctor().healthy  # the rebuilt file is sound again


def test_doctor_names_a_damaged_index_file_and_repair_rebuilds_it(settings, tmp_path):
    lib = _filled(settings, tmp_path)
    lib.close()
    _flip(settings.index_dir / INDEX_FILE, -3)
    lib = Library(settings, embedder=HashEmbedder())  # not loaded: doctor reads the files
    report = lib.doctor()
    finding = next(f for f in report.findings if f.check.startswith("index"))
    assert not report.healthy and finding.count == 1
    assert str(settings.index_dir / INDEX_FILE) in finding.detail and "checksum" in finding.detail
    assert lib.doctor(repair=True).healthy and lib.doctor().healthy
    lib.close()


def test_healthz_says_degraded_when_an_index_and_the_store_disagree(make_app_client):
    with make_app_client(records=WEB_RECORDS) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        side = client.library.encoders()[0]
        side.vectors.remove(side.vectors.ids()[:1])  # as if a write reached only the store
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "degraded"
        assert "kb doctor --repair" in health.json()["problems"][0]


def test_healthz_says_error_when_the_store_cannot_be_read(make_app_client, monkeypatch):
    def malformed(*args, **kwargs):
        raise sqlite3.DatabaseError("database disk image is malformed")

    with make_app_client(records=WEB_RECORDS) as client:
        monkeypatch.setattr(client.library.store.papers, "stats", malformed)
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["status"] == "error"
        assert "kb doctor" in health.json()["problems"][0]


def _damage_pages(path, table: str | None = None) -> None:
    """Overwrite pages of a SQLite file with garbage: those of ``table`` (found with SQLite's
    ``dbstat``), else every page after the second (the schema's pages included)."""
    page = 4096
    with sqlite3.connect(path) as db:
        if table is None:
            pages = list(range(3, db.execute("PRAGMA page_count").fetchone()[0] + 1))
        else:
            rows = db.execute("SELECT pageno FROM dbstat WHERE name = ?", (table,)).fetchall()
            pages = [r[0] for r in rows]
    db.close()
    data = bytearray(path.read_bytes())
    for n in pages:  # page numbers count from 1
        data[(n - 1) * page + 8 : (n - 1) * page + 200] = bytes(range(192))
    path.write_bytes(bytes(data))


def test_vectors_of_the_wrong_size_are_found_by_doctor_and_embedded_again(settings, tmp_path):
    """A vector blob written outside kb (here: float32 where kb stores float16) cannot be
    read; doctor names it per encoder, and repair embeds that chunk again."""
    lib = Library(settings, embedder=HashEmbedder(), second=HashEmbedder(dim=48, name="second"))
    assert lib.ingest([write_feed(tmp_path / "feed.jsonl", WEB_RECORDS)]).ok
    query = SearchQuery.build("jailbreak attacks on chatbots", k=10, mode="dense")
    clean = [(h.paper.key, round(h.score, 4)) for h in lib.search(query).results]
    ids = lib.store.chunks.vector_ids()
    main_id, second_id = int(ids[0]), int(ids[-1])
    lib.close()
    db = sqlite3.connect(settings.db_path)
    db.execute("UPDATE chunks SET vector = zeroblob(100) WHERE id = ?", (main_id,))
    db.execute("UPDATE chunk_vectors SET vector = x'00' WHERE chunk_id = ?", (second_id,))
    db.commit()
    db.close()
    lib = Library(settings, embedder=HashEmbedder(), second=HashEmbedder(dim=48, name="second"))
    report = lib.doctor()
    wrong = {f.check: f for f in report.findings if "wrong size" in f.check}
    assert not report.healthy and [f.count for f in wrong.values()] == [1, 1]
    assert wrong["hash-test vectors of the wrong size"].detail == str(main_id)
    assert wrong["second vectors of the wrong size"].detail == str(second_id)
    assert lib.doctor(repair=True).healthy and lib.doctor().healthy
    assert lib.store.chunks.wrong_size(64) == lib.store.chunks.wrong_size(48, slot="second") == []
    assert [(h.paper.key, round(h.score, 4)) for h in lib.search(query).results] == clean
    lib.close()


def test_a_damaged_table_is_named_by_doctor_with_the_fix(settings, tmp_path, monkeypatch):
    monkeypatch.setattr("kb.library.core.load_embedder", lambda s: HashEmbedder())
    lib = _filled(settings, tmp_path)
    lib.close()  # checkpoints the WAL into the file
    _damage_pages(settings.db_path, "chunks")
    runner = CliRunner()
    doctor = runner.invoke(cli, ["doctor"], env=_env(settings), catch_exceptions=False)
    assert doctor.exit_code == 1 and "Traceback" not in doctor.output, doctor.output
    assert str(settings.db_path) in doctor.output and ".recover" in doctor.output
    assert "DAMAGED" in doctor.output and "repair cannot fix it" in doctor.output
    repair = runner.invoke(cli, ["doctor", "--repair"], env=_env(settings), catch_exceptions=False)
    assert repair.exit_code == 1 and "DAMAGED" in repair.output
    search = runner.invoke(cli, ["search", "jailbreak"], env=_env(settings), catch_exceptions=False)
    assert search.exit_code == 1 and "Traceback" not in search.output, search.output
    # SQLite reads some damaged pages as NULLs rather than failing: whatever breaks then,
    # the one line points at `kb doctor`
    lines = said(search.output)
    assert len(lines) == 1 and "kb doctor" in lines[0], search.output


def test_a_damaged_schema_is_named_on_opening_with_the_fix(settings, tmp_path, monkeypatch):
    monkeypatch.setattr("kb.library.core.load_embedder", lambda s: HashEmbedder())
    lib = _filled(settings, tmp_path)
    lib.close()
    _damage_pages(settings.db_path)
    runner = CliRunner()
    for args in (["doctor"], ["search", "jailbreak"], ["list"]):
        run = runner.invoke(cli, args, env=_env(settings), catch_exceptions=False)
        assert run.exit_code == 1 and "Traceback" not in run.output, (args, run.output)
        lines = run.output.strip().splitlines()
        assert len(lines) == 1 and str(settings.db_path) in lines[0], (args, run.output)
        assert "damaged" in lines[0] and ".recover" in lines[0] and "writable" not in lines[0]


def test_a_store_cut_to_zero_bytes_is_not_an_empty_library(settings, tmp_path, monkeypatch):
    monkeypatch.setattr("kb.library.core.load_embedder", lambda s: HashEmbedder())
    lib = _filled(settings, tmp_path)
    lib.close()
    settings.db_path.write_bytes(b"")
    for leftover in ("-wal", "-shm"):
        settings.db_path.with_name(settings.db_path.name + leftover).unlink(missing_ok=True)
    with pytest.raises(StoreError, match="empty file"):
        Library(settings, embedder=HashEmbedder())
    run = CliRunner().invoke(cli, ["stats"], env=_env(settings), catch_exceptions=False)
    assert run.exit_code == 1 and "0 bytes" in run.output and "Traceback" not in run.output
    assert settings.db_path.stat().st_size == 0  # left as it was, for the user to restore


def test_a_file_that_is_no_database_is_named_with_the_fix(settings):
    settings.data_dir.mkdir(parents=True)
    settings.db_path.write_bytes(b"<html>not a database</html>" * 200)
    with pytest.raises(StoreError, match="damaged or is not a kb database") as err:
        Library(settings, embedder=HashEmbedder())
    assert "writable" not in str(err.value) and ".recover" in str(err.value)
