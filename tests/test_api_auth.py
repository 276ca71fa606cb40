"""Access to the HTTP API: open or keyed reads, keyed writes, CORS, keys never logged."""

from __future__ import annotations

import logging
import socket
import threading
import time

import httpx
import pytest

from api.auth import KEY_COOKIE, key_matches

KEY = "k" * 20
OTHER = "o" * 24
AUTH = {"Authorization": f"Bearer {KEY}"}
READS = ["/api/search?q=x", "/api/papers", "/api/papers/1", "/api/papers/1/pdf",
         "/api/papers/1/related", "/api/ingest-jobs", "/api/ingest-jobs/x",
         "/api/collections", "/api/export?format=bibtex"]  # fmt: skip


def _json_get_routes(app) -> set[str]:
    paths = app.openapi()["paths"]
    return {p for p, ops in paths.items() if "get" in ops}


@pytest.fixture
def closed(make_app_client, library):
    with make_app_client(library, api_keys=f"{KEY},{OTHER}", read_access="key") as c:
        yield c


def test_keyed_reads_need_a_key_everywhere_but_healthz(closed):
    assert closed.get("/healthz").status_code == 200
    for path in READS:
        r = closed.get(path)
        assert r.status_code == 401, path
        assert r.json()["status"] == 401 and "Bearer" in r.json()["error"]
        assert closed.get(path, headers={"Authorization": f"Bearer {OTHER}"}).status_code != 401
    wrong = closed.get("/api/papers", headers={"Authorization": "Bearer " + "w" * 20})
    assert wrong.status_code == 401 and "w" * 20 not in wrong.text
    closed.cookies.set(KEY_COOKIE, KEY)
    assert closed.get("/api/papers").status_code == 200  # the web page's cookie works for reads
    assert closed.delete("/api/papers/1").status_code == 401  # but never for writes


def test_every_json_get_route_is_covered(closed):
    covered = {p.split("?")[0] for p in READS} | {"/healthz"}
    templated = {
        "/api/papers/{paper_id}": "/api/papers/1",
        "/api/papers/{paper_id}/pdf": "/api/papers/1/pdf",
        "/api/papers/{paper_id}/related": "/api/papers/1/related",
        "/api/ingest-jobs/{job_id}": "/api/ingest-jobs/x",
    }
    for route in _json_get_routes(closed.app):
        concrete = templated.get(route, route)
        if concrete not in covered:  # another route (collections...): it must still be keyed
            path = concrete.replace("{collection_id}", "1").replace("{paper_id}", "1")
            assert closed.get(path).status_code == 401, route


def test_open_reads_and_keyed_writes(make_app_client, library):
    with make_app_client(library, api_keys=KEY) as c:
        assert c.get("/api/papers").status_code == 200
        assert c.patch("/api/papers/1", json={"title": "x"}).status_code == 401
        assert c.patch("/api/papers/1", json={"title": "x"}, headers=AUTH).status_code == 404
        malformed = c.patch("/api/papers/1", json={}, headers={"Authorization": "Basic abc"})
        assert malformed.status_code == 401


def test_key_comparison():
    from kb.settings import Settings

    s = Settings(api_keys=f"{KEY}, {OTHER}")
    assert key_matches(KEY, s) and key_matches(OTHER, s)
    assert not key_matches(KEY[:-1], s) and not key_matches("", s)
    assert not key_matches("ключ" * 5, s)  # non-ASCII is compared, not an error


def test_cors_only_when_configured(make_app_client, library):
    origin = {"Origin": "https://lab.example.org"}
    with make_app_client(library) as c:
        assert "access-control-allow-origin" not in c.get("/api/papers", headers=origin).headers
    with make_app_client(library, cors_origins="https://lab.example.org") as c:
        r = c.get("/api/papers", headers=origin)
        assert r.headers["access-control-allow-origin"] == "https://lab.example.org"
        pre = c.options(
            "/api/papers",
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },  # fmt: skip
        )
        assert pre.status_code == 200 and "authorization" in pre.headers[
            "access-control-allow-headers"].lower()  # fmt: skip
        other = c.get("/api/papers", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_keys_never_reach_the_logs(make_app_client, library, caplog):
    """A real uvicorn server at debug level: neither header nor key appears in any log line."""
    import uvicorn

    app = make_app_client(library, api_keys=KEY, read_access="key").app  # served by uvicorn
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="debug")
    server = uvicorn.Server(config)
    # uvicorn's own log config (as `kb serve` uses it) does not propagate: listen on its loggers
    watched = [logging.getLogger(n) for n in ("uvicorn", "uvicorn.access", "uvicorn.error")]
    for logger in watched:
        logger.addHandler(caplog.handler)
    thread = threading.Thread(target=server.run, daemon=True)
    with caplog.at_level(logging.DEBUG):
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/api/papers", headers=AUTH).status_code == 200
        bad = httpx.get(f"{base}/api/papers", headers={"Authorization": "Bearer " + "z" * 20})
        assert bad.status_code == 401
        httpx.delete(f"{base}/api/papers/5", headers=AUTH)
        server.should_exit = True
        thread.join(20)
    for logger in watched:
        logger.removeHandler(caplog.handler)
    text = caplog.text
    assert "GET /api/papers" in text  # the access log was captured
    assert KEY not in text and "z" * 20 not in text and "Bearer" not in text
