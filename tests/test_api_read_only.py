"""A read replica (KB_READ_ONLY=1): every write refused with one clear 403, reads as usual,
no upload on the web page, and the CLI's write commands refuse with one line."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from api.auth import READ_ONLY_MESSAGE
from api.web.i18n import EN
from kb.cli import cli
from tests.samples import API_RECORDS

KEY = "k" * 20
AUTH = {"Authorization": f"Bearer {KEY}"}


def _write_routes(app) -> list[tuple[str, str]]:
    """(method, concrete path) of every route of the API that is not a read."""
    found = []
    for path, ops in app.openapi()["paths"].items():
        concrete = path.replace("{paper_id}", "1").replace("{collection_id}", "1")
        found += [(m, concrete) for m in ops if m not in ("get", "head", "options")]
    return found


@pytest.fixture
def replica(make_app_client, library):
    with make_app_client(library, records=API_RECORDS, api_keys=KEY, read_only=True) as c:
        yield c


def test_every_write_route_is_refused_with_403_even_with_a_valid_key(replica):
    writes = _write_routes(replica.app)
    assert len(writes) >= 9  # papers, ingest jobs, collections
    for method, path in writes:
        r = replica.request(method.upper(), path, headers=AUTH, json={})
        assert r.status_code == 403, (method, path)
        assert r.json()["error"] == READ_ONLY_MESSAGE
    assert len(replica.library.papers()) == len(API_RECORDS)


def test_a_replica_reads_and_reports_healthy(replica):
    assert replica.get("/healthz").json()["status"] == "ok"  # no job worker, on purpose
    hits = replica.get("/api/search", params={"q": "jailbreak", "mode": "keyword"}).json()
    assert hits["results"]
    assert replica.get("/api/papers").status_code == 200


def test_the_web_page_of_a_replica_offers_no_upload(replica, make_app_client, library):
    page = replica.get("/upload").text
    assert EN["upload.replica"] in page
    assert 'id="dropzone"' not in page and 'type="file"' not in page
    assert 'href="/upload"' not in replica.get("/").text
    with make_app_client(library, api_keys=KEY) as writer:
        assert 'id="dropzone"' in writer.get("/upload").text
        assert 'href="/upload"' in writer.get("/").text


@pytest.mark.parametrize(
    "args",
    [["ingest", "x.pdf"], ["tag", "1", "t"], ["remove", "1"], ["reindex"],
     ["collection", "create", "Reading group"], ["doctor", "--repair"]],
)  # fmt: skip
def test_the_cli_write_commands_refuse_on_a_replica(args, settings):
    env = {"KB_DATA_DIR": str(settings.data_dir), "KB_READ_ONLY": "1"}
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "read-only here (KB_READ_ONLY=1)" in result.output
    assert not settings.data_dir.exists()  # refused before the library was opened


def test_the_cli_reads_on_a_replica(settings):
    env = {"KB_DATA_DIR": str(settings.data_dir), "KB_READ_ONLY": "1"}
    assert CliRunner().invoke(cli, ["collection", "list"], env=env).exit_code == 0
    assert CliRunner().invoke(cli, ["stats"], env=env).exit_code == 0
