"""Every error ends as one JSON error on the API and one line on the CLI, a full disk included
(507), and the store stays as it was.

A full disk is real here: SQLite's ``max_page_count`` caps the database at its current size,
so the next write that needs a page fails with SQLITE_FULL, as on a full file system.
"""

from __future__ import annotations

import errno
import os

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from kb.cli import cli
from kb.library.collections import MAX_TEXT
from kb.store.database import Database
from tests.conftest import said
from tests.fakes import HashEmbedder
from tests.samples import API_RECORDS, write_feed

KEY = "k" * 20
AUTH = {"Authorization": f"Bearer {KEY}"}


def fill_disk(db) -> None:
    """Cap the SQLite file at its current size: the next page it needs is refused (SQLITE_FULL)."""
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")


def test_a_full_store_is_one_json_507_and_nothing_changes(make_app_client):
    with make_app_client(api_keys=KEY, records=API_RECORDS) as client:
        before = client.get("/api/papers/1").json()
        fill_disk(client.library.store.db)
        edit = {"abstract": "long " * 3000, "tags_add": ["t"]}
        r = client.patch("/api/papers/1", json=edit, headers=AUTH)
        assert r.status_code == 507, r.text
        assert r.json()["status"] == 507 and "disk is full" in r.json()["error"]
        made = client.post("/api/collections", json={"name": "n", "description": "d" * MAX_TEXT},
                           headers=AUTH)  # fmt: skip
        assert made.status_code == 507 and made.json()["status"] == 507
        assert client.get("/api/papers/1").json() == before  # rolled back, all of it
        assert client.get("/api/collections").json()["total"] == 0
        page = client.get("/api/search?q=jailbreak")  # reads go on
        assert page.status_code == 200 and page.json()["results"]


def test_a_full_disk_on_upload_is_507_and_leaves_no_file(make_app_client, monkeypatch):
    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("kb.store.uploads.os.fsync", no_space)
    with make_app_client(api_keys=KEY) as client:
        files = {"file": ("a.pdf", b"%PDF-1.4\n" + b"0" * 1000, "application/pdf")}
        for path, field in (("/api/papers", "file"), ("/api/ingest-jobs", "files")):
            r = client.post(path, files={field: files["file"]}, headers=AUTH)
            assert r.status_code == 507 and "disk is full" in r.json()["error"], path
        kept = client.settings.files_dir
        assert not kept.exists() or not any(kept.iterdir())


def test_an_unexpected_error_is_a_json_500_without_the_traceback(make_app_client, monkeypatch):
    app = make_app_client().app

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("kb.library.facade.Library.stats", broken)
    monkeypatch.setattr("kb.library.facade.Library.health", broken)
    # the server logs the traceback (and re-raises it to its own log); the client gets JSON
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/healthz")
        assert r.status_code == 500 and r.json()["status"] == 500
        assert "RuntimeError" in r.json()["error"] and "secret internals" not in r.text
        page = client.get("/")  # the page: the same, as HTML
        assert page.status_code == 500 and "Traceback" not in page.text


def test_cli_full_disk_is_one_line_and_the_next_run_resumes(settings, tmp_path, monkeypatch):
    monkeypatch.setattr("kb.library.core.load_embedder", lambda s: HashEmbedder())
    opened = Database.__init__
    full = {"on": True}

    def small_disk(self, path):
        opened(self, path)
        if full["on"]:
            fill_disk(self.db)

    monkeypatch.setattr(Database, "__init__", small_disk)
    records = [{"key": f"r{i}", "title": f"Paper {i}", "abstract": "text " * 400} for i in range(5)]
    feed = write_feed(tmp_path / "feed.jsonl", records)
    env = {"KB_DATA_DIR": str(settings.data_dir), "KB_MODEL_DIR": str(settings.model_dir),
           "KB_SECOND_ENCODER": "none"}  # fmt: skip
    run = CliRunner().invoke(cli, ["ingest", "-q", str(feed)], env=env, catch_exceptions=False)
    assert run.exit_code == 1, run.output
    lines = [line for line in run.output.splitlines() if line.strip()]
    assert "Traceback" not in run.output and len(lines) == 1, run.output
    assert "disk is full" in lines[0]
    full["on"] = False
    again = CliRunner().invoke(cli, ["ingest", "-q", str(feed)], env=env, catch_exceptions=False)
    assert again.exit_code == 0 and "failed 0" in again.output, again.output
    assert "ingested 5" in again.output or "skipped" in again.output  # resumed
    doctor = CliRunner().invoke(cli, ["doctor", "--json"], env=env, catch_exceptions=False)
    assert doctor.exit_code == 0, doctor.output


@pytest.mark.parametrize("command", [["stats"], ["search", "x"], ["doctor"]])
def test_cli_unexpected_errors_are_one_line(settings, monkeypatch, command):
    monkeypatch.setattr("kb.library.core.load_embedder", lambda s: HashEmbedder())

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("kb.library.facade.Library.stats", broken)
    monkeypatch.setattr("kb.library.facade.Library.search", broken)
    monkeypatch.setattr("kb.library.facade.Library.doctor", broken)
    env = {"KB_DATA_DIR": str(settings.data_dir), "KB_SECOND_ENCODER": "none"}
    run = CliRunner().invoke(cli, command, env=env, catch_exceptions=False)
    assert run.exit_code == 1 and "Traceback" not in run.output
    assert "RuntimeError: boom" in run.output and len(said(run.output)) == 1
